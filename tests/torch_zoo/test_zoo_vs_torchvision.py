"""Each zoo model, compiled for PyTorch, loads torchvision's weights and computes its outputs.

torchvision's `state_dict` is renamed by the documented rules of `torchvision_names.py`
(checked to pair every tensor of both models one to one with equal shapes), loaded with
`strict=True`, and both models run in eval mode on the same random batch. Before the copy every
batch norm of torchvision's model gets random running statistics and a random affine transform,
every conv/dense bias a random value, and so does every layer norm's scale and shift and
ConvNeXt's layer scales (which start at 1e-6, hiding the blocks), so that a tensor loaded into
the wrong place, a wrong eps or a missing bias shows in the outputs (torchvision initialises many
of them to 0 and 1).

The comparisons of the big models (every spec added after issue 7 but MNASNet) run under
`-m slow`; every spec's trainable parameter count is compared with torchvision's in the default
run, on models built on the meta device (no memory, no initialisation time; RegNet on the CPU,
its builder computing the widths with tensors that the meta device cannot read back).

Tolerance: max |ours - torchvision| <= 1e-5 * max(1, max |torchvision|). The two models run the
same float32 kernels on the same tensors, so they agree to rounding (in practice: exactly); the
scale factor only matters for outputs larger than 1, where 1e-5 absolute would ask for more
than float32's ~1e-7 relative precision accumulated over a hundred layers.
"""

import contextlib
import re
import time

import pytest
from ptgen import ROOT, check, check_file, compile_to, import_model
from torchvision_names import MODELS, UnmappedKey, key_mapping, mapped_state_dict, resnet

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

ZOO = ROOT / "specs" / "zoo"
TOLERANCE = 1e-5
BATCH = 2
# seconds or more each on two cores: run with -m slow (MNASNet, ~0.3 GMACs, stays in the default run)
SLOW = {
    "vgg11",
    "resnet34",
    "resnet101",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "densenet169",
    "inception_v3",
    "efficientnet_b0",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "convnext_tiny",
    "regnet_y_400mf",
    "swin_t",
    "vit_b_16",
}


def stems_with_slow_marks():
    """Every MODELS stem, the SLOW ones marked slow."""
    return [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s for s in MODELS]


def torchvision_model(stem):
    """torchvision's model for a zoo spec, with random BN statistics, affines and biases."""
    builder, kwargs, _ = MODELS[stem]
    torch.manual_seed(0)
    model = getattr(torchvision.models, builder)(weights=None, **kwargs)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.2)
            elif isinstance(module, torch.nn.Conv2d | torch.nn.Linear) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.05)
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.2)
            if isinstance(getattr(module, "layer_scale", None), torch.nn.Parameter):
                scale = module.layer_scale  # ConvNeXt's per-channel scale, 1e-6 at the start
                scale.copy_(torch.rand(scale.shape, generator=gen) + 0.5)
            for name in ("in_proj_bias", "class_token"):  # ViT's: zeros at the start
                if isinstance(getattr(module, name, None), torch.nn.Parameter):
                    tensor = getattr(module, name)
                    tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.2)
        if isinstance(getattr(model, "heads", None), torch.nn.Sequential):  # ViT's zero head
            head = model.heads.head.weight
            head.copy_(torch.randn(head.shape, generator=gen) * 0.05)
    return model.eval()


def generated_model(directory):
    """The compiled model of an output directory, built (its own initialisation) in eval mode."""
    torch.manual_seed(2)
    return import_model(directory).build_model().eval()


def drop_rates(model):
    """The drop probability of each stochastic depth module that runs, in the order of the
    modules, once per branch it drops (torchvision's EfficientNet gives every block one, but a
    block without its residual, `use_res_connect` False, never calls it; a Swin block drops
    both its branches with one; the spec writes one per branch that runs)."""
    unused = {
        id(m.stochastic_depth)
        for m in model.modules()
        if getattr(m, "use_res_connect", True) is False and hasattr(m, "stochastic_depth")
    }
    twice = {
        id(m.stochastic_depth)
        for m in model.modules()
        if type(m).__name__ == "SwinTransformerBlock"
    }
    return [
        m.p
        for m in model.modules()
        if type(m).__name__ == "StochasticDepth" and id(m) not in unused
        for _ in range(2 if id(m) in twice else 1)
    ]


