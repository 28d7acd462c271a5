"""Towers in Keras: parallel branches of the functional model. The paper's two-tower AlexNet
against the grouped one and the NumPy reference; the data-parallel trainer on a tower spec."""

import os
import subprocess
import sys

import numpy as np
import pytest
from kerasgen import ROOT
from towers_reference import from_keras, images, tower_weights, two_tower_logits

keras = pytest.importorskip("keras")

# conv5's output, which fc6 flattens (H, W, C): Keras flattens in that order
FLAT_HWC = (2, 2, 16)


def layers(model):
    """{layer name: [kernel, bias]} of every layer with weights, as float64 arrays."""
    return {
        layer.name: [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
        for layer in model.layers
        if layer.get_weights()
    }


def load_layers(model, params):
    """Set every weighted layer of the model from {layer: [kernel, bias]}."""
    assert set(params) == set(layers(model))
    for name, arrays in params.items():
        model.get_layer(name).set_weights([np.asarray(a, dtype=np.float32) for a in arrays])
    return model


def transferred(mini, suffix, order=(0, 1)):
    """(grouped net, two-tower net with the grouped net's weights split into the towers)."""
    grouped = mini(f"mini_grouped{suffix}").module.build_model()
    towers = mini(f"mini_two_tower{suffix}").module.build_model()
    load_layers(towers, tower_weights(layers(grouped), out_axis=-1, order=order))
    return grouped, towers


def outputs(model, x):
    """Logits for NCHW x (the model reads NHWC)."""
    return np.asarray(model(x.transpose(0, 2, 3, 1), training=False), dtype=np.float64)


def assert_same(a, b):
    """Equal up to float32 rounding."""
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())


def test_alexnet_two_tower_builds_as_parallel_branches(compiled_path):
    out = compiled_path(ROOT / "specs" / "alexnet_two_tower.arch")
    model = out.module.build_model()
    assert model.count_params() == 60_965_224 == out.checked.report.total_params
    assert tuple(model.output.shape) == (None, 1000)
    image = model.get_layer("image").output
    for t in (0, 1):  # each tower's conv1 reads the whole image; conv3 reads both towers
        assert model.get_layer(f"conv1_t{t}.conv").input is image
        merged = model.get_layer(f"conv3_t{t}.concat").input
        assert [m.name for m in merged] == [model.get_layer(f"conv2_t{i}.maxpool").output.name
                                            for i in (0, 1)]  # fmt: skip


def test_two_tower_equals_grouped_without_lrn(mini):
    grouped, towers = transferred(mini, "_nolrn")
    x = images()
    assert_same(outputs(towers, x), outputs(grouped, x))
    assert np.abs(outputs(grouped, x)).max() > 10


def test_weights_in_the_wrong_towers_are_caught(mini):
    grouped, towers = transferred(mini, "_nolrn", order=(1, 0))
    x = images()
    with pytest.raises(AssertionError):
        assert_same(outputs(towers, x), outputs(grouped, x))


def test_with_lrn_the_towers_normalise_within_each_half(mini):
    grouped, towers = transferred(mini, "")
    x = images()
    ours, theirs = outputs(towers, x), outputs(grouped, x)
    params = from_keras(layers(towers), FLAT_HWC)
    within = two_tower_logits(x, params, lrn="towers")
    across = two_tower_logits(x, params, lrn="full")
    assert_same(ours, within)
    assert_same(theirs, across)
    scale = np.abs(within).max()
    assert np.abs(ours - theirs).max() > 1e-2 * scale
    assert np.abs(within - across).max() > 1e-2 * scale


def test_trainer_runs_data_parallel_on_a_tower_spec(mini, tmp_path):
    """--devices N in Keras is data parallel (MirroredStrategy; N logical CPUs without GPUs):
    the towers are branches of the replicated model, placed by TensorFlow."""
    directory = mini("mini_two_tower").dir
    args = ["--synthetic-per-class", "2", "--epochs", "1", "--batch-size", "4", "--max-steps",
            "1", "--workers", "0", "--devices", "2", "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, str(directory / "train.py"), *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 replica(s)" in done.stdout and "28,018 parameters" in done.stdout
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 2
