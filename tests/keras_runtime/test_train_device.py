"""The Keras trainer's device and backend checks: one line and exit 2, never a quiet fallback."""

import importlib.util
import os
import subprocess
import sys

import pytest

tf = pytest.importorskip("tensorflow")

NO_GPU = "error: --device cuda: no GPU is visible to TensorFlow; use --device cpu"


def error_lines(stderr):
    """stderr's own lines, TensorFlow's start-up log left out."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_device_cuda_without_a_gpu_exits_2(run_train, tmp_path):
    """--device cuda where TensorFlow sees no GPU: one line, exit 2, nothing trained."""
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: --device cuda trains on it")
    proc = run_train("--device", "cuda", "--epochs", "1", "--out", tmp_path / "run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert error_lines(proc.stderr) == [NO_GPU]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "last.npz").exists()


def test_other_backend_exits_2_before_tensorflow_loads(outdir):
    """Under KERAS_BACKEND=torch the trainer stops at import, TensorFlow never loaded (it
    must not share a process with torch): one line naming the backend, exit 2."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    code = (
        "import atexit, sys; "
        "atexit.register(lambda: print('tensorflow' in sys.modules)); "
        "import train"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=outdir,
        env={**os.environ, "KERAS_BACKEND": "torch"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "False"
    assert error_lines(proc.stderr) == [
        "error: train.py needs Keras's TensorFlow backend, not torch: run it with "
        "KERAS_BACKEND=tensorflow (model.py runs on any backend)"
    ]
