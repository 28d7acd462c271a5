"""`archdsl weights SPEC --from SOURCE -o FILE.npz` from Keras: a .keras file, or a .weights.h5
with `--arch keras:NAME` (a keras.applications builder), paired with the spec by structure.

By default: a small functional model written here (conv, batch norm, depthwise conv, a concat,
a Flatten of a map into a dense layer) imports and gives its outputs, its tensors checked
against NumPy formulas of the layouts; a spec wired differently, a preprocessing layer and a
weights file without its architecture are refused in one line, writing nothing. Under -m slow,
keras.applications' models with random weights and batch-norm statistics: VGG16, DenseNet121
and ConvNeXtTiny into the zoo's specs, ResNet50, MobileNetV2 and InceptionV3 into their
Keras-flavoured variants (specs/variants/*_keras.arch), each giving Keras's outputs; the zoo's
MobileNetV2 and Inception-v3 pair with Keras's but give other outputs (padding, eps, average
pooling), and the zoo's ResNet-50 and EfficientNet-B0 are refused.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kerasgen import ROOT, check, compile_to, import_model

from archdsl.cli import main

keras = pytest.importorskip("keras")

RTOL = 1e-4  # max |ours - keras| <= RTOL * max |keras|, as tests/keras_zoo's exchange
SMALL = """model Small

input image: 3 x 12 x 12

stem = conv(8, kernel=3, pad=1) |> batchnorm(eps=0.001) |> relu
dw   = conv(16, kernel=3, pad=1, groups=8) |> batchnorm(eps=0.001)
side = conv(4, kernel=1)                                     from stem
head = concat(dw, side) |> maxpool(2) |> flatten |> dense(10)
"""


@pytest.fixture(autouse=True)
def seeded():
    """Every test draws the same weights."""
    keras.utils.set_random_seed(0)


def run(capsys, *argv):
    """(exit code, stdout, stderr) of `archdsl ARGV`, in this process."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def randomise(model):
    """Random batch-norm statistics, scales and shifts, biases and layer scales (so that the
    import must carry each of them); the kernels keep their random initialisation."""
    rng = np.random.default_rng(1)
    for v in model.weights:
        last = v.path.rsplit("/", 1)[-1]
        if last in ("moving_mean", "beta", "bias"):
            v.assign(rng.normal(0, 0.2, v.shape).astype("float32"))
        elif last in ("moving_variance", "gamma") or "layer_scale" in v.path:
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))
    return model


def small_keras_model(preprocess=False):
    """SMALL, written with Keras's functional API (its batch norms' default eps is 0.001)."""
    layers = keras.layers
    x = inputs = keras.Input((12, 12, 3))
    if preprocess:
        x = layers.Rescaling(1 / 255, name="rescaling")(x)
    stem = layers.Conv2D(8, 3, padding="same", name="stem")(x)
    stem = layers.ReLU()(layers.BatchNormalization(name="stem_bn")(stem))
    dw = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(stem)
    dw = layers.BatchNormalization(name="dw_bn")(dw)
    side = layers.Conv2D(4, 1, name="side")(stem)
    x = layers.Concatenate()([dw, side])
    x = layers.Dense(10, name="head")(layers.Flatten()(layers.MaxPooling2D(2)(x)))
    return randomise(keras.Model(inputs, x))


