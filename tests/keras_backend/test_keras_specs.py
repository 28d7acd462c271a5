"""Every spec compiles to a Keras model that matches the front end's report layer by layer."""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from archdsl.backends.keras.emitter import render_model
from kerasgen import ROOT, SPECS, check, compile_to, import_model, keras_shape

from archdsl.report_format import frozen_params
from archdsl.shapes import trailing_softmax

keras = pytest.importorskip("keras")

# Counts computed independently of this project (see /work/shared/DESIGN.md).
KNOWN_PARAMS = {"alexnet.arch": 60_965_224, "torchvision_alexnet.arch": 61_100_840}
RUFF = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")


def _id(path):
    return str(path.relative_to(ROOT))


@pytest.fixture(scope="module", params=SPECS, ids=_id)
def built(request, tmp_path_factory):
    """One spec: its check result, compiled module and built model (one spec alive at a time)."""
    path = request.param
    checked = check(path.read_text(encoding="utf-8"), str(path))
    directory = compile_to(checked, tmp_path_factory.mktemp(path.stem))
    module = import_model(directory)
    yield checked, module, module.build_model()
    keras.backend.clear_session()


def test_the_spec_globs_find_the_reference_specs():
    names = {p.name for p in SPECS}
    assert set(KNOWN_PARAMS) <= names and "kitchen_sink.arch" in names


def test_forward_pass_gives_one_row_of_logits_per_example(built):
    checked, module, model = built
    rng = np.random.default_rng(0)
    if hasattr(module, "INPUT_VOCAB"):
        x = rng.integers(0, module.INPUT_VOCAB, (2, *module.INPUT_SHAPE)).astype("int32")
    else:
        x = rng.normal(size=(2, *module.INPUT_SHAPE)).astype("float32")
    logits = np.asarray(model(x, training=False))
    assert logits.shape == (2, module.NUM_CLASSES)
    assert module.NUM_CLASSES == checked.report.outputs[checked.graph.output][0]
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    expected = shifted / shifted.sum(-1, keepdims=True)
    if not trailing_softmax(checked.graph):
        expected = logits
    np.testing.assert_allclose(np.asarray(module.predict(model, x)), expected, rtol=1e-5, atol=1e-6)


def _keras_output(model, name):
    """The layer that carries an op's output: `name`, or its `_stride` helper when there is one."""
    helpers = {layer.name for layer in model.layers}
    return model.get_layer(f"{name}_stride" if f"{name}_stride" in helpers else name)


def test_every_layer_has_the_reported_shape(built):
    checked, _, model = built
    layers = checked.report.layers
    if trailing_softmax(checked.graph):
        layers = layers[:-1]
    for layer in layers:
        got = tuple(_keras_output(model, layer.name).output.shape[1:])
        assert got == keras_shape(layer.output_shape), layer.name


def test_trailing_softmax_is_left_out_of_the_model(built):
    checked, _, model = built
    names = {layer.name for layer in model.layers}
    softmaxes = [layer.name for layer in checked.report.layers if layer.op == "softmax"]
    if trailing_softmax(checked.graph):
        assert softmaxes[-1] not in names
        softmaxes = softmaxes[:-1]
    assert set(softmaxes) <= names


def test_parameter_counts_match_the_report(built):
    checked, module, model = built
    assert model.count_params() == checked.report.total_params
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == checked.report.trainable_params - frozen_params(checked.report)
    assert model.count_params() == KNOWN_PARAMS.get(module.SPEC, checked.report.total_params)


def test_module_constants_follow_the_contract(built):
    checked, module, model = built
    graph = checked.graph
    assert module.MODEL_NAME == model.name == graph.name
    assert module.SPEC == Path(checked.file).name
    assert module.INPUT_SHAPE == keras_shape(graph.inputs[0].shape)
    groups = {"freeze", "lr_scale"}  # in TRAIN only where the spec fine-tunes, lr_scale a dict
    expected = json.loads(graph.train.model_dump_json(by_alias=True, exclude={"span", *groups}))
    fine_tuning = {"freeze": list(graph.train.freeze), "lr_scale": dict(graph.train.lr_scale)}
    expected.update({key: value for key, value in fine_tuning.items() if value})
    assert json.loads(json.dumps(module.TRAIN)) == expected
    assert list(module.TRAIN)[:5] == ["batch", "epochs", "loss", "optimizer", "schedule"]


def test_model_py_imports_only_keras_and_the_runtime(built):
    checked, module, _ = built
    tree = ast.parse(render_model(checked.graph, checked.report, "x.arch"))
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    runtime = {"initializers", "layers", "optim", "schedules", "shifted_windows", "token_layers"}
    runtime |= {"weights"}
    runtime.add("sequence")
    assert imported <= {"keras", "functools", *runtime}  # functools.partial: nested block calls
    assert "keras" in imported
    assert "tf." not in ast.unparse(tree)


@pytest.mark.parametrize("path", SPECS, ids=_id)
def test_generated_model_passes_ruff_with_default_settings(path, tmp_path):
    checked = check(path.read_text(encoding="utf-8"), str(path))
    directory = compile_to(checked, tmp_path / "out")
    for cwd in (directory, tmp_path):  # isort's first-party guess depends on the directory
        for args in (["check"], ["format", "--check"]):
            run = subprocess.run(
                [RUFF, *args, "--isolated", "--no-cache", str(directory / "model.py")],
                cwd=cwd,
                capture_output=True,
                text=True,
            )
            assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("path", SPECS, ids=_id)
def test_two_compiles_are_byte_identical(path, tmp_path):
    source = path.read_text(encoding="utf-8")
    first = compile_to(check(source, str(path)), tmp_path / "a")
    second = compile_to(check(source, str(path)), tmp_path / "b")
    files = sorted(p.name for p in first.iterdir() if p.is_file())
    assert "model.py" in files
    assert files == sorted(p.name for p in second.iterdir() if p.is_file())
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_compiling_for_keras_imports_no_framework(tmp_path):
    argv = ["compile", "--backend", "keras", str(SPECS[0]), "-o", str(tmp_path)]
    code = (
        "import sys\n"
        "from archdsl.cli import main\n"
        f"code = main({argv!r})\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(code, sorted(loaded & {'tensorflow', 'keras', 'jax', 'torch'}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.stdout.split("\n")[-2] == "0 []", run.stdout + run.stderr
    assert (tmp_path / "model.py").is_file()
