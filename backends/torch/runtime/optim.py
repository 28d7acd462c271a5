"""SGD as Krizhevsky et al. (2012) write it, and decay / no-decay parameter groups."""

import torch
from torch import nn

NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
)


class _PerParameter(torch.optim.Optimizer):
    """An optimizer whose subclass rule, `update(p, group)`, steps each parameter on its own."""

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter with a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, group)
        return loss


class PaperSGD(_PerParameter):
    """v <- mu*v - lambda*lr*w - lr*g ; w <- w + v.

    The velocity holds the step itself, so a new lr affects only new gradients (torch.optim.SGD
    stores v/(-lr) and so rescales the remembered velocity when lr changes). With nesterov=True
    the look-ahead form is used: w <- w + mu*v_new - lambda*lr*w - lr*g.
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        """Check the hyper-parameters; per-group values override these defaults."""
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"lr={lr}, momentum={momentum}, weight_decay={weight_decay} < 0"
            )
        if nesterov and momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def update(self, p, group):
        """The paper's rule for one parameter."""
        if p.grad.is_sparse:
            raise RuntimeError("PaperSGD does not support sparse gradients")
        delta = p.grad.add(p, alpha=group["weight_decay"]).mul_(-group["lr"])
        state = self.state[p]
        if "velocity" not in state:
            state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        v = state["velocity"].mul_(group["momentum"]).add_(delta)
        if group["nesterov"]:
            p.add_(v, alpha=group["momentum"]).add_(delta)
        else:
            p.add_(v)


class TFRMSprop(_PerParameter):
    """RMSprop as TensorFlow takes its step: eps inside the square root, lr in the momentum.

    g <- g + lambda*w ; v <- alpha*v + (1 - alpha)*g^2 ; b <- mu*b + lr*g/sqrt(v + eps) ;
    w <- w - b (v and b start at 0). torch.optim.RMSprop adds eps to sqrt(v) instead and
    multiplies the momentum buffer by lr afterwards.
    """

    def __init__(
        self, params, lr, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0
    ):
        """Check the hyper-parameters; per-group values override these defaults."""
        if min(lr, alpha, eps, momentum, weight_decay) < 0:
            raise ValueError(
                f"lr={lr}, alpha={alpha}, eps={eps}, momentum={momentum}, "
                f"weight_decay={weight_decay}: none may be < 0"
            )
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "momentum": momentum,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)

    def update(self, p, group):
        """TensorFlow's rule for one parameter."""
        if p.grad.is_sparse:
            raise RuntimeError("TFRMSprop does not support sparse gradients")
        grad = p.grad.add(p, alpha=group["weight_decay"])
        state = self.state[p]
        if "square_avg" not in state:
            state["square_avg"] = torch.zeros_like(
                p, memory_format=torch.preserve_format
            )
            state["momentum_buffer"] = torch.zeros_like(
                p, memory_format=torch.preserve_format
            )
        square_avg = state["square_avg"].mul_(group["alpha"])
        square_avg.addcmul_(grad, grad, value=1 - group["alpha"])
        step = grad.div_(square_avg.add(group["eps"]).sqrt_()).mul_(group["lr"])
        buf = state["momentum_buffer"].mul_(group["momentum"]).add_(step)
        p.sub_(buf)


def no_decay_ids(model, no_decay):
    """Ids of the parameters that no_decay (a subset of {"bias", "norm"}) exempts from decay."""
    unknown = set(no_decay) - {"bias", "norm"}
    if unknown:
        raise ValueError(
            f"no_decay entries must be 'bias' or 'norm', not {sorted(unknown)}"
        )
    ids = set()
    if "bias" in no_decay:
        ids |= {id(p) for name, p in model.named_parameters() if name.endswith("bias")}
    if "norm" in no_decay:
        norms = (m for m in model.modules() if isinstance(m, NORM_TYPES))
        ids |= {id(p) for m in norms for p in m.parameters()}
    return ids


def param_groups(model, weight_decay, no_decay=()):
    """Split trainable parameters into a decay group and a weight_decay=0 group (empty ones dropped)."""
    exempt = no_decay_ids(model, no_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {
            "params": [p for p in params if id(p) not in exempt],
            "weight_decay": weight_decay,
        },
        {"params": [p for p in params if id(p) in exempt], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]
