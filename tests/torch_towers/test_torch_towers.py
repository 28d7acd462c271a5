"""Towers in PyTorch: the paper's two-tower AlexNet against the grouped one and a NumPy
reference, and model parallelism with place() and the trainer's --devices (on CPU devices)."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from archdsl.backends.torch.emitter import render_model
from ptgen import ROOT, check, check_file, compile_to, import_model
from towers_reference import first_block, images, tower_weights, two_tower_logits

from archdsl.emit import EmitError

torch = pytest.importorskip("torch")

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# 20 synthetic training images of 10 classes, 10 validation images; steps of 4
DATA = ("--synthetic-per-class", 2, "--epochs", 1, "--batch-size", 4, "--workers", 0, "--seed", 3)
THREE_TOWERS = """
model ThreeTowers
input image: 3 x 16 x 16
stem_with_a_name_long_enough_to_wrap_lines = conv(4, kernel=3, pad=1) |> relu
towers 3 {
  a_fairly_long_statement_name_in_a_tower = conv(4, kernel=3, pad=1) |> relu
  b_merged_statement_with_another_long_name = merge |> conv(4, kernel=1) |> batchnorm |> relu
  c = add(a_fairly_long_statement_name_in_a_tower, b_merged_statement_with_another_long_name,
          stem_with_a_name_long_enough_to_wrap_lines) |> relu |> dropout(0.2)
  d = concat(c, stem_with_a_name_long_enough_to_wrap_lines) |> conv(4, kernel=1)
}
e = flatten |> dropout(0.5) |> dense(5)
"""


def layers(model):
    """{layer: [weight, bias]} as float64 arrays, from the state_dict (`conv1.conv.weight`)."""
    out = {}
    for key, tensor in model.state_dict().items():
        layer, kind = key.rsplit(".", 1)
        out.setdefault(layer, [None, None])[kind == "bias"] = tensor.double().numpy()
    return out


def load_layers(model, params):
    """Load {layer: [weight, bias]} into a model; every tensor of the model must be given."""
    state = {
        f"{layer}.{kind}": torch.from_numpy(np.asarray(array, dtype=np.float32))
        for layer, arrays in params.items()
        for kind, array in zip(("weight", "bias"), arrays, strict=True)
    }
    model.load_state_dict(state, strict=True)
    return model


def transferred(mini, suffix, order=(0, 1)):
    """(grouped net, two-tower net with the grouped net's weights), both in eval mode."""
    torch.manual_seed(0)
    grouped = mini(f"mini_grouped{suffix}").module.build_model().eval()
    towers = mini(f"mini_two_tower{suffix}").module.build_model().eval()
    load_layers(towers, tower_weights(layers(grouped), out_axis=0, order=order))
    return grouped, towers


def outputs(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).double().numpy()


def assert_same(a, b):
    """Equal up to float32 rounding (the grouped conv sums in another order than two convs)."""
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())


# ----------------------------------------------------------------------------- the networks


def test_two_tower_equals_grouped_without_lrn(mini):
    grouped, towers = transferred(mini, "_nolrn")
    x = images()
    assert_same(outputs(towers, x), outputs(grouped, x))
    assert np.abs(outputs(grouped, x)).max() > 10  # a signal, not just the biases


def test_weights_in_the_wrong_towers_are_caught(mini):
    """The comparison above can fail: the grouped net's halves swapped between the towers."""
    grouped, towers = transferred(mini, "_nolrn", order=(1, 0))
    x = images()
    with pytest.raises(AssertionError):
        assert_same(outputs(towers, x), outputs(grouped, x))


def test_with_lrn_the_towers_normalise_within_each_half(mini):
    grouped, towers = transferred(mini, "")
    x = images()
    ours, theirs = outputs(towers, x), outputs(grouped, x)
    params = layers(towers)
    within = two_tower_logits(x, params, lrn="towers")
    across = two_tower_logits(x, params, lrn="full")
    assert_same(ours, within)  # the paper's net
    assert_same(theirs, across)  # the grouped net: LRN windows over all channels
    scale = np.abs(within).max()
    assert np.abs(ours - theirs).max() > 1e-2 * scale  # they differ, by far more than rounding
    assert np.abs(within - across).max() > 1e-2 * scale


def test_first_block_differs_only_where_the_lrn_window_crosses_the_halves(mini):
    """conv1 -> relu -> LRN(5) -> pool: the grouped net's 16 channels equal the towers' 8 + 8
    except the two on each side of the boundary (channels 6, 7 | 8, 9)."""
    grouped, towers = transferred(mini, "")
    x = torch.from_numpy(images())
    with torch.no_grad():
        mixed = grouped.conv1(x).numpy()
        halves = [towers.conv1_t0(x).numpy(), towers.conv1_t1(x).numpy()]
    reference = first_block(x.double().numpy(), layers(towers))
    for ours, ref in zip(halves, reference, strict=True):
        assert_same(ours, ref)
    split = np.concatenate(halves, axis=1)
    differs = np.abs(split - mixed).max(axis=(0, 2, 3)) > 1e-4 * np.abs(mixed).max()
    assert np.flatnonzero(differs).tolist() == [6, 7, 8, 9]


