"""The zoo in Keras: every spec builds with the front end's parameter count and runs; ResNet-18
and MobileNetV2 give PyTorch's outputs from PyTorch's weights through the portable .npz, and
with -m slow so does every spec added after issue 7 (which also build only under -m slow: a
few seconds to a minute each on two cores).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from kerasgen import ROOT, check, compile_to, import_model

keras = pytest.importorskip("keras")

HERE = Path(__file__).resolve().parent
ZOO = sorted((ROOT / "specs" / "zoo").glob("*.arch"))
# torchvision's trainable parameter counts (issue 7); shapes' trainable_params must give them
TORCHVISION = {
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "googlenet": 6_624_904,
    "squeezenet1_0": 1_248_424,
    "squeezenet1_1": 1_235_496,
    "mobilenet_v2": 3_504_872,
    "densenet121": 7_978_856,
    "shufflenet_v2_x1_0": 2_278_604,
    "lenet5": 61_706,
}
# issue 12's specs: tests/torch_zoo compares these counts with torchvision's sum of parameters()
ISSUE_12 = {
    "vgg11": 132_863_336,
    "resnet34": 21_797_672,
    "resnet101": 44_549_160,
    "resnext50_32x4d": 25_028_904,
    "wide_resnet50_2": 68_883_240,
    "densenet169": 14_149_480,
    "inception_v3": 23_834_568,
    "mnasnet1_0": 4_383_312,
    "efficientnet_b0": 5_288_548,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "convnext_tiny": 28_589_128,
    "regnet_y_400mf": 4_344_144,
}
# issue 13's specs, compared with torchvision's counts likewise (tests/torch_zoo compares them
# with torchvision itself)
ISSUE_13 = {"swin_t": 28_288_354, "vit_b_16": 86_567_656}
TORCHVISION.update(ISSUE_12 | ISSUE_13)


def slow_if_new(stems):
    """pytest params of stems, those added in issues 12 and 13 marked slow."""
    new = ISSUE_12 | ISSUE_13
    return [pytest.param(s, marks=pytest.mark.slow) if s in new else s for s in stems]


EXCHANGE_RTOL = 1e-4  # max |keras - torch| <= EXCHANGE_RTOL * max |torch|


def checked_spec(path, text=None):
    return check(path.read_text(encoding="utf-8") if text is None else text, str(path))


@pytest.fixture(autouse=True)
def fresh_session():
    """Every test draws the same weights; no model outlives its test."""
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


def test_the_zoo_is_all_here():
    assert {p.stem for p in ZOO} == set(TORCHVISION)


@pytest.mark.parametrize("stem", slow_if_new(p.stem for p in ZOO))
def test_zoo_model_builds_with_the_reported_parameters_and_runs(stem, tmp_path):
    start = time.perf_counter()
    path = ROOT / "specs" / "zoo" / f"{stem}.arch"
    checked = checked_spec(path)
    report = checked.report
    assert report.trainable_params == TORCHVISION[path.stem]
    module = import_model(compile_to(checked, tmp_path / path.stem))
    model = module.build_model()
    assert model.count_params() == report.total_params
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == report.trainable_params
    x = np.random.default_rng(0).normal(size=(1, *module.INPUT_SHAPE)).astype("float32")
    out = np.asarray(model(x, training=False))
    assert out.shape == (1, module.NUM_CLASSES) and np.isfinite(out).all()
    print(f"{path.stem}: {model.count_params():,} parameters; {time.perf_counter() - start:.1f} s")


def test_a_missing_layer_changes_the_count(tmp_path):
    """Planted: resnet18 without the projection shortcuts' batch norms has fewer parameters."""
    path = ROOT / "specs" / "zoo" / "resnet18.arch"
    text = path.read_text(encoding="utf-8")
    planted = text.replace(
        "downsample = conv(planes, kernel=1, stride=stride, bias=false) |> batchnorm",
        "downsample = conv(planes, kernel=1, stride=stride, bias=false)",
    )
    assert planted != text
    model = import_model(compile_to(check(planted, "planted.arch"), tmp_path / "p")).build_model()
    assert model.count_params() != checked_spec(path).report.total_params


def torch_reference(spec, directory):
    """Run torch_reference.py in a process of its own (torch and TensorFlow crash together)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(HERE / "torch_reference.py"), str(spec), str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def keras_outputs(spec, directory, text=None):
    """Keras's eval-mode outputs of the spec with the PyTorch weights of directory/weights.npz."""
    module = import_model(compile_to(checked_spec(spec, text), directory / "keras"))
    model = module.build_model()
    module.load_weights(model, directory / "weights.npz")
    x = np.load(directory / "inputs.npz")["x"].transpose(0, 2, 3, 1)  # NCHW -> NHWC
    return np.asarray(model(x, training=False))


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory):
    """stem -> directory holding the PyTorch reference files (made once per module)."""
    cache = {}

    def get(stem):
        if stem not in cache:
            directory = tmp_path_factory.mktemp(f"{stem}_exchange")
            torch_reference(ROOT / "specs" / "zoo" / f"{stem}.arch", directory)
            cache[stem] = directory
        return cache[stem]

    return get


@pytest.mark.parametrize("stem", slow_if_new(["resnet18", "mobilenet_v2", *ISSUE_12, *ISSUE_13]))
def test_keras_gives_pytorch_outputs_from_pytorch_weights(stem, exchanged):
    directory = exchanged(stem)
    expected = np.load(directory / "torch_out.npz")["out"]
    got = keras_outputs(ROOT / "specs" / "zoo" / f"{stem}.arch", directory)
    difference, scale = np.abs(got - expected).max(), np.abs(expected).max()
    print(f"{stem}: max |keras - torch| = {difference:.3g} (outputs up to {scale:.3g})")
    assert got.shape == expected.shape == (2, 1000)
    assert scale > 0.1 and difference <= EXCHANGE_RTOL * scale


def test_a_changed_eps_breaks_the_exchange(exchanged):
    """Planted: the Keras model with GoogLeNet's eps in one residual branch no longer agrees."""
    spec = ROOT / "specs" / "zoo" / "resnet18.arch"
    directory = exchanged("resnet18")
    text = spec.read_text(encoding="utf-8")
    planted = text.replace(
        "conv2      = conv(planes, kernel=3, pad=1, bias=false) |> batchnorm",
        "conv2      = conv(planes, kernel=3, pad=1, bias=false) |> batchnorm(eps=0.001)",
    )
    assert planted != text
    expected = np.load(directory / "torch_out.npz")["out"]
    got = keras_outputs(spec, directory, planted)
    assert np.abs(got - expected).max() > EXCHANGE_RTOL * np.abs(expected).max()