def spec_file(tmp_path, text, name="small.arch"):
    """Write spec text to tmp_path/NAME; returns the path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def our_outputs(spec, npz, x, directory):
    """The spec's compiled Keras model's eval-mode outputs with the weights of `npz`, loaded
    by its own strict load_weights."""
    checked = check(spec.read_text(encoding="utf-8"), str(spec))
    module = import_model(compile_to(checked, directory))
    model = module.build_model()
    module.load_weights(model, npz)
    return np.asarray(model(x, training=False))


def relative_difference(got, want):
    """max |got - want| / max |want|."""
    assert got.shape == want.shape
    return float(np.abs(got - want).max() / np.abs(want).max())


def one_line(err):
    """The single line of a refusal on stderr."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_a_small_functional_model_imports_and_gives_its_outputs(tmp_path, capsys):
    model = small_keras_model()
    model.save(tmp_path / "small.keras")
    spec, npz = spec_file(tmp_path, SMALL), tmp_path / "small.npz"
    code, out, err = run(capsys, "weights", spec, "--from", tmp_path / "small.keras", "-o", npz)
    assert code == 0, err
    assert out.startswith(f"wrote {npz}: 16 tensors of small.keras (6 layers) paired by structure")
    assert "torch" not in sys.modules  # a Keras source never loads torch
    # the layouts, by NumPy formulas: a depthwise kernel (kh, kw, C, m) is the portable
    # (C * m, 1, kh, kw); the dense layer's inputs go from H, W, C to C, H, W order
    arrays = np.load(npz)
    kernel = np.asarray(model.get_layer("dw").kernel)
    for c in range(8):
        for j in range(2):
            assert np.array_equal(arrays["dw.conv.weight"][2 * c + j, 0], kernel[:, :, c, j])
    dense = np.asarray(model.get_layer("head").kernel)  # (6 * 6 * 20 inputs, 10)
    h, w, c = np.unravel_index(np.arange(720), (6, 6, 20))
    assert np.array_equal(arrays["head.dense.weight"][:, c * 36 + h * 6 + w], dense.T)
    x = np.random.default_rng(2).normal(size=(2, 12, 12, 3)).astype("float32")
    want = np.asarray(model(x, training=False))
    got = our_outputs(spec, npz, x, tmp_path / "keras")
    assert relative_difference(got, want) <= RTOL


def test_archdsl_s_own_keras_model_imports_as_its_save_weights_writes(tmp_path, capsys):
    """A .keras file of the spec's compiled Keras model (its runtime's layers, dotted names)
    gives, tensor for tensor, the portable file its own save_weights writes."""
    spec = spec_file(tmp_path, SMALL)
    module = import_model(compile_to(check(SMALL, str(spec)), tmp_path / "keras"))
    model = randomise(module.build_model())
    model.save(tmp_path / "ours.keras")
    module.save_weights(model, tmp_path / "saved.npz")
    npz = tmp_path / "imported.npz"
    code, _, err = run(capsys, "weights", spec, "--from", tmp_path / "ours.keras", "-o", npz)
    assert code == 0, err
    saved, imported = np.load(tmp_path / "saved.npz"), np.load(npz)
    assert list(saved.files) == list(imported.files)
    assert all(np.array_equal(saved[k], imported[k]) for k in saved.files)


def test_settings_the_pairing_cannot_see_are_noted(tmp_path, capsys):
    """Planted: the spec's batch norms keep PyTorch's eps (1e-5) against Keras's 0.001; the
    tensors still pair, and the difference is noted."""
    small_keras_model().save(tmp_path / "small.keras")
    planted = SMALL.replace("batchnorm(eps=0.001)", "batchnorm")
    spec, npz = spec_file(tmp_path, planted), tmp_path / "small.npz"
    code, out, err = run(capsys, "weights", spec, "--from", tmp_path / "small.keras", "-o", npz)
    assert code == 0, err
    assert out.splitlines()[1:] == [
        "note: eps differs (the outputs may too): small.keras's stem_bn has eps "
        "0.001, the spec's stem.batchnorm 1e-05 (and 1 more pair)",
    ]


def test_a_spec_wired_differently_is_refused_in_one_line(tmp_path, capsys):
    """Planted: the spec concatenates the branches the other way round; every tensor has a
    partner of its shape, but not in the same place of the graph."""
    small_keras_model().save(tmp_path / "small.keras")
    swapped = SMALL.replace("concat(dw, side)", "concat(side, dw)")
    spec, npz = spec_file(tmp_path, swapped), tmp_path / "small.npz"
    code, out, err = run(capsys, "weights", spec, "--from", tmp_path / "small.keras", "-o", npz)
    assert code == 1 and out == ""
    assert "the models' layers are connected differently" in one_line(err)
    assert not npz.exists()


def test_a_preprocessing_layer_is_refused_in_one_line(tmp_path, capsys):
    small_keras_model(preprocess=True).save(tmp_path / "pre.keras")
    spec, npz = spec_file(tmp_path, SMALL), tmp_path / "small.npz"
    code, _, err = run(capsys, "weights", spec, "--from", tmp_path / "pre.keras", "-o", npz)
    assert code == 1
    assert "layer rescaling (Rescaling) preprocesses the input" in one_line(err)
    assert not npz.exists()


