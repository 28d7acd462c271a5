"""Every file `archdsl compile` writes, the copied runtime included, passes ruff's default
settings (as a user's ruff applies them in the output directory) from inside the output
directory and from outside it (isort's first-party guess depends on where ruff runs)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl.compiler import check_source
from archdsl.emit import write_output

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "alexnet_two_tower.arch"  # towers: torch's placement helpers too


def ruff(*args, cwd):
    """Run ruff with its default settings (no project configuration) on every file in `.`."""
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    command = [sys.executable, "-m", "ruff", *args[:1], "--isolated", "--no-cache", *args[1:]]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_every_written_file_passes_ruff_defaults(backend, tmp_path):
    checked = check_source(SPEC.read_text(encoding="utf-8"), str(SPEC))
    out = tmp_path / "out"
    write_output(checked, backend, out)
    files = sorted(p.name for p in out.glob("*.py"))
    assert {"model.py", "train.py", "trainer_args.py", "synthetic.py"} <= set(files)
    for cwd, target in ((out, "."), (tmp_path, "out")):
        lint = ruff("check", "--output-format", "concise", target, cwd=cwd)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        fmt = ruff("format", "--check", target, cwd=cwd)
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr


POCKET = ROOT / "tests" / "conformance" / "specs" / "convnext_pocket.arch"  # issue 12's ops
VIT_POCKET = ROOT / "tests" / "conformance" / "specs" / "vit_pocket.arch"  # issue 13's


@pytest.mark.parametrize("pocket", [POCKET, VIT_POCKET], ids=["convnext", "vit"])
@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_the_new_ops_give_clean_and_deterministic_code(backend, pocket, tmp_path):
    """The pocket ConvNeXt's and ViT's model.py (layer norm, layer scale, stochastic depth,
    gelu and the other new activations; the token ops and attention; with their helper
    classes) passes ruff and is the same each time."""
    texts = []
    for run in ("a", "b"):
        checked = check_source(pocket.read_text(encoding="utf-8"), str(pocket))
        write_output(checked, backend, tmp_path / run)
        texts.append((tmp_path / run / "model.py").read_text(encoding="utf-8"))
    assert texts[0] == texts[1]
    for command in (("check", "--output-format", "concise"), ("format", "--check")):
        done = ruff(*command, "model.py", cwd=tmp_path / "a")
        assert done.returncode == 0, done.stdout + done.stderr
