"""The argument lists of every op, initialiser and train setting, in positional order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """One argument: its name, the kind of value it takes, whether it must be given."""

    name: str
    kind: str
    required: bool = False


def _p(spec: str) -> Param:
    """'name:kind' or 'name:kind!' (required) -> Param."""
    name, kind = spec.split(":", 1)
    return Param(name, kind.rstrip("!"), kind.endswith("!"))


def _sig(*specs: str) -> tuple[Param, ...]:
    """A signature from 'name:kind[!]' strings."""
    return tuple(_p(s) for s in specs)


# kinds: count (positive int), pair (int or H x W), pad (int, H x W, same, valid),
# float, nonneg, bool, bias (bool or initialiser), init, choice:a|b, names, ints, floats, opt_int
OPS: dict[str, tuple[Param, ...]] = {
    "conv": _sig(
        "filters:count!",
        "kernel:pair!",
        "stride:pair",
        "pad:pad",
        "dilation:pair",
        "groups:count",
        "bias:bias",
        "weight:init",
        "ceil:bool",
    ),
    "maxpool": _sig("kernel:pair!", "stride:pair", "pad:pad", "ceil:bool"),
    "avgpool": _sig("kernel:pair!", "stride:pair", "pad:pad", "ceil:bool", "count_pad:bool"),
    "global_avgpool": (),
    "adaptive_avgpool": _sig("size:pair!"),
    "lrn": _sig("size:count", "alpha:nonneg", "beta:nonneg", "k:nonneg"),
    "batchnorm": _sig("eps:float", "momentum:float"),
    "dropout": _sig("p:float"),
    "flatten": (),
    "dense": _sig("units:count!", "bias:bias", "weight:init"),
    "relu": (),
    "relu6": (),
    "tanh": (),
    "sigmoid": (),
    "leaky_relu": _sig("slope:nonneg"),
    "softmax": (),
    "resize": _sig("size:pair!", "mode:choice:bilinear|nearest"),
    "concat": (),
    "add": (),
}

MULTI_INPUT = ("concat", "add")
LEARNED = ("conv", "dense")

INITS: dict[str, tuple[Param, ...]] = {
    "normal": _sig("mean:float", "std:float!"),
    "uniform": _sig("low:float!", "high:float!"),
    "constant": _sig("value:float!"),
    "zeros": (),
    "ones": (),
    "he_normal": _sig("mode:choice:fan_in|fan_out"),
    "he_uniform": _sig("mode:choice:fan_in|fan_out"),
    "glorot_normal": (),
    "glorot_uniform": (),
    "fan_in_uniform": _sig("scale:float"),
}

OPTIMIZERS: dict[str, tuple[Param, ...]] = {
    "sgd": _sig(
        "lr:float",
        "momentum:float",
        "weight_decay:float",
        "nesterov:bool",
        "rule:choice:paper|torch",
        "no_decay:names",
    ),
    "adam": _sig(
        "lr:float",
        "beta1:float",
        "beta2:float",
        "eps:float",
        "weight_decay:float",
        "no_decay:names",
    ),
    "adamw": _sig(
        "lr:float",
        "beta1:float",
        "beta2:float",
        "eps:float",
        "weight_decay:float",
        "no_decay:names",
    ),
}

SCHEDULES: dict[str, tuple[Param, ...]] = {
    "on_plateau": _sig(
        "factor:float",
        "patience:opt_int",
        "metric:choice:val_error|val_loss|val_top5_error",
        "max_drops:opt_int",
        "min_delta:float",
    ),
    "step": _sig("step_size:count!", "gamma:float"),
    "multistep": _sig("milestones:ints!", "gamma:float"),
    "cosine": _sig("min_lr:float"),
    "none": (),
}

LOSSES: dict[str, tuple[Param, ...]] = {"cross_entropy": _sig("label_smoothing:float")}

AUGMENTS: dict[str, tuple[Param, ...]] = {
    "random_crop": _sig("size:count!", "from:count!"),
    "center_crop": _sig("size:count!", "from:count!"),
    "hflip": _sig("p:float"),
    "pca_lighting": _sig("std:float"),
    "normalize": _sig("mean:floats", "std:floats"),
}

TRAIN_SETTINGS = ("optimizer", "schedule", "loss", "batch", "epochs", "augment")
