"""`archdsl weights SPEC --from SOURCE -o FILE.npz`: torchvision's weights, paired by structure.

For every zoo model torchvision has: its model with random weights and random batch-norm
statistics (test_zoo_vs_torchvision's `torchvision_model`) is saved as a .pth, imported through
the CLI with `--arch torchvision:NAME`, loaded into the compiled PyTorch model with its own
`load_weights`, and must give torchvision's outputs; the pairing must equal the hand-written
per-family rules of torchvision_names.py, the oracle. Also: a bare state_dict (no --arch, paired
in key order), a .safetensors file, a checkpoint dict, fine-tuning with --except, and refusals.
ResNet-18, MobileNetV2 and a small AlexNet-like model run by default, the rest under -m slow.
"""

import json
import struct
import zipfile

import numpy as np
import pytest
from ptgen import check, check_file, compile_to, import_model
from test_zoo_vs_torchvision import (
    ZOO,
    agrees,
    compiled_zoo,  # noqa: F401 (a fixture)
    max_difference,
    torchvision_model,
)
from torchvision_names import MODELS, key_mapping

from archdsl.cli import main
from archdsl.spec_records import spec_graph
from archdsl.torch_source import SourceError, state_dict_graph, trace
from archdsl.weight_import import import_weights, load_source
from archdsl.weight_pairing import INPUT, PairingError, pair
from archdsl.weights import expected_tensors

torch = pytest.importorskip("torch")
builders = pytest.importorskip("torchvision").models

DEFAULT = {"resnet18", "mobilenet_v2"}


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory):
    """(torchvision's ResNet-18 state_dict with random statistics, that state saved as .pth)."""
    state = torchvision_model("resnet18").state_dict()
    return state, saved(state, tmp_path_factory.mktemp("resnet18") / "resnet18.pth")


def zoo_stems():
    """Every zoo stem torchvision has; all but DEFAULT under -m slow."""
    return [s if s in DEFAULT else pytest.param(s, marks=pytest.mark.slow) for s in MODELS]


