"""Epoch schedules: OnPlateau's patience and max_drops, the closed forms, state round trips."""

import pytest

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def schedules(load):
    """The runtime's schedules module."""
    return load("schedules")


def lrs(schedule, values, metric="val_error"):
    """The learning rate after each epoch, given that epoch's metric."""
    out = []
    for value in values:
        schedule.step_epoch({metric: value})
        out.append(float(schedule.optimizer.learning_rate))
    return pytest.approx(out, rel=1e-6)


def sgd(lr=1.0):
    """A plain optimizer to schedule."""
    return keras.optimizers.SGD(learning_rate=lr)


def test_on_plateau_drops_at_the_first_bad_epoch_at_most_max_drops(schedules):
    schedule = schedules.OnPlateau(sgd(), factor=0.1, patience=1, max_drops=3)
    got = lrs(schedule, [0.9, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7, 0.6, 0.6])
    assert got == [1, 1, 0.1, 0.1, 0.01, 0.001, 0.001, 0.001, 0.001, 0.001]
    assert schedule.drops == 3


def test_on_plateau_patience_min_delta_and_metric(schedules):
    schedule = schedules.OnPlateau(sgd(), factor=0.5, patience=2, metric="val_loss", min_delta=0.05)
    got = lrs(schedule, [1.0, 0.97, 0.96, 0.9, 0.89, 0.88, 0.87], "val_loss")
    assert got == [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_on_plateau_rejects_bad_settings(schedules):
    with pytest.raises(ValueError, match="patience"):
        schedules.OnPlateau(sgd(), patience=0)


def test_on_plateau_state_round_trip(schedules):
    values = [0.5, 0.5, 0.4, 0.4, 0.4, 0.3, 0.3]
    whole = lrs(schedules.OnPlateau(sgd(), patience=1, max_drops=2), values)
    first = schedules.OnPlateau(sgd(), patience=1, max_drops=2)
    lrs(first, values[:3])
    second = schedules.OnPlateau(sgd(5.0), patience=1, max_drops=2)
    second.load_state_dict(first.state_dict())
    assert lrs(second, values[3:]) == whole.expected[3:]


def test_step_multistep_cosine(schedules):
    epochs = [0.0] * 6
    assert lrs(schedules.StepDecay(sgd(), step_size=2, gamma=0.5), epochs) == [
        1,
        0.5,
        0.5,
        0.25,
        0.25,
        0.125,
    ]
    assert lrs(schedules.MultiStep(sgd(), milestones=[4, 1], gamma=0.1), epochs) == [
        0.1,
        0.1,
        0.1,
        0.01,
        0.01,
        0.01,
    ]
    assert lrs(schedules.Cosine(sgd(), epochs=4, min_lr=0.2), epochs[:4]) == [
        0.8828427125,
        0.6,
        0.3171572875,
        0.2,
    ]
