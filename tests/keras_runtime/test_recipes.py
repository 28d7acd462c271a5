"""The recipes of the train section in the Keras runtime against NumPy: RMSprop in both forms
(as build_optimizer makes them, lr set as the schedules set it), the warmed-up cosine
schedule, and gradient clipping by global norm as torch.nn.utils.clip_grad_norm_ clips."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes_common"))
from recipes_reference import (  # noqa: E402
    clip_by_global_norm,
    cosine_lr,
    ema_reference,
    rmsprop_step,
)

LRS = [0.1, 0.1, 0.1, 0.01, 0.01]  # the rate drops at step 4
ALPHA, EPS, MU, WD = 0.9, 1e-3, 0.9, 0.05
CLASSES = {"torch": "TorchRMSprop", "tf": "TFRMSprop"}


@pytest.fixture(scope="module")
def optim(load):
    """The runtime's optim module."""
    return load("optim")


def problem():
    """Initial weights and five steps of gradients (float64)."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(3, 4)), [rng.normal(size=(3, 4)) for _ in LRS]


def keras_path(optimizer, w0, grads):
    """The weights after each step of a Keras optimizer fed the gradients."""
    w, path = keras.Variable(w0, dtype="float64"), []
    for lr, g in zip(LRS, grads, strict=True):
        optimizer.learning_rate = lr
        optimizer.apply([g], [w])
        path.append(np.asarray(w).copy())
    return path


def numpy_path(rule, w0, grads, max_norm=None):
    """The NumPy rule's weights after each step (gradients clipped first with max_norm), at
    the rates Keras holds (a float32 variable)."""
    w, v, b, path = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), []
    for lr, g in zip(np.float32(LRS).tolist(), grads, strict=True):
        if max_norm is not None:
            (g,), _ = clip_by_global_norm([g], max_norm)
        rmsprop_step(rule, w, v, b, g, lr, ALPHA, EPS, MU, WD)
        path.append(w.copy())
    return path


def make(optim, rule, **kwargs):
    """The optimizer build_optimizer makes for `rule`."""
    cls = getattr(optim, CLASSES[rule])
    return cls(
        learning_rate=LRS[0], alpha=ALPHA, epsilon=EPS, momentum=MU, weight_decay=WD, **kwargs
    )


@pytest.mark.parametrize("rule", ["torch", "tf"])
def test_rmsprop_follows_its_numpy_rule_and_not_the_other(optim, rule):
    w0, grads = problem()
    got = keras_path(make(optim, rule), w0, grads)
    other = "tf" if rule == "torch" else "torch"
    for want, wrong, have in zip(
        numpy_path(rule, w0, grads), numpy_path(other, w0, grads), got, strict=True
    ):
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-12)
        assert np.abs(have - wrong).max() > 1e-4  # the rules differ: the test can tell


def test_clipping_is_torchs_global_norm(optim):
    """global_clipnorm in the runtime's optimizers clips as torch does (1e-6 in the divisor);
    Keras's own clip_by_global_norm does not add it, which the test can tell apart."""
    w0, grads = problem()
    grads = [g * 1e-6 for g in grads]  # norms ~3e-6: the 1e-6 of torch's divisor matters
    max_norm = 1e-6
    got = keras_path(make(optim, "torch", global_clipnorm=max_norm), w0, grads)
    assert all(clip_by_global_norm([g], max_norm)[1] > max_norm for g in grads)
    for want, have in zip(numpy_path("torch", w0, grads, max_norm), got, strict=True):
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-12)
    keras_way = [g * max_norm / max(np.linalg.norm(g), max_norm) for g in grads]
    planted = numpy_path("torch", w0, keras_way)
    assert np.abs(planted[-1] - got[-1]).max() > 1e3 * 1e-12


