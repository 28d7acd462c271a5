"""build_optimizer and build_scheduler: each rule's update, no_decay groups, schedules."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

NET = "model R\ninput features: 4\nout = dense(3, bias=constant(0.5)) |> batchnorm\n"


def recipe(compiled, train):
    """The generated module of a dense + batchnorm net with this train section, and its model."""
    module = compiled(f"{NET}train {{\n{train}\n}}\n").module
    model = module.build_model()
    return module, model


def zero_step(optimizer, model, lr=None):
    """One update with zero gradients, so that only weight decay moves the weights."""
    if lr is not None:
        optimizer.learning_rate = lr
    variables = model.trainable_variables
    optimizer.apply_gradients([(keras.ops.zeros_like(v), v) for v in variables])


def values(model):
    """kernel, bias, gamma, beta as float64 arrays."""
    dense, norm = model.get_layer("out.dense"), model.get_layer("out.batchnorm")
    return [np.asarray(v, dtype="float64") for v in (*dense.get_weights(), *norm.get_weights()[:2])]


@pytest.mark.parametrize("rule", ["paper", "torch"])
def test_sgd_rules_put_weight_decay_where_they_say(compiled, rule):
    train = (
        f"optimizer = sgd(lr=0.1, momentum=0.9, weight_decay=0.01, rule={rule}, no_decay=[bias])"
    )
    module, model = recipe(compiled, train)
    optimizer = module.build_optimizer(model)
    w0, b0, g0, _ = values(model)
    zero_step(optimizer, model)
    w1, b1, g1, _ = values(model)
    zero_step(optimizer, model, lr=0.05)  # a schedule's drop: where the two rules part
    w2, b2, _, _ = values(model)
    v1 = -0.1 * 0.01 * w0
    if rule == "paper":  # v <- mu*v - wd*lr*w - lr*g ; w <- w + v
        expected = w1 + 0.9 * v1 - 0.05 * 0.01 * w1
    else:  # b <- mu*b + g + wd*w ; w <- w - lr*b
        expected = w1 - 0.05 * (0.9 * (0.01 * w0) + 0.01 * w1)
    np.testing.assert_allclose(w1, w0 + v1, rtol=1e-6)
    np.testing.assert_allclose(w2, expected, rtol=1e-6)
    assert (b2 == b0).all()  # no_decay: bias
    assert (g1 < g0).all()  # batch-norm scale still decays


def test_adam_adds_decay_to_the_gradient_and_skips_norm_layers(compiled):
    adam = "lr=0.01, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.1, no_decay=[norm]"
    module, model = recipe(compiled, f"optimizer = adam({adam})")
    optimizer = module.build_optimizer(model)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.8, 0.95, 1e-6)
    dense = model.get_layer("out.dense")  # |w| >= 0.1: epsilon is negligible beside the L2 term
    kernel = (np.linspace(0.1, 1.0, 12) * np.tile([1.0, -1.0], 6)).reshape(4, 3)
    dense.set_weights([kernel, dense.get_weights()[1]])
    w0, b0, g0, _ = values(model)
    zero_step(optimizer, model)
    w1, b1, g1, _ = values(model)
    # the first Adam step on the L2 gradient moves every decayed weight by about lr
    np.testing.assert_allclose(w1, w0 - 0.01 * np.sign(w0), atol=2e-4)
    np.testing.assert_allclose(b1, b0 - 0.01, atol=2e-4)
    assert (g1 == g0).all()


def test_adamw_decouples_decay_from_the_gradient(compiled):
    train = "optimizer = adamw(lr=0.01, weight_decay=0.1, no_decay=[bias])"
    module, model = recipe(compiled, train)
    optimizer = module.build_optimizer(model)
    w0, b0, g0, _ = values(model)
    zero_step(optimizer, model)
    w1, b1, g1, _ = values(model)
    np.testing.assert_allclose(w1, w0 * (1 - 0.01 * 0.1), rtol=1e-6)
    np.testing.assert_allclose(g1, g0 * (1 - 0.01 * 0.1), rtol=1e-6)
    assert (b1 == b0).all()


def test_learning_rate_comes_from_the_spec_unless_overridden(compiled):
    module, model = recipe(compiled, "optimizer = sgd(lr=0.2, momentum=0.5, nesterov=true)")
    optimizer = module.build_optimizer(model)
    assert rate(optimizer) == pytest.approx(0.2)
    assert (optimizer.momentum, optimizer.nesterov) == (0.5, True)
    assert rate(module.build_optimizer(model, lr=0.03)) == pytest.approx(0.03)


def rate(optimizer):
    """The optimizer's learning rate as a float."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def lrs(module, model, metrics):
    """The learning rate after each epoch's step_epoch(metrics)."""
    scheduler = module.build_scheduler(module.build_optimizer(model))
    out = []
    for m in metrics:
        scheduler.step_epoch(m)
        out.append(rate(scheduler.optimizer))
    return out


FLAT = [{"val_error": 0.5, "val_loss": 1.0, "val_top5_error": 0.2, "train_loss": 1.0}] * 4


@pytest.mark.parametrize(
    "schedule, metrics, expected",
    [
        ("step(step_size=2, gamma=0.5)", FLAT, [0.1, 0.05, 0.05, 0.025]),
        ("multistep(milestones=[1, 3], gamma=0.1)", FLAT, [0.01, 0.01, 0.001, 0.001]),
        ("cosine(min_lr=0.02)", FLAT, [0.0882842712, 0.06, 0.0317157288, 0.02]),
    ],
)
def test_schedules_step_once_per_epoch(compiled, schedule, metrics, expected):
    train = f"optimizer = sgd(lr=0.1)\nschedule = {schedule}\nepochs = 4"
    module, model = recipe(compiled, train)
    assert lrs(module, model, metrics) == pytest.approx(expected, rel=1e-6)


def test_on_plateau_watches_the_spec_metric_and_stops_after_max_drops(compiled):
    plateau = "factor=0.5, patience=2, metric=val_loss, max_drops=1, min_delta=0.01"
    module, model = recipe(compiled, f"optimizer = sgd(lr=0.1)\nschedule = on_plateau({plateau})")
    scheduler = module.build_scheduler(module.build_optimizer(model))
    settings = ("factor", "patience", "metric", "max_drops", "min_delta")
    assert [getattr(scheduler, k) for k in settings] == [0.5, 2, "val_loss", 1, 0.01]
    worse = [{**FLAT[0], "val_loss": 1.0 + i, "val_error": 0.9 - 0.1 * i} for i in range(8)]
    assert sorted(set(lrs(module, model, worse)), reverse=True) == pytest.approx([0.1, 0.05])


def test_no_schedule_gives_none(compiled):
    module, model = recipe(compiled, "optimizer = sgd(lr=0.1)\nschedule = none")
    assert module.build_scheduler(module.build_optimizer(model)) is None
