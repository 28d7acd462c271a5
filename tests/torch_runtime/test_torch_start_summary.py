"""The trainers' start summary: the compiled shape_table.py printed with the run's batch
agrees with `archdsl shapes` and with the parameters PyTorch counts in the built model."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from archdsl.compiler import check_source
from archdsl.emit import write_output
from archdsl.report_format import as_table

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "mini_alexnet.arch"


def load_from(folder, name):
    """Import folder/name.py under its bare name (its siblings importable likewise)."""
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def compiled(tmp_path, monkeypatch):
    """(checked spec, output folder) of mini_alexnet compiled for PyTorch; the bare module
    names it imports are forgotten afterwards."""
    checked = check_source(SPEC.read_text(encoding="utf-8"), str(SPEC))
    write_output(checked, "torch", tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("shape_table", "start_summary", "model"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield checked, tmp_path
    for name in ("shape_table", "start_summary", "model"):
        sys.modules.pop(name, None)


def test_the_summary_is_the_shapes_table_at_the_runs_batch(compiled):
    checked, out = compiled
    summary = load_from(out, "start_summary").summary_text(96, 2, 10)
    table = as_table(checked.report, 96).splitlines()[1:]  # `archdsl shapes --batch 96`
    lines = summary.splitlines()
    assert lines[:-1] == table
    per_replica = as_table(checked.report, 48).splitlines()[-1]  # `shapes --batch 48`
    memory = re.search(r"; ([\d.,]+ MiB) in float32 at batch 48$", per_replica).group(1)
    assert (
        lines[-1] == f"global batch 96 (2 replicas x 48, {memory} of activations each); 10 classes"
    )


def test_the_summarys_parameters_are_the_built_models(compiled):
    _, out = compiled
    table = load_from(out, "shape_table")
    net = load_from(out, "model").build_model()
    trainable = sum(p.numel() for p in net.parameters())
    statistics = sum(b.numel() for n, b in net.named_buffers() if n.endswith(("_mean", "_var")))
    assert table.LINES[-2] == (
        f"total params: {trainable + statistics:,} (trainable {trainable:,}, "
        f"non-trainable {statistics:,})"
    )
