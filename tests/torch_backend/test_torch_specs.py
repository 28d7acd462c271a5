"""Every spec in specs/ compiles to a model whose shapes, counts and names are its report's."""

import importlib.util
import subprocess
import sys

import pytest
from archdsl.backends.torch.emitter import render_model
from ptgen import ROOT, SPECS, check, check_file, compile_to

from archdsl.ops import MERGES
from archdsl.shapes import trailing_softmax
from archdsl.weights import expected_tensors

torch = pytest.importorskip("torch")

IDS = [str(p.relative_to(ROOT / "specs")) for p in SPECS]
PUBLISHED = {  # parameter counts computed independently of this project (DESIGN.md)
    "alexnet.arch": 60_965_224,
    "variants/torchvision_alexnet.arch": 61_100_840,
}
LONG_NAMES = """
model AVeryLongModelNameThatKeepsGoingAndGoingSoThatEveryGeneratedLineHasToWrapSomewhere

input an_input_with_a_remarkably_long_name_for_layout_tests: 4 x 9 x 8

a_branch_with_a_long_name_number_one = conv(6, kernel=3, stride=2, pad=same) |> relu
a_branch_with_a_long_name_number_two = avgpool(3, stride=2, pad=same, count_pad=false)
    |> conv(6, kernel=1, weight=fan_in_uniform(scale=0.123456789), bias=uniform(-0.0123, 0.0456))
    from an_input_with_a_remarkably_long_name_for_layout_tests
the_sum_of_the_branches_with_a_long_name = add(a_branch_with_a_long_name_number_one,
    a_branch_with_a_long_name_number_two, a_branch_with_a_long_name_number_one)
    |> maxpool(2, stride=1, pad=same) |> relu
the_concatenation_of_all_the_branches_above = concat(a_branch_with_a_long_name_number_one,
    a_branch_with_a_long_name_number_two, the_sum_of_the_branches_with_a_long_name)
    |> global_avgpool |> flatten
the_output_layer_with_a_name_long_enough = dense(5, weight=normal(mean=0.001,
    std=0.123456789012345678), bias=false) |> softmax

train {
  optimizer = sgd(lr=0.1, momentum=0.5, weight_decay=0.001, nesterov=true, rule=torch,
                  no_decay=[bias, norm])
  schedule  = multistep(milestones=[1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610],
                        gamma=0.5)
  batch     = 4
  epochs    = 2
}
"""


def module_layers(report, graph):
    """Report layers that are modules of the model: all but merges (concat, add, mul) and a
    trailing softmax."""
    layers = [layer for layer in report.layers if layer.op not in MERGES]
    if trailing_softmax(graph):
        layers.remove(report.by_statement()[graph.output][-1])
    return layers


def record_shapes(model, names):
    """Forward hooks that record each named submodule's output shape (batch axis dropped)."""
    seen = {}
    for name in names:
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, tuple(out.shape[1:]))
        )
    return seen


def random_input(module, batch=2):
    """A random batch for the model: images, or token ids for a text model."""
    if hasattr(module, "INPUT_VOCAB"):
        return torch.randint(module.INPUT_VOCAB, (batch, *module.INPUT_SHAPE))
    return torch.randn(batch, *module.INPUT_SHAPE)


@pytest.mark.parametrize("path", SPECS, ids=IDS)
def test_spec_builds_and_runs_as_its_report_says(path, compiled_file):
    out = compiled_file(path)
    graph, report, module = out.checked.graph, out.checked.report, out.module
    assert module.INPUT_SHAPE == graph.inputs[0].shape
    assert module.NUM_CLASSES == report.outputs[graph.output][0]
    torch.manual_seed(0)
    model = module.build_model().eval()

    assert sum(p.numel() for p in model.parameters()) == report.trainable_params
    tensors = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tensors = {k: v for k, v in tensors.items() if not k.endswith("num_batches_tracked")}
    assert tensors == expected_tensors(report)

    layers = module_layers(report, graph)
    ops = record_shapes(model, [layer.name for layer in layers])
    statements = record_shapes(model, sorted({layer.statement for layer in layers}))
    with torch.no_grad():
        y = model(random_input(module))
    assert tuple(y.shape) == (2, *report.outputs[graph.output])
    assert ops == {layer.name: layer.output_shape for layer in layers}
    assert statements == {name: report.outputs[name] for name in statements}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name, compiled_file):
    model = compiled_file(ROOT / "specs" / name).module.build_model()
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name]


def ruff(*args, cwd):
    """Run ruff with its default settings (no project configuration) in `cwd`."""
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    command = [sys.executable, "-m", "ruff", *args, "--isolated", "--no-cache", "model.py"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("path", SPECS, ids=IDS)
def test_generated_model_is_ruff_clean(path, compiled_file):
    directory = compiled_file(path).dir
    lint = ruff("check", cwd=directory)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = ruff("format", "--check", "--diff", cwd=directory)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_long_names_wrap_as_ruff_wraps_them(tmp_path):
    directory = compile_to(check(LONG_NAMES), tmp_path / "out")
    text = (directory / "model.py").read_text()
    assert "del (\n" in text and "\n                + a_branch" in text  # wrapped forms are used
    lint = ruff("check", cwd=directory)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = ruff("format", "--check", "--diff", cwd=directory)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.parametrize("path", SPECS, ids=IDS)
def test_compiles_are_byte_identical(path, tmp_path):
    first, second = check_file(path), check_file(path)
    assert render_model(first.graph, first.report, path.name) == render_model(
        second.graph, second.report, path.name
    )
    a, b = compile_to(first, tmp_path / "a"), compile_to(second, tmp_path / "b")
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
