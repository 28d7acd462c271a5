"""SGD as Krizhevsky et al. (2012) write it, decay / no-decay parameter groups, and the
fine-tuning groups of the train block (freeze, lr_scale)."""

import torch
from torch import nn

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from portable import under

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


def freeze_statements(model, prefixes):
    """Stop the parameters of the named statements from learning (requires_grad False);
    returns the model. Their batch norms are kept in eval mode by frozen_norms."""
    for name, p in model.named_parameters():
        if under(name, prefixes):
            p.requires_grad_(False)
    return model


def frozen_norms(model, prefixes):
    """The batch norms of the named statements: in eval mode they normalise with their
    running statistics and keep them, also while the rest of the model trains."""
    return [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and under(name, prefixes)
    ]


def rate_factor(name, lr_scale):
    """The learning-rate factor of a parameter: its statement's in lr_scale, else 1."""
    return next((f for p, f in lr_scale.items() if under(name, [p])), 1.0)


def param_groups(model, weight_decay, no_decay=(), lr=None, lr_scale=None):
    """The trainable parameters in groups of one weight decay (0 for the no_decay ones)
    and, given lr and lr_scale {prefix: factor}, one learning rate (lr times the factor of
    the statement holding them); the unscaled groups first, decayed before exempt, empty
    groups dropped but the first one given lr (its rate is the one the trainer logs)."""
    exempt = no_decay_ids(model, no_decay)
    scales = dict(lr_scale or {})
    groups = {
        (factor, exempted): []
        for factor in dict.fromkeys([1.0, *scales.values()])
        for exempted in (False, True)
    }
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups[(rate_factor(name, scales), id(p) in exempt)].append(p)
    return [
        {
            "params": params,
            "weight_decay": 0.0 if exempted else weight_decay,
            **({} if lr is None else {"lr": lr * factor}),
        }
        for i, ((factor, exempted), params) in enumerate(groups.items())
        if params or (i == 0 and lr is not None)
    ]