@pytest.mark.parametrize("warmup", [0, 3])
def test_cosine_with_warmup_matches_the_closed_form(load, warmup):
    schedules = load("schedules")
    optimizer = keras.optimizers.SGD(learning_rate=0.2)
    sched = schedules.Cosine(optimizer, epochs=10, min_lr=0.001, warmup=warmup, warmup_factor=0.1)
    for epoch in range(12):
        lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        assert lr == pytest.approx(cosine_lr(0.2, epoch, 10, 0.001, warmup, 0.1), rel=1e-6)
        sched.step_epoch({})
    state = sched.state_dict()
    again = schedules.Cosine(keras.optimizers.SGD(learning_rate=0.2), 10, 0.001, warmup, 0.1)
    again.load_state_dict(state)
    assert again.epoch == 12 and again.base_lr == pytest.approx(0.2)


def test_ema_of_weights_and_batch_norm_statistics_matches_numpy(load):
    """WeightAverage averages every variable (moving statistics included), copies at the first
    update and after a restart, swaps the average in for evaluation and back."""
    ema_module = load("ema")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(3, 3)(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(x, training=True))
    average = ema_module.WeightAverage(model, 0.75)
    rng = np.random.default_rng(0)
    snapshots, restarts = [], (1,)
    for update in range(5):
        for v in model.variables:
            v.assign(np.asarray(v) + rng.normal(size=v.shape).astype(v.dtype))
        average.update(restart=update in restarts)
        snapshots.append({v.path: np.asarray(v).copy() for v in model.variables})
    want = ema_reference(snapshots, 0.75, restarts)[-1]
    raw = {v.path: np.asarray(v).copy() for v in model.variables}
    with average.swapped_in():
        for v in model.variables:
            np.testing.assert_allclose(np.asarray(v), want[v.path], rtol=1e-6, err_msg=v.path)
    for v in model.variables:
        np.testing.assert_array_equal(np.asarray(v), raw[v.path])
    assert average.n_averaged == 3  # updates 2, 3 and 4 after the restart at update 1
    again = ema_module.WeightAverage(model, 0.75)
    assert again.load(average.arrays(), average.n_averaged)
    assert not again.load({"ema/00000": np.zeros(1)}, 0)


@pytest.mark.slow
def test_trainer_with_every_recipe_resumes_its_ema_exactly(tmp_path):
    """rmsprop(tf), cosine warmup, clipping, EMA, random_resized_crop, mixup and cutmix in one
    run: a run stopped after 2 of 3 epochs and resumed ends with the uninterrupted run's weights,
    EMA and metrics (the EMA is validated, so the metrics see it too)."""
    from recipes_trainer import compile_recipes, metrics, straight_and_resumed

    directory = compile_recipes(tmp_path / "out", "keras")
    straight, resumed = straight_and_resumed(directory, tmp_path)
    a, b = (dict(np.load(out / "last.npz")) for out in (straight, resumed))
    assert set(a) == set(b) and any(n.startswith("ema/") for n in a)
    for name in a:
        if name != "meta":
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert metrics(straight) == metrics(resumed)


MIRRORED_CLIP = """
import json
import numpy as np
import tensorflow as tf
import keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from optim import TorchSGD
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
parts = np.array([[3.0, 0.0], [0.0, 4.0]], "float32")  # replica r's share of the gradient
with strategy.scope():
    w = keras.Variable(np.zeros(2, "float32"))
    opt = TorchSGD(learning_rate=1.0, momentum=0.0, global_clipnorm=1.0)
    opt.build([w])

def replica_step(shares):
    r = tf.distribute.get_replica_context().replica_id_in_sync_group
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.gather(shares, r) * w)
    opt.apply(tape.gradient(loss, [w]), [w])

tf.function(lambda: strategy.run(replica_step, args=(tf.constant(parts),)))()
print(json.dumps([float(v) for v in np.asarray(w.value)]))
"""


def test_clipping_over_replicas_clips_the_summed_gradient(outdir):
    """With a MirroredStrategy the norm is that of the replicas' summed gradient, as DDP clips
    after its all-reduce: shares (3, 0) and (0, 4) step by -(0.6, 0.8), not by each share
    clipped on its own, -(1, 1)."""
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_CLIP],
        cwd=outdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    step = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    total = np.array([3.0, 4.0])
    np.testing.assert_allclose(step, -total / (np.linalg.norm(total) + 1e-6), rtol=1e-6)
