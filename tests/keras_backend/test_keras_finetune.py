"""Fine-tuning in the Keras backend: the train block's `freeze` (not trainable, batch norms in
inference mode, no weight decay) and `lr_scale` (one SGD step is the factor times the
tape's gradient step; AdamW's decoupled decay at the group's rate, as torch.optim.AdamW),
and the trainer's --init / --fresh."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes_common"))
from finetune_specs import (  # noqa: E402
    ADAMW_SCALED,
    FINE_TUNE,
    FLAGS,
    PLAIN_SCALED,
    SCALE,
    SOURCE,
    frozen,
)


def batch(seed=0):
    """Four 8 x 8 RGB images (channels-last) and their one-hot labels (of 5 classes)."""
    x = np.random.default_rng(seed).normal(size=(4, 8, 8, 3)).astype("float32")
    return x, keras.ops.one_hot(np.array([0, 1, 2, 4]), 5)


def gradients(model, x, y):
    """The cross-entropy's gradients of the trainable variables."""
    with tf.GradientTape() as tape:
        loss = keras.losses.categorical_crossentropy(y, model(x, training=True), from_logits=True)
        loss = tf.reduce_mean(loss)
    return tape.gradient(loss, model.trainable_variables)


def step(model, optimizer, x, y):
    """One training step, as the trainer takes it."""
    optimizer.apply(gradients(model, x, y), model.trainable_variables)


def portable(module, model, directory):
    """{portable name: array} of the model, through its save_weights."""
    module.save_weights(model, directory / "weights.npz")
    return dict(np.load(directory / "weights.npz"))


def test_frozen_statements_stay_bit_identical_while_the_rest_trains(compiled, tmp_path):
    module = compiled(FINE_TUNE).module
    model = module.build_model()
    optimizer = module.build_optimizer(model)
    before = portable(module, model, tmp_path)
    for seed in range(3):
        step(model, optimizer, *batch(seed))
    after = portable(module, model, tmp_path)
    for name, value in before.items():
        if frozen(name):  # weights and moving statistics: momentum and decay never reach them
            assert np.array_equal(after[name], value), name
        else:
            assert not np.array_equal(after[name], value), name
    trained = {v.path.rsplit("/", 1)[0] for v in model.trainable_variables}
    assert trained == {"mid.conv", "mid.batchnorm", "head.dense"}


def test_a_scaled_group_steps_by_its_factor_times_the_gradient(compiled):
    module = compiled(PLAIN_SCALED).module
    model = module.build_model()
    x, y = batch()
    grads = gradients(model, x, y)
    before = [np.array(v) for v in model.trainable_variables]
    module.build_optimizer(model).apply(grads, model.trainable_variables)
    for v, w0, g in zip(model.trainable_variables, before, grads, strict=True):
        factor = SCALE if v.path.startswith("mid.") else 1.0
        expected = -np.float32(0.1 * factor) * np.asarray(g)
        np.testing.assert_allclose(np.asarray(v) - w0, expected, rtol=1e-5, atol=1e-7)
    assert any(v.path.startswith("mid.") for v in model.trainable_variables)


def test_adamw_decays_each_group_at_its_own_rate(compiled):
    module = compiled(ADAMW_SCALED).module
    model = module.build_model()
    x, y = batch()
    grads = gradients(model, x, y)
    before = [np.array(v, dtype="float64") for v in model.trainable_variables]
    module.build_optimizer(model).apply(grads, model.trainable_variables)
    for v, w0, g in zip(model.trainable_variables, before, grads, strict=True):
        lr = 0.01 * (SCALE if v.path.startswith("mid.") else 1.0)
        g = np.asarray(g, dtype="float64")
        # torch.optim.AdamW's first step: w*(1 - lr*wd), then lr * m_hat / (sqrt(v_hat) + eps)
        expected = w0 * (1 - lr * 0.5) - lr * g / (np.abs(g) + 1e-8)
        np.testing.assert_allclose(np.asarray(v), expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- the trainer


def source_weights(compiled, path):
    """Save the three-class net (moving means away from their start) to path; its arrays."""
    source = compiled(SOURCE).module
    keras.utils.set_random_seed(5)
    start = source.build_model()
    for layer in start.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.linspace(0.5, 1.5, 4))
    source.save_weights(start, path)
    return dict(np.load(path))


def test_warm_start_loads_the_body_and_keeps_the_fresh_head(compiled, tmp_path):
    path = tmp_path / "source.npz"
    arrays = source_weights(compiled, path)
    done = compiled(FINE_TUNE)
    sys.path.insert(0, str(done.dir))
    try:
        import warm_start
        import weights
    finally:
        sys.path.pop(0)
    model = done.module.build_model()
    fresh = portable(done.module, model, tmp_path)
    expected = {e.name: e.shape for e in weights.portable_variables(model)}
    loaded, left, _ = warm_start.warm_start(path, expected, ("head",))
    weights.load_arrays(model, loaded, str(path), keep=left)  # as the trainer's start_from
    assert left == ["head.dense.weight", "head.dense.bias"]
    for name, value in portable(done.module, model, tmp_path).items():
        assert np.array_equal(value, fresh[name] if name.startswith("head.") else arrays[name])


@pytest.mark.slow  # the trainer's start-up (TensorFlow) takes several seconds
def test_init_loads_the_body_and_leaves_the_new_head_fresh(compiled, tmp_path):
    path = tmp_path / "source.npz"
    arrays = source_weights(compiled, path)
    done = compiled(FINE_TUNE)
    argv = [sys.executable, "train.py", *map(str, FLAGS)]
    argv += ["--out", str(tmp_path / "run"), "--init", str(path), "--fresh", "head"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run(argv, cwd=done.dir, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"init: 21 tensors from {path}; fresh: head (2 tensors" in run.stdout
    assert "FineTune (inline.arch): 601 parameters (181 trained" in run.stdout
    saved = np.load(tmp_path / "run" / "last.npz")
    model = done.module.build_model()
    for i, variable in enumerate(model.variables):
        variable.assign(saved[f"model/{i:05d}"])
    state = portable(done.module, model, tmp_path)
    for name, value in arrays.items():
        if frozen(name):  # loaded exactly and never changed
            assert np.array_equal(state[name], value), name
        elif name.startswith("mid.") and name.endswith("weight"):
            assert not np.array_equal(state[name], value), name  # loaded, then trained
    assert state["head.dense.weight"].shape == (5, 4)
