"""`archdsl compile --backend torch`: the files it writes, rewrites, refuses; no framework import."""

import os
import subprocess
import sys

from ptgen import ROOT

SPEC = ROOT / "specs" / "alexnet.arch"
PROBE = """
import sys
from archdsl.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "tensorflow", "keras", "jax") if m in sys.modules)
print(f"EXIT:{code} HEAVY:{','.join(heavy)}")
"""


def archdsl(*args, env=None):
    """Run the CLI in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "archdsl", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )


def test_compile_writes_model_trainer_and_runtime(tmp_path):
    out = tmp_path / "alexnet-torch"
    done = archdsl("compile", SPEC, "--backend", "torch", "-o", out)
    assert done.returncode == 0, done.stderr
    runtime = {
        p.name for d in ("common", "torch/runtime") for p in (ROOT / "backends" / d).glob("*.py")
    }
    written = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert written == {"model.py", "shape_table.py"} | (runtime - {"__init__.py"})
    assert {"model.py", "train.py", "optim.py", "schedules.py"} <= written
    assert "class AlexNet(nn.Module):" in (out / "model.py").read_text()


def test_recompile_into_own_directory_but_not_over_foreign_files(tmp_path):
    out = tmp_path / "out"
    assert archdsl("compile", SPEC, "--backend", "torch", "-o", out).returncode == 0
    again = archdsl("compile", SPEC, "--backend", "torch", "-o", out)
    assert again.returncode == 0, again.stderr
    (out / "notes.txt").write_text("mine")
    refused = archdsl("compile", SPEC, "--backend", "torch", "-o", out)
    assert refused.returncode == 2 and "notes.txt" in refused.stderr
    forced = archdsl("compile", SPEC, "--backend", "torch", "-o", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (out / "notes.txt").read_text() == "mine"


def test_compile_imports_no_framework(tmp_path):
    argv = ["compile", str(SPEC), "--backend", "torch", "-o", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True
    )
    assert done.stdout.strip().splitlines()[-1] == "EXIT:0 HEAVY:", done.stderr
    assert (tmp_path / "out" / "model.py").exists()


def test_compile_is_byte_identical_across_processes(tmp_path):
    texts = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        assert archdsl("compile", SPEC, "--backend", "torch", "-o", out, env=env).returncode == 0
        texts.append((out / "model.py").read_bytes())
    assert texts[0] == texts[1]


def test_a_model_name_that_hides_a_generated_name_is_refused(tmp_path):
    spec = tmp_path / "clash.arch"
    spec.write_text("model TRAIN\ninput image: 3 x 4 x 4\nout = flatten |> dense(2)\n")
    done = archdsl("compile", spec, "--backend", "torch", "-o", tmp_path / "out")
    # the front end refuses it (E015) before any code is generated
    assert done.returncode == 1 and "error[E015]" in done.stderr and "TRAIN" in done.stderr
    assert not (tmp_path / "out").exists()