def test_a_weights_file_without_its_architecture_is_a_usage_error(tmp_path, capsys):
    small_keras_model().save_weights(tmp_path / "small.weights.h5")
    spec, npz = spec_file(tmp_path, SMALL), tmp_path / "small.npz"
    h5 = tmp_path / "small.weights.h5"
    code, _, err = run(capsys, "weights", spec, "--from", h5, "-o", npz)
    assert code == 2 and "holds no architecture; give --arch keras:NAME" in one_line(err)
    code, _, err = run(capsys, "weights", spec, "--from", h5, "--arch", "keras:Nope", "-o", npz)
    assert code == 2 and "keras.applications has no builder 'Nope'" in one_line(err)
    code, _, err = run(capsys, "weights", spec, "--from", "keras:VGG16", "--arch", "keras:VGG16")
    assert code == 2 and "usage" in one_line(err)  # -o is missing
    argv = ["--from", "keras:VGG16", "--arch", "keras:VGG16", "-o", npz]
    code, _, err = run(capsys, "weights", spec, *argv)
    assert code == 2 and "--arch goes with a weight file" in one_line(err)
    code, _, err = run(capsys, "weights", spec, "--from", "keras:VGG16", "-o", npz)
    assert code == 2 and "cannot build it for the spec's input 3 x 12 x 12" in one_line(err)
    assert not npz.exists()


def test_a_keras_file_that_would_run_code_is_refused(tmp_path, capsys):
    """A Lambda layer's code is not loaded (Keras's safe_mode): one line, exit 2."""
    inputs = keras.Input((12, 12, 3))
    lambda_model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    lambda_model.save(tmp_path / "lambda.keras")
    spec, npz = spec_file(tmp_path, SMALL), tmp_path / "small.npz"
    code, _, err = run(capsys, "weights", spec, "--from", tmp_path / "lambda.keras", "-o", npz)
    assert code == 2 and "lambda.keras: Keras cannot load it:" in one_line(err)
    assert "Lambda" in err and not npz.exists()


def test_a_nested_model_handing_on_a_flattened_map_is_refused(tmp_path, capsys):
    """The model around a nested Sequential cannot follow a Flatten inside it: the dense
    layer's input rows would stay in Keras's H, W, C order."""
    layers = keras.layers
    inputs = keras.Input((4, 4, 3))
    inner = keras.Sequential([layers.Conv2D(2, 1), layers.Flatten()], name="inner")
    keras.Model(inputs, layers.Dense(10)(inner(inputs))).save(tmp_path / "nested.keras")
    spec = spec_file(
        tmp_path,
        "model N\n\ninput image: 3 x 4 x 4\n\nhead = conv(2, kernel=1) |> flatten |> dense(10)\n",
    )
    npz = tmp_path / "n.npz"
    code, _, err = run(capsys, "weights", spec, "--from", tmp_path / "nested.keras", "-o", npz)
    assert code == 1 and "nested model inner outputs a flattened map" in one_line(err)
    assert not npz.exists()


# ------------------------------------------------------------------ keras.applications (slow)

ZOO, VARIANTS = ROOT / "specs" / "zoo", ROOT / "specs" / "variants"
# (spec, builder): the same network, so the imported weights give Keras's outputs
SAME = [
    (ZOO / "vgg16.arch", "VGG16"),
    (ZOO / "densenet121.arch", "DenseNet121"),  # eps 1e-5 against 1.001e-5: below float32
    (ZOO / "convnext_tiny.arch", "ConvNeXtTiny"),
    (VARIANTS / "resnet50_keras.arch", "ResNet50"),
    (VARIANTS / "mobilenet_v2_keras.arch", "MobileNetV2"),
    (VARIANTS / "inception_v3_keras.arch", "InceptionV3"),
]
# the zoo's specs whose tensors pair with Keras's but whose outputs differ (see the variants)
OTHER_OUTPUTS = [
    (ZOO / "mobilenet_v2.arch", "MobileNetV2"),
    (ZOO / "inception_v3.arch", "InceptionV3"),
]


def applications_model(builder, spec):
    """keras.applications' BUILDER at the spec's input size, random weights and statistics,
    logits out (the softmax has no weights), without preprocessing where it is optional."""
    channels, height, width = (
        check(spec.read_text(encoding="utf-8"), str(spec)).graph.inputs[0].shape
    )
    options = {"include_preprocessing": False} if builder.startswith("ConvNeXt") else {}
    model = getattr(keras.applications, builder)(
        weights=None,
        input_shape=(height, width, channels),
        classifier_activation=None,
        **options,
    )
    return randomise(model)