def run(capsys, *argv):
    """(exit code, stdout, stderr) of `archdsl ARGV`."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def saved(state, path):
    """Save a state_dict with torch.save; returns the path."""
    torch.save(state, path)
    return path


@pytest.mark.parametrize("stem", zoo_stems())
def test_torchvision_weights_import_and_give_its_outputs(stem, tmp_path, compiled_zoo):  # noqa: F811
    """Through the functions `archdsl weights --from FILE --arch torchvision:NAME` calls (the
    CLI itself is tested on ResNet-18 below): one trace per model."""
    builder = MODELS[stem][0]
    theirs = torchvision_model(stem)
    pth = saved(theirs.state_dict(), tmp_path / f"{stem}.pth")
    checked = check_file(ZOO / f"{stem}.arch")
    source = load_source(str(pth), f"torchvision:{builder}", tuple(checked.graph.inputs[0].shape))
    # the structural pairing is the per-family rule of torchvision_names.py, tensor for tensor
    state = theirs.state_dict()
    oracle = key_mapping(state, expected_tensors(checked.report), MODELS[stem][2](state.keys()))
    assert pair(spec_graph(checked.report), source.graph).keys == oracle
    # and the imported file gives torchvision's outputs
    npz = tmp_path / f"{stem}.npz"
    import_weights(checked.report, source, frozenset(), npz, force=False)
    ours = loaded_model(compiled_zoo(stem), npz)
    assert agrees(*max_difference(ours, theirs, stem))


def loaded_model(directory, npz):
    """The compiled model of `directory`, its weights loaded from `npz` by its own strict
    `load_weights`, in eval mode."""
    module = import_model(directory)
    model = module.build_model()
    module.load_weights(model, npz)
    return model.eval()


# ----------------------------------------------------------------------------- bare files


SMALL = """
model SmallAlexNet
input image: 3 x 35 x 35
conv1 = conv(16, kernel=5, stride=2) |> relu |> maxpool(3, stride=2)
conv2 = conv(32, kernel=3, pad=1, groups=2) |> relu
conv3 = conv(32, kernel=3, pad=1) |> relu |> maxpool(2, stride=2)
fc6   = flatten |> dropout(0.5) |> dense(64) |> relu
fc7   = dense(10)
"""


def small_torch_model():
    """SMALL written in plain PyTorch, as torchvision's AlexNet is (features, classifier)."""
    from torch import nn

    torch.manual_seed(5)
    model = nn.Sequential()
    model.features = nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(16, 32, 3, padding=1, groups=2),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
    )
    model.classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(288, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    return model.eval()


def test_a_bare_state_dict_of_a_small_alexnet_pairs_in_key_order(tmp_path, capsys):
    theirs = small_torch_model()
    spec = tmp_path / "small.arch"
    spec.write_text(SMALL, encoding="utf-8")
    pth = saved({"state_dict": theirs.state_dict(), "epoch": 3}, tmp_path / "small.pth")
    code, out, err = run(capsys, "weights", spec, "--from", pth, "-o", tmp_path / "small.npz")
    assert code == 0, err
    assert (
        "10 tensors of" in out
        and "(5 layers)" in out
        and "in key order, by kind and shape alone" in out
    )
    ours = loaded_model(compile_to(check(SMALL), tmp_path / "build"), tmp_path / "small.npz")
    x = torch.randn(2, 3, 35, 35, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_a_bare_resnet18_state_dict_pairs_in_key_order(resnet18, tmp_path, capsys):
    theirs, pth = resnet18
    npz = tmp_path / "r18.npz"
    code, out, err = run(capsys, "weights", ZOO / "resnet18.arch", "--from", pth, "-o", npz)
    assert code == 0, err
    assert_oracle_arrays(npz, theirs, "resnet18")


def assert_oracle_arrays(npz, theirs, stem, left_out=()):
    """The .npz holds each tensor of `theirs` under the oracle's name (but `left_out`)."""
    mapping = {k: v for k, v in oracle_mapping(stem, theirs).items() if k not in left_out}
    with np.load(npz) as data:
        assert sorted(data.files) == sorted(mapping.values())
        for key, ours in mapping.items():
            np.testing.assert_array_equal(data[ours], theirs[key].numpy().reshape(data[ours].shape))


def oracle_mapping(stem, state):
    """The oracle's {their key: our key} for a zoo model, counters left out."""
    rule = MODELS[stem][2](state.keys())
    return {k: rule(k) for k in state if not k.endswith("num_batches_tracked")}


def write_safetensors(state, path):
    """A .safetensors file, written by the format's definition (the package is not installed):
    an 8-byte little-endian header length, a JSON header, the raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for key, tensor in state.items():
        data = (
            tensor.numpy().astype("<f4").tobytes()
            if tensor.is_floating_point()
            else tensor.numpy().astype("<i8").tobytes()
        )
        header[key] = {
            "dtype": "F32" if tensor.is_floating_point() else "I64",
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return path


def test_a_safetensors_file_imports_with_its_arch(resnet18, tmp_path, capsys):
    theirs, _ = resnet18
    file = write_safetensors(dict(sorted(theirs.items())), tmp_path / "r18.safetensors")
    npz = tmp_path / "r18.npz"
    code, out, err = run(
        capsys,
        "weights",
        ZOO / "resnet18.arch",
        "--from",
        file,
        "--arch",
        "torchvision:resnet18",
        "-o",
        npz,
    )
    assert code == 0, err
    assert_oracle_arrays(npz, theirs, "resnet18")


def test_fine_tuning_leaves_the_head_out(resnet18, tmp_path, capsys):
    """A ResNet-18 of 10 classes takes every tensor but its new head's."""
    spec = tmp_path / "resnet18_10.arch"
    text = (ZOO / "resnet18.arch").read_text(encoding="utf-8")
    spec.write_text(text.replace("dense(1000)", "dense(10)"), encoding="utf-8")
    theirs, pth = resnet18
    npz = tmp_path / "r18.npz"
    args = ("weights", spec, "--from", pth, "--arch", "torchvision:resnet18", "-o", npz)
    code, _, err = run(capsys, *args)
    assert code == 1 and "fc" in err  # the head's shapes differ: refused without --except
    assert not npz.exists()
    code, out, err = run(capsys, *args, "--except", "head")
    assert code == 0, err
    assert "theirs fc.weight, fc.bias; ours head.dense.weight, head.dense.bias" in out
    assert_oracle_arrays(npz, theirs, "resnet18", left_out=("fc.weight", "fc.bias"))


# ----------------------------------------------------------------------------- refusals


def one_line(err):
    """The single line of an error, checked to be one line and no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_another_architecture_is_refused_naming_the_first_tensors(tmp_path, capsys):
    pth = saved(torchvision_model("resnet34").state_dict(), tmp_path / "r34.pth")
    npz = tmp_path / "out.npz"
    code, _, err = run(capsys, "weights", ZOO / "resnet18.arch", "--from", pth, "-o", npz)
    assert code == 1 and not npz.exists()
    assert one_line(err) == (
        f"error[weights]: cannot pair the tensors in order: {pth}'s conv layer1.2.conv1 (64 x 64 x 3 x 3) "
        "meets the spec's conv layer2.0.conv1.conv (128 x 64 x 3 x 3)"
    )
    code, _, err = run(
        capsys,
        "weights",
        ZOO / "resnet18.arch",
        "--from",
        pth,
        "--arch",
        "torchvision:resnet34",
        "-o",
        npz,
    )
    assert code == 1 and not npz.exists()
    assert (
        "torchvision:resnet34's conv layer1.2.conv1 (64 x 64 x 3 x 3) meets the spec's conv layer2.0.conv1.conv"
        in one_line(err)
    )


def test_a_truncated_state_dict_is_refused(resnet18, tmp_path, capsys):
    state, _ = resnet18
    pth = saved(dict(list(state.items())[:-2]), tmp_path / "cut.pth")  # no fc.weight, fc.bias
    npz = tmp_path / "out.npz"
    code, _, err = run(capsys, "weights", ZOO / "resnet18.arch", "--from", pth, "-o", npz)
    assert code == 1 and not npz.exists()
    assert "the spec's dense head.dense (1000 x 512) has no partner" in one_line(err)
    code, _, err = run(
        capsys,
        "weights",
        ZOO / "resnet18.arch",
        "--from",
        pth,
        "--arch",
        "torchvision:resnet18",
        "-o",
        npz,
    )
    assert code == 1 and not npz.exists()
    assert "does not fit torchvision:resnet18: it lacks fc.weight" in one_line(err)


def test_an_existing_file_is_replaced_only_when_archdsl_wrote_it(tmp_path, capsys):
    spec = tmp_path / "small.arch"
    spec.write_text(SMALL, encoding="utf-8")
    pth = saved(small_torch_model().state_dict(), tmp_path / "small.pth")
    npz = tmp_path / "out.npz"
    npz.write_bytes(b"precious")
    args = ("weights", spec, "--from", pth, "-o", npz)
    code, _, err = run(capsys, *args)
    assert code == 2 and "refusing to overwrite a file archdsl did not import" in one_line(err)
    assert npz.read_bytes() == b"precious"
    code, _, err = run(capsys, *args, "--force")
    assert code == 0, err
    assert zipfile.ZipFile(npz).comment.startswith(b"archdsl weights")
    npz.write_bytes(npz.read_bytes())  # a copy of a file it wrote: replaced without --force
    code, _, err = run(capsys, *args)
    assert code == 0, err
    code, out, _ = run(capsys, "weights", spec, npz)  # and it fits the spec
    assert code == 0 and "10 of 10 tensors fit" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--from", "torchvision:no_such_model"], "torchvision has no model 'no_such_model'"),
        (["--from", "missing.pth"], "missing.pth: no such file"),
        (["--from", "torchvision:resnet18", "--except", "nohead"], "--except nohead: no layer"),
        (
            ["--from", "torchvision:resnet18", "--arch", "torchvision:resnet18"],
            "--arch goes with a weight file",
        ),
    ],
)
def test_usage_problems_are_one_line_and_exit_2(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "weights", ZOO / "resnet18.arch", *argv, "-o", "out.npz")
    assert code == 2 and message in one_line(err)
    assert not (tmp_path / "out.npz").exists()


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    code, _, err = run(
        capsys, "weights", ZOO / "resnet18.arch", "--from", bad, "-o", tmp_path / "o.npz"
    )
    assert code == 2 and "not a PyTorch state_dict torch.load can read safely" in one_line(err)


# ----------------------------------------------------------------------------- tracing


class Scaled(torch.nn.Module):
    """A conv whose output a free parameter scales (ConvNeXt's layer scale), then a PReLU or
    a token added to it, as `tail` says."""

    def __init__(self, tail=None):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.gamma = torch.nn.Parameter(torch.ones(4, 1, 1))
        self.tail = tail
        self.token = torch.nn.Parameter(torch.zeros(4, 1, 1)) if tail == "token" else None
        self.act = torch.nn.PReLU() if tail == "prelu" else None

    def forward(self, x):
        y = self.gamma * self.conv(x)
        if self.token is not None:
            y = y + self.token
        return self.act(y) if self.act is not None else y


def test_a_free_parameter_that_scales_is_a_layer_scale():
    graph = trace(Scaled(), (3, 4, 4), "scaled").graph
    assert [(x.name, x.kind, x.tensors[0][2]) for x in graph.in_order()] == [
        ("conv", "conv", (4, 3, 1, 1)),
        ("gamma", "layer_scale", (4, 1, 1)),
    ]
    assert {(f.source, f.target) for f in graph.flows} == {(INPUT, "conv"), ("conv", "gamma")}


@pytest.mark.parametrize(
    "tail, message",
    [
        ("token", "parameter token is used by add, not as a per-channel scale"),
        ("prelu", "layer act is a PReLU, which weight pairing does not know"),
    ],
)
def test_tensors_of_unknown_use_are_refused(tail, message):
    with pytest.raises(SourceError, match=message):
        trace(Scaled(tail), (3, 4, 4), "scaled")


# zoo models whose spec lists the layers in another order than torchvision registers them
# (ViT registers its class token before conv_proj)
LISTED_OTHERWISE = {"convnext_tiny", "regnet_y_400mf", "vit_b_16"}


@pytest.mark.slow
def test_bare_state_dicts_of_the_zoo_pair_as_the_rules_do_or_are_refused():
    """In key order alone, each zoo model's state_dict pairs exactly as the per-family rule
    does, or, where the spec lists its layers in another order, is refused: never wrongly."""
    for stem, (builder, kwargs, rule_for) in MODELS.items():
        with torch.device("cpu" if builder.startswith("regnet") else "meta"):
            state = getattr(builders, builder)(weights=None, **kwargs).state_dict()
        ours = spec_graph(check_file(ZOO / f"{stem}.arch").report)
        if stem in LISTED_OTHERWISE:
            with pytest.raises(PairingError, match="cannot pair the tensors in order"):
                pair(ours, state_dict_graph(state, stem))
        else:
            rule = rule_for(state.keys())
            expected = {k: rule(k) for k in state if not k.endswith("num_batches_tracked")}
            assert pair(ours, state_dict_graph(state, stem)).keys == expected, stem