# ----------------------------------------------------------------------------- placement


def test_place_puts_each_tower_on_its_device(mini):
    module = mini("mini_two_tower").module
    model = module.place(module.build_model(), ["cpu", "meta"])  # meta: a second device on CPU
    devices = {name: p.device.type for name, p in model.named_parameters()}
    assert {n for n, d in devices.items() if d == "meta"} == {
        n for n in devices if n.split(".")[0].endswith("_t1")
    }
    assert all(devices[n] == "cpu" for n in devices if not n.split(".")[0].endswith("_t1"))
    assert {devices[n] for n in devices if n.startswith(("fc", "conv1_t0"))} == {"cpu"}


def test_forward_moves_tensors_only_at_the_exchange_points(mini):
    module = mini("mini_two_tower").module
    model = module.build_model().eval()
    text = (mini("mini_two_tower").dir / "model.py").read_text()
    calls = []

    def spy(x, tower):
        calls.append((tuple(x.shape[1:]), tower))
        return x

    model._to_tower = spy
    model(torch.zeros(2, 3, 99, 99))
    # the image into tower 1; each tower's conv3 reads the other's conv2; fc6 reads tower 1's conv5
    assert calls == [((3, 99, 99), 1), ((12, 5, 5), 0), ((12, 5, 5), 1), ((8, 2, 2), 0)]
    assert text.count("self._to_tower(") == 4


def test_copies_are_queued_right_after_the_row_that_makes_them(mini):
    # a copy between two GPUs makes each one's queue wait for the other's work queued so far:
    # the batch goes to tower 1 before tower 0 starts, each activation right after both
    # towers made theirs, before the next row is queued (the order the GPUs are handed work)
    model = mini("mini_two_tower").module.build_model().eval()
    order = []
    for name, layer in model.named_children():
        layer.register_forward_hook(lambda *args, name=name: order.append(name))
    model._to_tower = lambda x, tower: order.append(f"copy {tuple(x.shape[1:])} to {tower}") or x
    model(torch.zeros(2, 3, 99, 99))
    copied_conv2 = ["copy (12, 5, 5) to 0", "copy (12, 5, 5) to 1"]
    assert order == [
        "copy (3, 99, 99) to 1",
        *("conv1_t0", "conv1_t1", "conv2_t0", "conv2_t1"),
        *copied_conv2,
        *("conv3_t0", "conv3_t1", "conv4_t0", "conv4_t1", "conv5_t0", "conv5_t1"),
        "copy (8, 2, 2) to 0",
        *("fc6", "fc7", "fc8"),
    ]


def test_one_device_is_a_no_op(mini):
    module = mini("mini_two_tower").module
    x = torch.randn(2, 3, 99, 99)
    unplaced = module.build_model()
    assert unplaced._to_tower(x, 1) is x
    placed = module.place(module.build_model(), ["cpu"])
    assert placed._tower_devices == [torch.device("cpu")] * 2 and placed._to_tower(x, 1) is x


@pytest.mark.parametrize("name", ["mini_two_tower", "three_towers"])
def test_two_cpu_devices_compute_what_one_device_does(name, mini, tmp_path):
    if name == "three_towers":  # 3 towers on 2 devices: tower 2 shares devices[0]
        module = import_model(compile_to(check(THREE_TOWERS), tmp_path / "out"))
        shape = (3, 16, 16)
    else:
        module, shape = mini(name).module, (3, 99, 99)
    torch.manual_seed(0)
    one = module.build_model()
    two = module.place(module.build_model(), ["cpu", "cpu"])
    two.load_state_dict(one.state_dict())
    x = torch.randn(4, *shape)
    one.eval(), two.eval()
    with torch.no_grad():
        assert torch.equal(one(x), two(x))
    grads = []
    for model in (one, two):
        model.train()
        torch.manual_seed(1)  # the same dropout masks
        model.zero_grad()
        model(x).square().sum().backward()
        grads.append([p.grad for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))


# ----------------------------------------------------------------------------- generated code


def test_specs_without_towers_get_nothing_new(mini):
    text = (mini("mini_grouped").dir / "model.py").read_text()
    assert "def place(" not in text and "_tower" not in text
    assert not hasattr(mini("mini_grouped").module, "place")


