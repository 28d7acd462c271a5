"""Beyond eval outputs: the zoo models that draw random numbers in training, and the
initialisation of every tensor, against torchvision (all under -m slow: a model build each).

Training mode: torchvision's model and ours, holding the same weights, run one training-mode
forward pass from the same global seed. Batch norm then uses the batch's statistics, and
stochastic depth and dropout draw their masks in the same order from the same generator, so the
outputs agree exactly only if every block's drop probability is torchvision's (a survivor is
scaled by 1 / (1 - p)) and the random ops sit where torchvision has them.

Initialisation: each tensor of our freshly built model is compared with torchvision's freshly
initialised one under the naming rule: a constant tensor (zeros, ones) must be equal, any other
must look drawn from the same distribution (two-sample Kolmogorov-Smirnov statistic below the
1e-6 significance level's critical value), which tells a normal from a uniform of the same
spread and a fan_in from a fan_out scale.
"""

import math

import pytest
from ptgen import check, check_file, compile_to, import_model
from test_zoo_vs_torchvision import ZOO, import_shape, load_torchvision_weights, torchvision_model
from torchvision_names import MODELS, SKIP

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

RANDOM_IN_TRAINING = ["efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small", "swin_t"]
# Swin-T's 1x1 convs round otherwise than torchvision's Linear layers (eval outputs agree to
# ~1e-6, not exactly); one example dropped otherwise would move its outputs by far more
TRAINING_TOLERANCE = {"swin_t": 1e-5}
# the zoo up to Inception-v3's 24M parameters (the VGGs' and big ResNets' fully connected and
# wide tensors would take minutes to sort); 2 to 30 s each on two cores
INITIALISED = [
    "efficientnet_b0",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "resnet18",
    "mobilenet_v2",
    "mnasnet1_0",
    "shufflenet_v2_x1_0",
    "squeezenet1_0",
    "squeezenet1_1",
    "googlenet",
    "densenet121",
    "inception_v3",
    "swin_t",
]
KS_C = math.sqrt(-math.log(1e-6 / 2) / 2)  # c(alpha) of the two-sample KS test, alpha = 1e-6


def ours_from(text, name, directory):
    """Our model compiled from spec text and built with seed 2."""
    module = import_model(compile_to(check(text, name), directory))
    torch.manual_seed(2)
    return module.build_model()


def train_mode_difference(ours, theirs, stem):
    """max |ours - torchvision| of one training-mode forward pass from the same seed."""
    load_torchvision_weights(ours, theirs, stem)
    x = torch.randn(4, *import_shape(stem), generator=torch.Generator().manual_seed(3))
    outputs = []
    for model in (ours.train(), theirs.train()):
        torch.manual_seed(7)
        with torch.no_grad():
            outputs.append(model(x))
    return (outputs[0] - outputs[1]).abs().max().item()


@pytest.mark.slow
@pytest.mark.parametrize("stem", RANDOM_IN_TRAINING)
def test_training_mode_draws_as_torchvision(stem, tmp_path):
    text = (ZOO / f"{stem}.arch").read_text(encoding="utf-8")
    ours = ours_from(text, f"{stem}.arch", tmp_path / stem)
    difference = train_mode_difference(ours, torchvision_model(stem), stem)
    assert difference <= TRAINING_TOLERANCE.get(stem, 0.0)


@pytest.mark.slow
def test_a_shifted_drop_rate_is_caught(tmp_path):
    """Planted: EfficientNet's drop rates counted from 1 instead of 0 no longer agree."""
    text = (ZOO / "efficientnet_b0.arch").read_text(encoding="utf-8")
    planted = text.replace("0.2 * position / positions", "0.2 * (position + 1) / positions")
    assert planted != text
    ours = ours_from(planted, "planted.arch", tmp_path / "planted")
    theirs = torchvision_model("efficientnet_b0")
    assert train_mode_difference(ours, theirs, "efficientnet_b0") > 1e-3


def ks_statistic(a, b):
    """The two-sample Kolmogorov-Smirnov statistic of two flat tensors."""
    a, b = a.double().sort().values, b.double().sort().values
    points = torch.cat([a, b])
    cdf_a = torch.searchsorted(a, points, right=True) / a.numel()
    cdf_b = torch.searchsorted(b, points, right=True) / b.numel()
    return (cdf_a - cdf_b).abs().max().item()


def initialisation_mismatches(ours, theirs, rule):
    """(torchvision key, reason) for each tensor not initialised as torchvision's."""
    ours_state = ours.state_dict()
    wrong = []
    for key, their in theirs.state_dict().items():
        if key.endswith(SKIP):
            continue
        mine, their = ours_state[rule(key)].flatten(), their.flatten()
        if (their == their[0]).all():
            if not torch.equal(mine, their):
                wrong.append((key, "constant differs"))
            continue
        n = their.numel()
        if ks_statistic(mine, their) > KS_C * math.sqrt(2 / n):
            wrong.append((key, f"KS {ks_statistic(mine, their):.3f} over {n} values"))
    return wrong


@pytest.mark.slow
@pytest.mark.parametrize("stem", INITIALISED)
def test_every_tensor_is_initialised_as_torchvision(stem, tmp_path):
    builder, kwargs, rule_for = MODELS[stem]
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, builder)(weights=None, **kwargs)
    ours = import_model(compile_to(check_file(ZOO / f"{stem}.arch"), tmp_path / stem))
    torch.manual_seed(2)
    model = ours.build_model()
    rule = rule_for(theirs.state_dict().keys())
    assert initialisation_mismatches(model, theirs, rule) == []


@pytest.mark.slow
def test_a_wrong_fan_is_caught(tmp_path):
    """Planted: MobileNetV3-Small's convs drawn with fan_in instead of fan_out are told apart."""
    text = (ZOO / "mobilenet_v3_small.arch").read_text(encoding="utf-8")
    planted = text.replace("he_normal(mode=fan_out)", "he_normal(mode=fan_in)")
    assert planted != text
    model = ours_from(planted, "planted.arch", tmp_path / "planted")
    torch.manual_seed(0)
    theirs = torchvision.models.mobilenet_v3_small(weights=None)
    rule = MODELS["mobilenet_v3_small"][2](theirs.state_dict().keys())
    wrong = initialisation_mismatches(model, theirs, rule)
    assert any(key.endswith("block.0.0.weight") for key, _ in wrong), wrong
