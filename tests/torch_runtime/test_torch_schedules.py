"""Epoch schedules: the paper's on-plateau rule with max_drops, step, multistep, cosine."""

import math

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture
def schedules(load):
    """The schedules module."""
    return load("schedules")


def sgd(lr=0.01):
    """A torch SGD over one parameter in two groups."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(2)]
    groups[1]["lr"] = 10 * lr
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


def lrs_over(schedule, opt, errors, metric="val_error"):
    """The first group's lr after each epoch's step_epoch."""
    out = []
    for e in errors:
        schedule.step_epoch({metric: e, "train_loss": 1.0})
        out.append(opt.param_groups[0]["lr"])
    return out


def test_on_plateau_divides_by_ten_at_most_three_times(schedules):
    opt = sgd()
    plateau = schedules.OnPlateau(opt, factor=0.1, patience=1, metric="val_error", max_drops=3)
    errors = [0.9, 0.8, 0.8, 0.7, 0.75, 0.75, 0.6, 0.7, 0.7, 0.7]
    got = lrs_over(plateau, opt, errors)
    expected = [1e-2, 1e-2, 1e-3, 1e-3, 1e-4, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5]  # no 4th drop
    assert got == pytest.approx(expected, rel=1e-12)
    assert opt.param_groups[1]["lr"] == pytest.approx(1e-4)
    assert plateau.drops == 3


def test_on_plateau_patience_and_min_delta(schedules):
    opt = sgd()
    plateau = schedules.OnPlateau(opt, 0.5, patience=2, metric="val_loss", min_delta=0.05)
    got = lrs_over(plateau, opt, [1.0, 0.97, 0.96, 0.9, 0.89, 0.88, 0.87, 0.86], "val_loss")
    assert got == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.005, 0.0025, 0.0025, 0.00125])


def test_on_plateau_state_round_trip(schedules):
    opt = sgd()
    first = schedules.OnPlateau(opt, 0.1, 1, "val_error", 3)
    lrs_over(first, opt, [0.5, 0.6, 0.4])
    second = schedules.OnPlateau(opt, 0.1, 1, "val_error", 3)
    second.load_state_dict(first.state_dict())
    assert second.state_dict() == {"best": 0.4, "bad_epochs": 0, "drops": 1}
    assert lrs_over(second, opt, [0.45]) == pytest.approx([1e-4])


def test_step_and_multistep(schedules):
    opt = sgd(1.0)
    assert lrs_over(schedules.StepDecay(opt, 2, 0.5), opt, [0] * 5) == [1, 0.5, 0.5, 0.25, 0.25]
    opt = sgd(1.0)
    multi = schedules.MultiStep(opt, [3, 1], 0.1)
    assert lrs_over(multi, opt, [0] * 4) == pytest.approx([0.1, 0.1, 0.01, 0.01])
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1)


def test_cosine_reaches_min_lr_and_round_trips(schedules):
    opt = sgd(1.0)
    cosine = schedules.Cosine(opt, epochs=4, min_lr=0.1)
    got = lrs_over(cosine, opt, [0] * 5)
    half = [0.1 + 0.9 * (1 + math.cos(math.pi * k / 4)) / 2 for k in (1, 2, 3)]
    assert got == pytest.approx([*half, 0.1, 0.1])
    again = schedules.Cosine(sgd(1.0), epochs=4, min_lr=0.1)
    again.load_state_dict(cosine.state_dict())
    assert again.epoch == 5 and again.base_lrs == [1.0, 10.0]


def test_schedules_drive_paper_sgd(schedules, load):
    p = torch.nn.Parameter(torch.ones(1))
    opt = load("optim").PaperSGD([p], lr=0.1, momentum=0.9)
    plateau = schedules.OnPlateau(opt, 0.1, 1, "val_error", 1)
    assert lrs_over(plateau, opt, [0.5, 0.5, 0.5]) == pytest.approx([0.1, 0.01, 0.01])
