"""The generated Keras model under Keras's torch and jax backends gives the TensorFlow
backend's outputs, the same portable weights loaded in each (backend_outputs.py): every spec in specs/ and
specs/decoder_ops.arch here (which holds the ops they lack; no op is TensorFlow-only) under
-m slow; the default run, AlexNet, ResNet-18, MobileNetV2 and decoder_ops under torch (jax,
in no extra, runs eagerly here at a few seconds to a minute a model)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from backend_outputs import outputs_file
from kerasgen import ROOT, check, compile_to

HERE = Path(__file__).resolve().parent
SPECS = sorted((ROOT / "specs").rglob("*.arch")) + sorted((HERE / "specs").glob("*.arch"))
DEFAULT = ("alexnet", "decoder_ops", "mobilenet_v2", "resnet18")
# max |other - tensorflow| <= RTOL * max |tensorflow|. Measured: 1.5e-5 or less for every spec
# but MobileNetV3-Large, whose random-weight activations reach 2e3 (torch 8e-5, jax 1.2e-4, and
# torch against jax 5e-5: float32 rounding grown by the network, not one backend's error); a
# wrong op is off by far more.
RTOL = 5e-4


def run_backend(backend, directories):
    """backend_outputs.py DIRS under `backend`, in a process of its own."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = str(HERE / "backend_outputs.py")
    done = subprocess.run(
        [sys.executable, script, *map(str, directories)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def compiled(stems, folder):
    """The Keras output directories of the specs named `stems`, with TensorFlow's outputs."""
    paths = [p for p in SPECS if p.stem in stems]
    assert len(paths) == len(stems), f"not every one of {stems} is in specs/"
    directories = [compile_to(check(p.read_text(), str(p)), folder / p.stem) for p in paths]
    run_backend("tensorflow", directories)
    return directories


@pytest.fixture(scope="module")
def default_models(tmp_path_factory):
    """The default run's models, compiled, with TensorFlow's outputs."""
    return compiled(DEFAULT, tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def other_models(tmp_path_factory):
    """Every other spec's model, compiled, with TensorFlow's outputs."""
    stems = sorted({p.stem for p in SPECS} - set(DEFAULT))
    return compiled(stems, tmp_path_factory.mktemp("others"))


def require(backend):
    """Skip unless the backend's framework is installed (found, never imported)."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed: Keras's {backend} backend is untested")


def assert_same_outputs(backend, directories):
    """Each model's outputs under `backend` are TensorFlow's, to RTOL of their size."""
    run_backend(backend, directories)
    for directory in directories:
        expected = np.load(outputs_file(directory, "tensorflow"))
        got = np.load(outputs_file(directory, backend))
        assert got.shape == expected.shape, directory.name
        assert np.all(np.isfinite(expected)) and np.ptp(expected) > 0, directory.name
        scale = np.abs(expected).max()
        error = np.abs(got - expected).max()
        assert error <= RTOL * scale, f"{directory.name}: {error} > {RTOL} * {scale}"


def test_default_models_match_tensorflow(default_models):
    """AlexNet, ResNet-18, MobileNetV2 and decoder_ops under torch give TensorFlow's."""
    require("torch")
    assert_same_outputs("torch", default_models)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_every_spec_matches_tensorflow(backend, default_models, other_models):
    """Every spec, the zoo included, gives TensorFlow's outputs."""
    require(backend)
    # torch's default models: test_default_models_match_tensorflow
    models = other_models if backend == "torch" else default_models + other_models
    assert_same_outputs(backend, models)
