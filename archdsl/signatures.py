"""The argument lists of every op, initialiser and train setting, in positional order."""

from __future__ import annotations

from archdsl.ops import REGISTRY
from archdsl.params import Param, sig

# the ops' argument lists are declared with the ops (archdsl/ops/); OPS is a view
OPS: dict[str, tuple[Param, ...]] = {name: spec.params for name, spec in REGISTRY.items()}

# he_normal / he_uniform: the fan, and the nonlinearity whose gain scales them (torch's names)
HE = ("mode:choice:fan_in|fan_out", "nonlinearity:choice:relu|linear|sigmoid|tanh")

INITS: dict[str, tuple[Param, ...]] = {
    "normal": sig("mean:float", "std:float!"),
    "trunc_normal": sig("mean:float", "std:float!", "low:float!", "high:float!"),
    "uniform": sig("low:float!", "high:float!"),
    "constant": sig("value:float!"),
    "zeros": (),
    "ones": (),
    "he_normal": sig(*HE),
    "he_uniform": sig(*HE),
    "glorot_normal": (),
    "glorot_uniform": (),
    "fan_in_uniform": sig("scale:float"),
}

OPTIMIZERS: dict[str, tuple[Param, ...]] = {
    "sgd": sig(
        "lr:float",
        "momentum:float",
        "weight_decay:float",
        "nesterov:bool",
        "rule:choice:paper|torch",
        "no_decay:names",
    ),
    "adam": sig(
        "lr:float",
        "beta1:float",
        "beta2:float",
        "eps:float",
        "weight_decay:float",
        "no_decay:names",
    ),
    "adamw": sig(
        "lr:float",
        "beta1:float",
        "beta2:float",
        "eps:float",
        "weight_decay:float",
        "no_decay:names",
    ),
    "rmsprop": sig(
        "lr:float",
        "alpha:float",
        "eps:float",
        "momentum:float",
        "weight_decay:float",
        "rule:choice:torch|tf",
        "no_decay:names",
    ),
}

SCHEDULES: dict[str, tuple[Param, ...]] = {
    "on_plateau": sig(
        "factor:float",
        "patience:opt_int",
        "metric:choice:val_error|val_loss|val_top5_error",
        "max_drops:opt_int",
        "min_delta:float",
    ),
    "step": sig("step_size:count!", "gamma:float"),
    "multistep": sig("milestones:ints!", "gamma:float"),
    "cosine": sig("min_lr:float", "warmup:int", "warmup_factor:float"),
    "none": (),
}

LOSSES: dict[str, tuple[Param, ...]] = {"cross_entropy": sig("label_smoothing:float")}

AUGMENTS: dict[str, tuple[Param, ...]] = {
    "random_crop": sig("size:count!", "from:count!"),
    "center_crop": sig("size:count!", "from:count!"),
    "random_resized_crop": sig("size:count!", "scale:floats", "ratio:floats", "from:count"),
    "hflip": sig("p:float"),
    "pca_lighting": sig("std:float"),
    "normalize": sig("mean:floats", "std:floats"),
    "random_erasing": sig("p:float", "scale:floats", "ratio:floats", "value:float"),
    "trivial_augment": (),
    "rand_augment": sig("num_ops:int", "magnitude:int"),
    "auto_augment": sig("policy:choice:imagenet|cifar10|svhn"),
    "mixup": sig("alpha:float"),
    "cutmix": sig("alpha:float"),
}

AVERAGES: dict[str, tuple[Param, ...]] = {"ema": sig("decay:float", "every:count", "adjust:bool")}

TRAIN_SETTINGS = (
    "optimizer",
    "schedule",
    "loss",
    "batch",
    "epochs",
    "augment",
    "clip_grad_norm",
    "ema",
    "freeze",
    "lr_scale",
)