def imported_outputs(spec, builder, tmp_path, capsys):
    """(ours, Keras's) outputs on the same batch, ours from the imported weights: through a
    .keras file for ConvNeXt (nested Sequential models, its own LayerScale), a .weights.h5
    with --arch keras:BUILDER for the others."""
    model = applications_model(builder, spec)
    if builder.startswith("ConvNeXt"):
        source, arch = tmp_path / "model.keras", []
        model.save(source)
    else:
        source, arch = tmp_path / "model.weights.h5", ["--arch", f"keras:{builder}"]
        model.save_weights(source)
    npz = tmp_path / "imported.npz"
    code, out, err = run(capsys, "weights", spec, "--from", source, *arch, "-o", npz)
    assert code == 0, err
    assert "paired by structure" in out
    shape = model.input_shape[1:]
    x = np.random.default_rng(2).normal(size=(2, *shape)).astype("float32")
    want = np.asarray(model(x, training=False))
    notes = [line.split(":", 2)[1].strip() for line in out.splitlines() if line.startswith("note")]
    return our_outputs(spec, npz, x, tmp_path / "keras"), want, notes


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "builder"), SAME, ids=[s.stem for s, _ in SAME])
def test_keras_applications_weights_give_keras_outputs(spec, builder, tmp_path, capsys):
    got, want, notes = imported_outputs(spec, builder, tmp_path, capsys)
    difference = relative_difference(got, want)
    print(f"{spec.stem} from {builder}: max |ours - keras| / max |keras| = {difference:.3g}")
    assert difference <= RTOL and np.abs(want).max() > 0.1
    # DenseNet121's eps, 1.001e-5 against 1e-5, is noted, though under float32's rounding
    assert notes == (["eps differs (the outputs may too)"] if builder == "DenseNet121" else [])


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "builder"), OTHER_OUTPUTS, ids=[s.stem for s, _ in OTHER_OUTPUTS])
def test_the_torchvision_flavoured_specs_pair_but_give_other_outputs(
    spec, builder, tmp_path, capsys
):
    got, want, notes = imported_outputs(spec, builder, tmp_path, capsys)
    difference = relative_difference(got, want)
    print(f"{spec.stem} from {builder}: max |ours - keras| / max |keras| = {difference:.3g}")
    assert difference > RTOL
    # MobileNetV2's paddings and eps are noted; Inception-v3's average pools hold no tensors
    # and pair with nothing, so their count_include_pad goes unnoticed
    expected = {
        "MobileNetV2": [
            "padding differs (the outputs may too)",
            "eps differs (the outputs may too)",
        ],
        "InceptionV3": [],
    }
    assert notes == expected[builder]


@pytest.mark.slow
def test_the_zoo_resnet50_is_refused_naming_the_first_tensors(tmp_path, capsys):
    """Keras's ResNet50 has conv biases the zoo's (torchvision's) has not."""
    spec = ZOO / "resnet50.arch"
    applications_model("ResNet50", spec).save_weights(tmp_path / "r.weights.h5")
    npz = tmp_path / "r.npz"
    argv = ["weights", spec, "--from", tmp_path / "r.weights.h5", "--arch", "keras:ResNet50"]
    code, out, err = run(capsys, *argv, "-o", npz)
    assert code == 1 and out == "" and not npz.exists()
    assert "conv conv1_conv" in one_line(err) and "conv stem.conv" in err


@pytest.mark.slow
def test_efficientnet_is_refused_in_one_line_by_the_command(tmp_path):
    """Keras's EfficientNetB0 rescales and normalises its input in the model; the command, run
    as a user runs it, says so in one line on stderr (TensorFlow's start-up notices silenced)."""
    spec = ZOO / "efficientnet_b0.arch"
    applications_model("EfficientNetB0", spec).save_weights(tmp_path / "e.weights.h5")
    npz = tmp_path / "e.npz"
    argv = ["weights", spec, "--from", tmp_path / "e.weights.h5", "--arch", "keras:EfficientNetB0"]
    done = subprocess.run(
        [sys.executable, "-m", "archdsl", *map(str, argv), "-o", str(npz)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TF_")},
        cwd=Path(__file__).parent,
        timeout=300,
    )
    assert done.returncode == 1 and done.stdout == "" and not npz.exists()
    assert "layer rescaling (Rescaling) preprocesses the input" in one_line(done.stderr)
