"""Initialisers resolved to concrete distributions, so every backend draws from the same one."""

from __future__ import annotations

import math
from dataclasses import dataclass

from archdsl import ir
from archdsl.ops import REGISTRY

# torch.nn.init.calculate_gain's value for each nonlinearity of he_normal / he_uniform
GAINS = {"relu": math.sqrt(2.0), "linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0}


@dataclass(frozen=True)
class Distribution:
    """normal(a=mean, b=std), uniform(a=low, b=high), constant(a) or trunc_normal (+ bounds)."""

    kind: str
    a: float
    b: float = 0.0
    rule: str = ""
    bounds: tuple[float, float] | None = None


def fans(op, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a learned op's weight, as PyTorch and Keras compute them (its spec)."""
    return REGISTRY[op.op].fans(op, [input_shape])


def resolve(init, fan_in: int, fan_out: int) -> Distribution:
    """The distribution an initialiser means for a tensor with these fans."""
    if isinstance(init, ir.Normal):
        return Distribution(
            "normal", init.mean, init.std, f"normal(mean={init.mean}, std={init.std})"
        )
    if isinstance(init, ir.TruncNormal):
        bounds = (init.low, init.high)
        rule = f"trunc_normal(mean={init.mean}, std={init.std}, low={init.low}, high={init.high})"
        return Distribution("trunc_normal", init.mean, init.std, rule, bounds)
    if isinstance(init, ir.Uniform):
        return Distribution("uniform", init.low, init.high, f"uniform({init.low}, {init.high})")
    if isinstance(init, ir.Constant):
        return Distribution("constant", init.value, rule=f"constant({init.value})")
    if isinstance(init, (ir.HeNormal, ir.HeUniform)):
        return _he(init, fan_in if init.mode == "fan_in" else fan_out)
    if isinstance(init, ir.GlorotNormal):
        std = math.sqrt(2.0 / (fan_in + fan_out))
        return Distribution("normal", 0.0, std, f"glorot_normal, fans {fan_in}+{fan_out}")
    if isinstance(init, ir.GlorotUniform):
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return Distribution("uniform", -bound, bound, f"glorot_uniform, fans {fan_in}+{fan_out}")
    if isinstance(init, ir.FanInUniform):
        bound = init.scale / math.sqrt(fan_in)
        return Distribution("uniform", -bound, bound, f"fan_in_uniform, fan_in={fan_in}")
    raise TypeError(f"unknown initialiser {init!r}")


def _he(init, fan: int) -> Distribution:
    """he_normal / he_uniform, in torch's arithmetic (kaiming_normal_ / kaiming_uniform_)."""
    std = GAINS[init.nonlinearity] / math.sqrt(fan)
    name = init.kind if init.nonlinearity == "relu" else f"{init.kind}({init.nonlinearity})"
    rule = f"{name}, {init.mode}={fan}"
    if isinstance(init, ir.HeNormal):
        return Distribution("normal", 0.0, std, rule)
    bound = math.sqrt(3.0) * std
    return Distribution("uniform", -bound, bound, rule)


def layer_distributions(
    op, input_shape: tuple[int, ...]
) -> tuple[Distribution, Distribution | None]:
    """(weight, bias or None) distributions of a conv or dense op; biases use the weight's fans."""
    fan_in, fan_out = fans(op, input_shape)
    weight = resolve(op.weight_init, fan_in, fan_out)
    bias = resolve(op.bias_init, fan_in, fan_out) if op.bias else None
    return weight, bias
