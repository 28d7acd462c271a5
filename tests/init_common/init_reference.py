"""The initialiser check both backends run: a spec, and the distribution each of its tensors
must follow, computed here from the definitions (torch.nn.init's), not by archdsl.
"""

import math

import numpy as np

SPEC = """
model Inits
input image: 64 x 8 x 8
tight = conv(128, kernel=3, weight=trunc_normal(mean=0.1, std=0.5, low=-0.6, high=0.4), bias=false)
wide  = conv(96, kernel=3, weight=trunc_normal(std=0.1, low=-2, high=2), bias=false)
gate  = flatten |> dense(1000, weight=he_uniform(mode=fan_out, nonlinearity=sigmoid), bias=false)
tanh  = dense(512, weight=he_normal(nonlinearity=tanh), bias=false)
"""


def _pdf(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _cdf(z: float) -> float:
    return (1 + math.erf(z / math.sqrt(2))) / 2


def truncated_normal(mean: float, std: float, low: float, high: float) -> tuple[float, float]:
    """(mean, std) of N(mean, std^2) restricted to [low, high] (the textbook formulas)."""
    a, b = (low - mean) / std, (high - mean) / std
    mass = _cdf(b) - _cdf(a)
    shift = (_pdf(a) - _pdf(b)) / mass
    variance = 1 + (a * _pdf(a) - b * _pdf(b)) / mass - shift**2
    return mean + std * shift, std * math.sqrt(variance)


def _uniform(bound: float) -> dict:
    return {"mean": 0.0, "std": bound / math.sqrt(3), "low": -bound, "high": bound, "edge": True}


GATE_FAN_OUT = 1000  # torch: a Linear's fan_out is its units
TANH_FAN_IN = 1000
# layer -> mean, std, bounds (None: unbounded), whether values reach the bounds (edge), and
# the fraction of values more than 2 std from the mean where that tells truncations apart
EXPECTED = {
    "tight.conv": {
        **dict(zip(("mean", "std"), truncated_normal(0.1, 0.5, -0.6, 0.4), strict=True)),
        "low": -0.6,
        "high": 0.4,
        "edge": True,
    },
    # bounds at 20 std: in practice a plain N(0, 0.1^2), 4.55% beyond 2 std (Keras's own
    # TruncatedNormal would cut there and have none)
    "wide.conv": {"mean": 0.0, "std": 0.1, "low": -2.0, "high": 2.0, "tail": 0.0455},
    # kaiming_uniform_(mode="fan_out", nonlinearity="sigmoid"): gain 1, U(+-sqrt(3 / fan_out))
    "gate.dense": _uniform(math.sqrt(3 / GATE_FAN_OUT)),
    # kaiming_normal_(nonlinearity="tanh"): gain 5/3, N(0, (gain / sqrt(fan_in))^2)
    "tanh.dense": {"mean": 0.0, "std": 5 / 3 / math.sqrt(TANH_FAN_IN)},
}


def check_drawn(layer: str, values: np.ndarray) -> None:
    """The values of one layer's weight follow EXPECTED[layer] (moments, bounds, tails)."""
    want = EXPECTED[layer]
    x = np.asarray(values, dtype=np.float64).ravel()
    assert abs(x.mean() - want["mean"]) < 5 * want["std"] / math.sqrt(x.size), layer
    assert abs(x.std() / want["std"] - 1) < 0.02, (layer, x.std(), want["std"])
    if "low" in want:
        assert want["low"] <= x.min() and x.max() <= want["high"], (layer, x.min(), x.max())
    if want.get("edge"):
        reach = 0.01 * (want["high"] - want["low"])
        assert x.min() < want["low"] + reach and x.max() > want["high"] - reach, layer
    if "tail" in want:
        beyond = (np.abs(x - want["mean"]) > 2 * want["std"]).mean()
        assert abs(beyond - want["tail"]) < 0.005, (layer, beyond)
