"""PaperSGD, TorchSGD and L2Adam against NumPy references; the no_decay groups."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

LRS = [0.1, 0.1, 0.1, 0.01, 0.01]  # the rate drops at step 3
MU, WD = 0.9, 0.05


@pytest.fixture(scope="module")
def optim(load):
    """The runtime's optim module."""
    return load("optim")


@pytest.fixture(scope="module")
def problem():
    """Initial weight, bias and five steps of gradients for each."""
    rng = np.random.default_rng(0)
    w0, b0 = rng.normal(size=(3, 4)), rng.normal(size=4)
    grads = [(rng.normal(size=(3, 4)), rng.normal(size=4)) for _ in LRS]
    return w0, b0, grads


def run_keras(optimizer, problem, decay_bias=False):
    """Apply the five steps with a Keras optimizer; the bias is excluded from decay unless asked."""
    w0, b0, grads = problem
    w, b = keras.Variable(w0, dtype="float64"), keras.Variable(b0, dtype="float64")
    if not decay_bias:
        optimizer.exclude_from_weight_decay(var_list=[b])
    for lr, (gw, gb) in zip(LRS, grads, strict=True):
        optimizer.learning_rate = lr
        optimizer.apply([gw, gb], [w, b])
    return np.asarray(w), np.asarray(b)


def run_numpy(step, problem):
    """Apply the five steps with a NumPy rule step(w, g, state, lr, decay) -> (w, state)."""
    w0, b0, grads = problem
    params, states = [w0.copy(), b0.copy()], [np.zeros_like(w0), np.zeros_like(b0)]
    for t, (lr, gs) in enumerate(zip(LRS, grads, strict=True), start=1):
        for i, (g, decay) in enumerate(zip(gs, (WD, 0.0), strict=True)):
            params[i], states[i] = step(params[i], g, states[i], lr, decay, t)
    return params


def paper_rule(w, g, v, lr, decay, t):
    """v <- mu*v - lambda*lr*w - lr*g ; w <- w + v."""
    v = MU * v - decay * lr * w - lr * g
    return w + v, v


def torch_rule(w, g, buf, lr, decay, t):
    """b <- mu*b + (g + lambda*w) ; w <- w - lr*b."""
    buf = MU * buf + (g + decay * w)
    return w - lr * buf, buf


def test_paper_sgd_matches_the_paper(optim, problem):
    got = run_keras(optim.PaperSGD(momentum=MU, weight_decay=WD), problem)
    for g, want in zip(got, run_numpy(paper_rule, problem), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-6)


def test_keras_sgd_weight_decay_is_not_the_paper(problem):
    got = run_keras(keras.optimizers.SGD(momentum=MU, weight_decay=WD), problem)
    assert not np.allclose(got[0], run_numpy(paper_rule, problem)[0], rtol=1e-4)


def test_torch_sgd_matches_torch_and_differs_after_the_lr_drop(optim, problem):
    got = run_keras(optim.TorchSGD(momentum=MU, weight_decay=WD), problem)
    want = run_numpy(torch_rule, problem)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    assert not np.allclose(want[0], run_numpy(paper_rule, problem)[0], rtol=1e-4)


def test_l2_adam_is_torch_adam_with_decay_in_the_gradient(optim, problem):
    b1, b2, eps = 0.9, 0.999, 1e-2  # a large eps makes its placement visible

    def torch_adam(w, g, state, lr, decay, t):
        m, v = state if isinstance(state, tuple) else (np.zeros_like(w), np.zeros_like(w))
        g = g + decay * w
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + eps), (m, v)

    got = run_keras(optim.L2Adam(weight_decay=WD, epsilon=eps), problem)
    for g, want in zip(got, run_numpy(torch_adam, problem), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-5)
    keras_own = run_keras(optim.keras.optimizers.Adam(epsilon=eps), problem)
    assert not all(
        np.allclose(a, b, rtol=1e-5) for a, b in zip(keras_own, got, strict=True)
    )  # Keras's epsilon placement differs: the comparison can fail


def test_paper_sgd_decays_the_bias_unless_excluded(optim, problem):
    excluded = run_keras(optim.PaperSGD(momentum=MU, weight_decay=WD), problem)
    decayed = run_keras(optim.PaperSGD(momentum=MU, weight_decay=WD), problem, decay_bias=True)
    np.testing.assert_allclose(excluded[0], decayed[0])
    assert not np.allclose(excluded[1], decayed[1])


def tiny_model():
    """Dense -> BatchNormalization -> Dense, built."""
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, name="fc1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="fc2")(x))


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([], []),
        (["bias"], ["fc1/bias", "fc2/bias", "bn/beta"]),  # as torch's bn.bias
        (["norm"], ["bn/gamma", "bn/beta"]),
        (["bias", "norm"], ["fc1/bias", "fc2/bias", "bn/gamma", "bn/beta"]),
    ],
)
def test_no_decay_groups(optim, groups, expected):
    found = optim.no_decay_variables(tiny_model(), groups)
    assert sorted(v.path for v in found) == sorted(expected)


def test_adamw_honours_no_decay(optim):
    model = tiny_model()
    optimizer = optim.exclude_from_decay(
        keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5), model, ["bias", "norm"]
    )
    before = {v.path: np.asarray(v) for v in model.trainable_variables}
    model.get_layer("fc1").bias.assign(np.ones(4))
    before["fc1/bias"] = np.ones(4)
    optimizer.apply(
        [np.zeros(v.shape) for v in model.trainable_variables], model.trainable_variables
    )
    for v in model.trainable_variables:
        scale = 1.0 if v.path.endswith(("bias", "gamma", "beta")) else 1 - 0.1 * 0.5
        np.testing.assert_allclose(np.asarray(v), before[v.path] * scale, rtol=1e-6)


def test_a_sparse_embedding_gradient_steps_every_row_as_torch(optim):
    """TensorFlow's gradient of an embedding holds only the rows a batch read, a row once per
    read (IndexedSlices): the runtime's optimizers sum it into a dense table first, so the
    clipping norm counts a row's gradient once and Adam steps every row (row 3, read by the
    first batch only, moves on its momentum), as torch.optim does."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    table0, first = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    rows, values = [0, 0], rng.normal(size=(2, 3))
    dense = np.zeros((5, 3))
    np.add.at(dense, rows, values)
    sparse = tf.IndexedSlices(tf.constant(values), tf.constant(rows), tf.constant([5, 3]))
    tables = []
    for gradient in (sparse, tf.constant(dense)):
        table = keras.Variable(table0, dtype="float64")
        opt = optim.TorchAdamW(learning_rate=0.1, weight_decay=0.0, global_clipnorm=0.5)
        opt.apply_gradients([(tf.constant(first), table)])
        opt.apply_gradients([(gradient, table)])
        tables.append(np.asarray(table))
    np.testing.assert_allclose(tables[0], tables[1], rtol=1e-12)