def load_torchvision_weights(ours, theirs, stem):
    """Copy torchvision's tensors into our model through the family's naming rule."""
    rule = MODELS[stem][2](theirs.state_dict().keys())
    ours.load_state_dict(mapped_state_dict(theirs.state_dict(), ours.state_dict(), rule))
    return rule


def max_difference(ours, theirs, stem):
    """(max |difference|, max |torchvision output|) on one random batch at the spec's input size."""
    x = torch.randn(BATCH, *import_shape(stem), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert a.shape == b.shape == (BATCH, 1000)
    return (a - b).abs().max().item(), b.abs().max().item()


def import_shape(stem):
    """The spec's input shape (C, H, W), from its checked graph."""
    return tuple(check_file(ZOO / f"{stem}.arch").graph.inputs[0].shape)


def agrees(difference, scale):
    return difference <= TOLERANCE * max(1.0, scale)


@pytest.fixture(scope="module")
def compiled_zoo(tmp_path_factory):
    """stem -> output directory of the zoo spec compiled for PyTorch (compiled on first use)."""
    cache = {}

    def get(stem):
        if stem not in cache:
            checked = check_file(ZOO / f"{stem}.arch")
            cache[stem] = compile_to(checked, tmp_path_factory.mktemp(stem))
        return cache[stem]

    return get


def test_every_zoo_spec_but_lenet5_has_a_torchvision_rule():
    stems = {p.stem for p in ZOO.glob("*.arch")}
    assert stems - set(MODELS) == {"lenet5"} and set(MODELS) <= stems


@pytest.mark.parametrize("stem", list(MODELS))
def test_trainable_parameters_are_torchvisions(stem):
    """shapes' trainable count is torchvision's sum of parameters(), and the header says it."""
    builder, kwargs, _ = MODELS[stem]
    on_meta = not builder.startswith("regnet")
    with torch.device("meta") if on_meta else contextlib.nullcontext():
        theirs = getattr(torchvision.models, builder)(weights=None, **kwargs)
    expected = sum(p.numel() for p in theirs.parameters())
    text = (ZOO / f"{stem}.arch").read_text(encoding="utf-8")
    assert check(text, f"{stem}.arch").report.trainable_params == expected
    header = "".join(line for line in text.splitlines() if line.startswith("#"))
    stated = re.search(r"([\d,]+) parameters", header)
    assert stated and int(stated[1].replace(",", "")) == expected, stated


@pytest.mark.parametrize("stem", stems_with_slow_marks())
def test_zoo_model_matches_torchvision(stem, compiled_zoo):
    start = time.perf_counter()
    theirs = torchvision_model(stem)
    ours = generated_model(compiled_zoo(stem))
    rule = load_torchvision_weights(ours, theirs, stem)
    # the same norm settings module by module (momentum never shows in eval outputs)
    ours_modules = dict(ours.named_modules())
    for name, module in theirs.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.LayerNorm):
            mine = ours_modules[rule(f"{name}.weight").rsplit(".", 1)[0]]
            settings = (mine.eps, getattr(mine, "momentum", None))
            assert settings == (module.eps, getattr(module, "momentum", None)), name
    # the same stochastic depth rates, block by block (they never show in eval outputs)
    assert drop_rates(ours) == drop_rates(theirs)
    difference, scale = max_difference(ours, theirs, stem)
    print(
        f"{stem}: max |ours - torchvision| = {difference:.3g} (outputs up to {scale:.3g}); "
        f"{time.perf_counter() - start:.1f} s"
    )
    assert agrees(difference, scale), (difference, scale)
    assert scale > 0.1  # the outputs are not degenerate


# ----------------------------------------------------------------------------- planted mistakes


def test_a_swapped_mapping_is_caught(compiled_zoo):
    """Two same-shaped tensors exchanged by the rule: shapes agree, the outputs do not."""
    swap = {"layer1.0.conv1.": "layer1.0.conv2.", "layer1.0.conv2.": "layer1.0.conv1."}

    def wrong(key):
        name = resnet(key)
        prefix = name[: len("layer1.0.convK.")]
        return swap[prefix] + name[len(prefix) :] if prefix in swap else name

    theirs = torchvision_model("resnet18")
    ours = generated_model(compiled_zoo("resnet18"))
    state = theirs.state_dict()
    ours.load_state_dict(mapped_state_dict(state, ours.state_dict(), wrong))
    assert not agrees(*max_difference(ours, theirs, "resnet18"))


