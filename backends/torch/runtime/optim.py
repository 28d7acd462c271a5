"""SGD as Krizhevsky et al. (2012) write it, decay / no-decay parameter groups, the
fine-tuning groups of the train block (freeze, lr_scale), and torch.optim's optimizers
stepping all parameters at once."""

import inspect

import torch
from torch import nn
from torch.distributed.tensor import DTensor
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

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
# torch.optim's settings that choose how a step runs, not what it computes
KERNEL_SETTINGS = ("foreach", "fused")


class _MultiTensor(torch.optim.Optimizer):
    """An optimizer whose subclass rule, `update(group, params, grads, *buffers)`, steps
    lists of parameters with torch._foreach_* ops: all of a device and dtype at once, or
    one parameter at a time with foreach=False. BUFFERS names the state kept per
    parameter, zeros at first."""

    BUFFERS = ()

    def __init__(self, params, defaults, foreach):
        """The groups and defaults as torch.optim takes them; foreach: lists or one by one."""
        super().__init__(params, defaults)
        self.foreach = foreach

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter with a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for lists in self.buckets(group):
                self.update(group, *lists)
        return loss

    def buckets(self, group):
        """[params, grads, *buffers] of the group's parameters with a gradient: one for each
        device and dtype (foreach), else one for each parameter."""
        params = [p for p in group["params"] if p.grad is not None]
        if any(p.grad.is_sparse for p in params):
            raise RuntimeError(
                f"{type(self).__name__} does not support sparse gradients"
            )
        buffers = [[self.buffer(p, name) for p in params] for name in self.BUFFERS]
        lists = [params, [p.grad for p in params], *buffers]
        if not (params and self.foreach):
            return [[[t] for t in tensors] for tensors in zip(*lists, strict=True)]
        grouped = self._group_tensors_by_device_and_dtype(lists)
        return [bucket for bucket, _ in grouped.values()]

    def buffer(self, p, name):
        """The state `name` of parameter p, zeros the first time."""
        state = self.state[p]
        if name not in state:
            state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state[name]


class PaperSGD(_MultiTensor):
    """v <- mu*v - lambda*lr*w - lr*g ; w <- w + v.

    The velocity holds the step itself, so a new lr affects only new gradients (torch.optim.SGD
    stores v/(-lr) and so rescales the remembered velocity when lr changes). With nesterov=True
    the look-ahead form is used: w <- w + mu*v_new - lambda*lr*w - lr*g. The velocity is
    updated in place, term by term: no temporary the size of the parameters.
    """

    BUFFERS = ("velocity",)

    def __init__(
        self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False, foreach=True
    ):
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
        super().__init__(params, defaults, foreach)

    def update(self, group, params, grads, velocities):
        """The paper's rule for lists of parameters."""
        lr, mu, decay = group["lr"], group["momentum"], group["weight_decay"]
        torch._foreach_mul_(velocities, mu)
        torch._foreach_add_(velocities, grads, alpha=-lr)
        if decay:
            torch._foreach_add_(velocities, params, alpha=-lr * decay)
        if not group["nesterov"]:
            torch._foreach_add_(params, velocities)
            return
        if decay:
            torch._foreach_add_(params, params, alpha=-lr * decay)
        torch._foreach_add_(params, grads, alpha=-lr)
        torch._foreach_add_(params, velocities, alpha=mu)


class TFRMSprop(_MultiTensor):
    """RMSprop as TensorFlow takes its step: eps inside the square root, lr in the momentum.

    g <- g + lambda*w ; v <- alpha*v + (1 - alpha)*g^2 ; b <- mu*b + lr*g/sqrt(v + eps) ;
    w <- w - b (v and b start at 0). torch.optim.RMSprop adds eps to sqrt(v) instead and
    multiplies the momentum buffer by lr afterwards.
    """

    BUFFERS = ("square_avg", "momentum_buffer")

    def __init__(
        self,
        params,
        lr,
        alpha=0.99,
        eps=1e-8,
        momentum=0.0,
        weight_decay=0.0,
        foreach=True,
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
        super().__init__(params, defaults, foreach)

    def update(self, group, params, grads, square_avgs, momentum_buffers):
        """TensorFlow's rule for lists of parameters."""
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        torch._foreach_mul_(square_avgs, group["alpha"])
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - group["alpha"])
        roots = torch._foreach_add(square_avgs, group["eps"])
        torch._foreach_sqrt_(roots)
        torch._foreach_mul_(momentum_buffers, group["momentum"])
        torch._foreach_addcdiv_(momentum_buffers, grads, roots, value=group["lr"])
        torch._foreach_sub_(params, momentum_buffers)


def multi_tensor(optimizer_class, params, **settings):
    """optimizer_class(params, **settings) stepping all parameters of a device at once:
    fused where torch fuses its step on every device the parameters are on (CUDA, CPU)
    and they are not FSDP's shards (DTensors, which the fused kernels do not take),
    else foreach. A loaded state dict keeps this choice (not the one it was saved with),
    so a checkpoint resumes on another device or from before the choice."""
    params = list(params)
    devices = {p.device.type for p in tensors_of(params)}
    fused = "fused" in inspect.signature(optimizer_class).parameters and devices <= set(
        _get_fused_kernels_supported_devices()
    )
    fused = fused and not any(isinstance(p, DTensor) for p in tensors_of(params))
    chosen = {"fused": True} if fused else {"foreach": True}
    optimizer = optimizer_class(params, **settings, **chosen)
    kernels = {
        k: optimizer.defaults[k] for k in KERNEL_SETTINGS if k in optimizer.defaults
    }

    def keep_kernels(optimizer, state):
        """The state dict with this optimizer's kernel settings in every group."""
        groups = [{**group, **kernels} for group in state["param_groups"]]
        return {**state, "param_groups": groups}

    optimizer.register_load_state_dict_pre_hook(keep_kernels)
    return optimizer


def tensors_of(params):
    """The tensors of an optimizer's params: tensors or groups {"params": [...], ...}."""
    return [
        p
        for item in params
        for p in (item["params"] if isinstance(item, dict) else [item])
    ]


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