def ruff(*args, cwd):
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    command = [sys.executable, "-m", "ruff", *args, "--isolated", "--no-cache", "model.py"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("source", ["mini_two_tower", "alexnet_two_tower", "three_towers"])
def test_tower_code_is_ruff_clean_and_byte_identical(source, tmp_path):
    if source == "three_towers":
        first, second = check(THREE_TOWERS), check(THREE_TOWERS)
    else:
        path = (ROOT / "specs" if source.startswith("alexnet") else ROOT / "tests" /
                "towers_common" / "specs") / f"{source}.arch"  # fmt: skip
        first, second = check_file(path), check_file(path)
    text = render_model(first.graph, first.report, "spec.arch")
    assert text == render_model(second.graph, second.report, "spec.arch")
    assert "def place(model, devices):" in text
    directory = compile_to(first, tmp_path / "out")
    for args in (("check",), ("format", "--check", "--diff")):
        done = ruff(*args, cwd=directory)
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_towered_model_named_place_is_refused():
    source = "model place\ninput image: 3 x 8 x 8\ntowers 2 {\n a = conv(2, kernel=3)\n}\n"
    source += "b = flatten |> dense(2)\n"
    from archdsl.compiler import check_source

    checked = check_source(source, "place.arch")
    if not checked.ok:  # the front end may reserve the name itself
        assert any(d.code == "E015" for d in checked.diagnostics)
        return
    with pytest.raises(EmitError, match="place"):
        render_model(checked.graph, checked.report, "place.arch")


# ----------------------------------------------------------------------------- the trainer


def train(directory, *args, env=ENV):
    """Run directory/train.py; returns the CompletedProcess."""
    command = [sys.executable, str(directory / "train.py"), *map(str, args)]
    return subprocess.run(
        command, cwd=directory, env=env, capture_output=True, text=True, timeout=300
    )


def checkpoint(out):
    return torch.load(out / "last.pt", map_location="cpu", weights_only=False)


def test_trainer_on_two_cpu_devices_matches_one_device(mini, tmp_path):
    directory = mini("mini_two_tower").dir
    placed = train(
        directory, *DATA, "--max-steps", 2, "--devices", "cpu,cpu", "--out", tmp_path / "two"
    )
    assert placed.returncode == 0, placed.stderr
    assert "towers on cpu, cpu (model parallel)" in placed.stdout
    plain = train(directory, *DATA, "--max-steps", 2, "--out", tmp_path / "one")
    assert plain.returncode == 0, plain.stderr
    a, b = checkpoint(tmp_path / "two"), checkpoint(tmp_path / "one")
    assert a["state"]["global_step"] == 2
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["val_loss"] for r in a["metrics"]] == [r["val_loss"] for r in b["metrics"]]


def test_trainer_devices_count_composes_with_amp(mini, tmp_path):
    directory = mini("mini_two_tower").dir
    args = ("--devices", 2, "--device", "cpu", "--amp", "--max-steps", 1)
    done = train(directory, *DATA, *args, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "towers on cpu, cpu (model parallel)" in done.stdout
    assert "--amp needs CUDA" in done.stderr  # on CPU devices AMP falls back to float32


@pytest.mark.parametrize(
    "spec, args, env, message",
    [
        ("mini_grouped", ("--devices", "2"), {}, "has no towers"),
        ("mini_two_tower", ("--devices", "cpu,cpu"), {"WORLD_SIZE": "2"}, "torchrun"),
        ("mini_two_tower", ("--devices", "gpu0,cpu"), {}, "is not a device"),
        ("mini_two_tower", ("--devices", "0"), {}, "at least one"),
        ("mini_two_tower", ("--devices", "cpu,cuda:0", "--device", "cpu"), {}, "not a cpu"),
    ],
)
def test_trainer_devices_errors(spec, args, env, message, mini, tmp_path):
    done = train(mini(spec).dir, *args, "--out", tmp_path, env={**ENV, **env})
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_trainer_cuda_devices_without_cuda(mini, tmp_path):
    done = train(mini("mini_two_tower").dir, "--devices", "cuda:0,cuda:1", "--out", tmp_path)
    assert done.returncode == 2 and "no cuda:0" in done.stderr


@pytest.mark.skipif(torch.cuda.device_count() < 1, reason="needs a GPU")
@pytest.mark.parametrize("amp", [False, True])
def test_trainer_on_cuda_devices(amp, mini, tmp_path):
    """On a machine with GPUs: the towers on cuda:0 and cuda:1 (or twice cuda:0)."""
    directory = mini("mini_two_tower").dir
    devices = "cuda:0,cuda:1" if torch.cuda.device_count() > 1 else "cuda:0,cuda:0"
    extra = ("--amp",) if amp else ()
    args = ("--max-steps", 2, "--devices", devices, *extra)
    done = train(directory, *DATA, *args, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"towers on {devices.replace(',', ', ')}" in done.stdout