def test_a_changed_eps_is_caught(tmp_path):
    """The spec with one batch norm's eps changed to GoogLeNet's 1e-3 no longer matches."""
    source = (ZOO / "resnet18.arch").read_text(encoding="utf-8")
    planted = source.replace(
        "conv2      = conv(planes, kernel=3, pad=1, bias=false) |> batchnorm",
        "conv2      = conv(planes, kernel=3, pad=1, bias=false) |> batchnorm(eps=0.001)",
    )
    assert planted != source
    directory = compile_to(check(planted, "planted.arch"), tmp_path / "planted")
    theirs = torchvision_model("resnet18")
    ours = generated_model(directory)
    load_torchvision_weights(ours, theirs, "resnet18")
    assert not agrees(*max_difference(ours, theirs, "resnet18"))


def test_an_incomplete_or_ambiguous_rule_is_refused():
    theirs = torchvision_model("resnet18").state_dict()
    ours = {resnet(k): v for k, v in theirs.items() if not k.endswith("num_batches_tracked")}
    assert key_mapping(theirs, ours, resnet)
    with pytest.raises(AssertionError, match="generated tensors no torchvision key maps to"):
        key_mapping(theirs, {**ours, "extra.conv.weight": torch.zeros(1)}, resnet)
    with pytest.raises(AssertionError, match="several torchvision keys map to"):
        key_mapping(theirs, ours, lambda k: resnet(k).replace("conv2", "conv1"))
    with pytest.raises(AssertionError, match="shapes differ"):
        key_mapping(theirs, {**ours, "head.dense.bias": torch.zeros(10)}, resnet)
    with pytest.raises(UnmappedKey):
        resnet("layer1.0.se.fc1.weight")


def test_rule_covers_nothing_unexpected():
    """The rules reject keys of other families rather than guessing."""
    with pytest.raises(UnmappedKey):
        MODELS["densenet121"][2]([])("layer1.0.conv1.weight")
    with pytest.raises(UnmappedKey):
        MODELS["vgg16"][2]([])("features.1.weight")  # a ReLU's index in vgg16


def test_only_trailing_ones_are_reshaped():
    """ConvNeXt's (C, 1, 1) layer scale loads as our (C,) one, values in order; other shapes
    with as many elements are refused."""
    rule = MODELS["convnext_tiny"][2]([])
    theirs = {"features.1.0.layer_scale": torch.arange(4.0).reshape(4, 1, 1)}
    ours = {"stage1.0.branch.layer_scale.scale": torch.zeros(4)}
    state = mapped_state_dict(theirs, ours, rule)
    assert state["stage1.0.branch.layer_scale.scale"].tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(AssertionError, match="shapes differ"):
        mapped_state_dict(theirs, {"stage1.0.branch.layer_scale.scale": torch.zeros(2, 2)}, rule)


def test_convnext_drop_rates_are_compared():
    """torchvision's ConvNeXt-T has 18 stochastic depth modules that drop_rates finds."""
    with torch.device("meta"):
        rates = drop_rates(torchvision.models.convnext_tiny())
    assert len(rates) == 18 and rates[0] == 0.0 and rates[-1] == pytest.approx(0.1)


def same_distribution(ours, theirs):
    """Whether two freshly initialised tensors look drawn alike: constants equal; large tensors
    of the same mean and standard deviation (within 15%: over 4 standard errors at 1000
    elements); small ones of the same magnitude (largest |value| within a factor 2)."""
    if theirs.min() == theirs.max():
        return torch.equal(ours.reshape(theirs.shape), theirs)
    if theirs.numel() >= 1000:
        std = theirs.std()
        return abs(ours.mean() - theirs.mean()) <= 0.2 * std and abs(ours.std() / std - 1) <= 0.15
    return 0.5 <= ours.abs().max() / theirs.abs().max() <= 2


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["convnext_tiny", "regnet_y_400mf"])
def test_initialisation_is_torchvisions(stem, compiled_zoo):
    """Each tensor of the spec's own initialisation is drawn as torchvision draws its own."""
    builder, kwargs, rule_for = MODELS[stem]
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, builder)(weights=None, **kwargs).state_dict()
    ours = generated_model(compiled_zoo(stem)).state_dict()
    mapping = key_mapping(theirs, ours, rule_for(theirs.keys()))
    differ = [k for k, t in mapping.items() if not same_distribution(ours[t].float(), theirs[k])]
    assert not differ, differ[:5]
