"""The recipes of the train section in the PyTorch runtime against NumPy: RMSprop in both
forms, the warmed-up cosine schedule, and gradient clipping as the trainer applies it."""

import copy
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes_common"))
from recipes_reference import (  # noqa: E402
    clip_by_global_norm,
    cosine_lr,
    ema_reference,
    rmsprop_step,
)

LRS = [0.1, 0.1, 0.1, 0.01, 0.01]  # the rate drops at step 4
ALPHA, EPS, MU, WD = 0.9, 1e-3, 0.9, 0.05


def problem():
    """Initial weights and five steps of gradients (float64)."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(3, 4)), [rng.normal(size=(3, 4)) for _ in LRS]


def torch_path(opt, p, grads, lrs=LRS):
    """Step opt with the given gradients and rates; the weights after each step."""
    path = []
    for lr, g in zip(lrs, grads, strict=True):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g)
        opt.step()
        path.append(p.detach().numpy().copy())
    return path


def numpy_path(rule, w0, grads):
    """The NumPy rule's weights after each step."""
    w, v, b, path = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), []
    for lr, g in zip(LRS, grads, strict=True):
        rmsprop_step(rule, w, v, b, g, lr, ALPHA, EPS, MU, WD)
        path.append(w.copy())
    return path


def rmsprop(optim, rule, p):
    """The optimizer build_optimizer makes for `rule`."""
    args = dict(lr=LRS[0], alpha=ALPHA, eps=EPS, momentum=MU, weight_decay=WD)
    if rule == "tf":
        return optim.TFRMSprop([p], **args)
    return torch.optim.RMSprop([p], **args)


@pytest.mark.parametrize("rule", ["torch", "tf"])
def test_rmsprop_follows_its_numpy_rule_and_not_the_other(load, rule):
    optim = load("optim")
    w0, grads = problem()
    p = torch.nn.Parameter(torch.tensor(w0))
    got = torch_path(rmsprop(optim, rule, p), p, grads)
    other = "tf" if rule == "torch" else "torch"
    for want, wrong, have in zip(
        numpy_path(rule, w0, grads), numpy_path(other, w0, grads), got, strict=True
    ):
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-12)
        assert np.abs(have - wrong).max() > 1e-4  # the rules differ: the test can tell


def test_tf_rmsprop_checkpoint_round_trip_continues_identically(load):
    optim = load("optim")
    w0, grads = problem()
    p = torch.nn.Parameter(torch.tensor(w0))
    opt = rmsprop(optim, "tf", p)
    torch_path(opt, p, grads[:2], LRS[:2])
    state = copy.deepcopy(opt.state_dict())  # as torch.save would: no shared buffers
    q = torch.nn.Parameter(p.detach().clone())
    resumed = rmsprop(optim, "tf", q)
    resumed.load_state_dict(state)
    rest = [torch_path(o, w, grads[2:], LRS[2:]) for o, w in ((opt, p), (resumed, q))]
    for a, b in zip(*rest, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("warmup", [0, 3])
def test_cosine_with_warmup_matches_the_closed_form(load, warmup):
    schedules = load("schedules")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p]}, {"params": [], "lr": 0.5}], lr=0.2)
    sched = schedules.Cosine(opt, epochs=10, min_lr=0.001, warmup=warmup, warmup_factor=0.1)
    for epoch in range(12):
        for group, base in zip(opt.param_groups, (0.2, 0.5), strict=True):
            want = cosine_lr(base, epoch, 10, 0.001, warmup, 0.1)
            assert group["lr"] == pytest.approx(want, rel=1e-12), (epoch, base)
        sched.step_epoch({})


def test_cosine_with_warmup_is_torchvisions_sequential_lr(load):
    """torchvision's recipe: LinearLR warmup, then CosineAnnealingLR, stepped once per epoch."""
    schedules = load("schedules")
    ours, theirs = (torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5) for _ in "ab")
    sched = schedules.Cosine(ours, epochs=12, min_lr=0.0, warmup=4, warmup_factor=0.01)
    warm = torch.optim.lr_scheduler.LinearLR(theirs, start_factor=0.01, total_iters=4)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=8)
    seq = torch.optim.lr_scheduler.SequentialLR(theirs, [warm, cos], milestones=[4])
    for epoch in range(12):
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"]), epoch
        sched.step_epoch({})
        seq.step()


def test_clip_grad_norm_matches_numpy():
    """The trainer's clipping (torch.nn.utils.clip_grad_norm_) is the reference's rule."""
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=s) for s in [(3, 4), (4,), (2, 2, 3)]]
    params = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.tensor(g)
    want, norm = clip_by_global_norm(grads, 1.5)
    assert norm > 1.5  # it clips
    torch.nn.utils.clip_grad_norm_(params, 1.5)
    for p, w in zip(params, want, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), w, rtol=1e-15, atol=0)


def test_ema_of_weights_and_batch_norm_statistics_matches_numpy(load):
    """The EMA averages parameters and float buffers (running statistics), copies integer
    buffers, copies at the first update and at the first after a restart (warmup)."""
    ema_module = load("ema")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3)).double()
    ema = ema_module.ema_model(net, 0.75)
    snapshots, restarts = [], (1,)
    for update in range(5):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        net(torch.randn(4, 2, 5, 5, dtype=torch.float64))  # moves the running statistics
        ema_module.update(ema, net, restart=update in restarts)
        snapshots.append({k: v.detach().numpy().copy() for k, v in net.state_dict().items()})
        averaged = {k: v.detach().numpy() for k, v in ema.module.state_dict().items()}
        want = ema_reference(snapshots, 0.75, restarts)[-1]
        assert set(averaged) == set(want)
        for name, value in want.items():
            np.testing.assert_allclose(averaged[name], value, rtol=1e-13, atol=0, err_msg=name)
    assert averaged["1.num_batches_tracked"] == 5  # copied, not averaged


@pytest.mark.slow
def test_trainer_with_every_recipe_resumes_its_ema_exactly(tmp_path):
    """rmsprop(tf), cosine warmup, clipping, EMA, random_resized_crop, mixup and cutmix in one
    run: a run stopped after 2 of 3 epochs and resumed ends with the uninterrupted run's weights,
    EMA and metrics (the EMA is validated, so the metrics see it too)."""
    from recipes_trainer import compile_recipes, metrics, straight_and_resumed

    directory = compile_recipes(tmp_path / "out", "torch")
    straight, resumed = straight_and_resumed(directory, tmp_path)
    a, b = (torch.load(out / "last.pt", weights_only=True) for out in (straight, resumed))
    assert a["state"] == b["state"] == {"epoch": 3, "batches_done": 0, "global_step": 9}
    assert int(a["ema"]["n_averaged"]) > 0
    for name in a["ema"]:
        assert torch.equal(a["ema"][name], b["ema"][name]), name
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert not torch.equal(a["ema"]["module.fc.dense.weight"], a["model"]["fc.dense.weight"])
    assert metrics(straight) == metrics(resumed)
