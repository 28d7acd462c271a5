"""PaperSGD against a NumPy transcription of the paper's rule; decay / no-decay groups; the
multi-tensor steps (PaperSGD's lists, torch.optim's fused / foreach ones through multi_tensor)."""

import collections

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

MU, WD = 0.9, 0.0005
LRS = [0.1] * 4 + [0.01] * 4  # the learning rate drops after four steps


@pytest.fixture
def optim(load):
    """The optim module."""
    return load("optim")


def problem(features=4):
    """A least-squares problem: A, b and a starting w (float64)."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, features)), rng.normal(size=6), rng.normal(size=features)


def numpy_paper(a, b, w, lrs, wd=WD, nesterov=False):
    """v <- mu*v - wd*lr*w - lr*g ; w <- w + v (nesterov: w <- w + mu*v - wd*lr*w - lr*g)."""
    v, path = np.zeros_like(w), []
    for lr in lrs:
        g = a.T @ (a @ w - b)
        v = MU * v - wd * lr * w - lr * g
        w = w + MU * v - wd * lr * w - lr * g if nesterov else w + v
        path.append(w)
    return path


def run_steps(opt, p, a, b, lrs):
    """Step opt on 0.5*|a p - b|^2 with the given learning rates; returns p after each step."""
    a, b, path = torch.tensor(a), torch.tensor(b), []
    for lr in lrs:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        (0.5 * ((a @ p - b) ** 2).sum()).backward()
        opt.step()
        path.append(p.detach().numpy().copy())
    return path


def torch_path(make_opt, a, b, w, lrs):
    """The weights after each step of a fresh torch optimizer started at w."""
    p = torch.nn.Parameter(torch.tensor(w))
    return run_steps(make_opt([p]), p, a, b, lrs)


def test_paper_sgd_matches_numpy_across_an_lr_change(optim):
    a, b, w = problem()
    expected = numpy_paper(a, b, w, LRS)
    got = torch_path(lambda ps: optim.PaperSGD(ps, 0.1, MU, WD), a, b, w, LRS)
    for step, (e, g) in enumerate(zip(expected, got, strict=True)):
        assert np.allclose(g, e, rtol=0, atol=1e-12), step


def test_nesterov_matches_numpy(optim):
    a, b, w = problem()
    expected = numpy_paper(a, b, w, LRS, nesterov=True)
    got = torch_path(lambda ps: optim.PaperSGD(ps, 0.1, MU, WD, nesterov=True), a, b, w, LRS)
    assert np.allclose(got, expected, rtol=0, atol=1e-12)
    assert not np.allclose(got, numpy_paper(a, b, w, LRS), atol=1e-6)


def test_torch_sgd_agrees_until_the_lr_changes(optim):
    a, b, w = problem()
    paper = numpy_paper(a, b, w, LRS)
    sgd = torch_path(lambda ps: torch.optim.SGD(ps, 0.1, MU, weight_decay=WD), a, b, w, LRS)
    before = max(np.abs(p - s).max() for p, s in zip(paper[:4], sgd[:4], strict=True))
    after = np.abs(paper[4] - sgd[4]).max()
    assert before < 1e-12
    assert after > 1e-3  # torch rescales the remembered velocity by the new lr


def test_per_group_weight_decay_is_honoured(optim):
    a, b, w = problem()
    make = lambda ps: optim.PaperSGD([{"params": ps, "weight_decay": 0.0}], 0.1, MU, 0.5)  # noqa: E731
    got = torch_path(make, a, b, w, LRS)
    assert np.allclose(got, numpy_paper(a, b, w, LRS, wd=0.0), rtol=0, atol=1e-12)
    assert not np.allclose(got, numpy_paper(a, b, w, LRS, wd=0.5), atol=1e-6)


def test_state_dict_round_trip_continues_identically(optim):
    a, b, w = problem()
    make = lambda ps: optim.PaperSGD(ps, 0.1, MU, WD)  # noqa: E731
    straight = torch_path(make, a, b, w, LRS)
    p = torch.nn.Parameter(torch.tensor(w))
    opt = make([p])
    run_steps(opt, p, a, b, LRS[:3])
    q = torch.nn.Parameter(p.detach().clone())
    resumed = make([q])
    resumed.load_state_dict(opt.state_dict())
    rest = run_steps(resumed, q, a, b, LRS[3:])
    assert np.allclose(rest, straight[3:], rtol=0, atol=1e-12)


def test_invalid_hyper_parameters(optim):
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError):
        optim.PaperSGD(p, -0.1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.PaperSGD(p, 0.1, nesterov=True)


class Net(torch.nn.Module):
    """conv, batch norm, layer norm, a frozen and a linear layer."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.ln = torch.nn.LayerNorm(4)
        self.fc = torch.nn.Linear(4, 2)
        self.frozen = torch.nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def names(model, groups):
    """The parameter names of each group, with its weight decay."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [(g["weight_decay"], sorted(by_id[id(p)] for p in g["params"])) for g in groups]


def test_param_groups_split_bias_and_norm(optim):
    net = Net()
    weights = ["bn.weight", "conv.weight", "fc.weight", "ln.weight"]
    biases = ["bn.bias", "conv.bias", "fc.bias", "ln.bias"]
    assert names(net, optim.param_groups(net, 0.1, [])) == [(0.1, sorted(weights + biases))]
    assert names(net, optim.param_groups(net, 0.1, ["bias"])) == [(0.1, weights), (0.0, biases)]
    norm = ["bn.bias", "bn.weight", "ln.bias", "ln.weight"]
    assert names(net, optim.param_groups(net, 0.1, ["norm"])) == [
        (0.1, ["conv.bias", "conv.weight", "fc.bias", "fc.weight"]),
        (0.0, norm),
    ]
    assert names(net, optim.param_groups(net, 0.1, ["bias", "norm"])) == [
        (0.1, ["conv.weight", "fc.weight"]),
        (0.0, sorted(set(biases) | set(norm))),
    ]
    with pytest.raises(ValueError, match="no_decay"):
        optim.param_groups(net, 0.1, ["embedding"])


SPLIT = 3  # the first SPLIT weights form a decayed group, the rest an exempt one


def grouped_paths(optim, nesterov, foreach, dtypes):
    """NumPy's and PaperSGD's weights after each step of two groups, a decayed and an
    exempt one, of two parameters each, of the given dtypes."""
    a, b, w = problem(features=6)
    decay = np.where(np.arange(w.size) < SPLIT, WD, 0.0)
    expected = numpy_paper(a, b, w, LRS, wd=decay, nesterov=nesterov)
    pieces = np.split(w, [1, SPLIT, SPLIT + 1])
    ps = [torch.nn.Parameter(torch.tensor(x, dtype=d)) for x, d in zip(pieces, dtypes, strict=True)]
    groups = [{"params": ps[:2]}, {"params": ps[2:], "weight_decay": 0.0}]
    opt = optim.PaperSGD(groups, 0.1, MU, WD, nesterov=nesterov, foreach=foreach)
    at, bt, got = torch.tensor(a), torch.tensor(b), []
    for lr in LRS:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        (0.5 * ((at @ torch.cat([p.double() for p in ps]) - bt) ** 2).sum()).backward()
        opt.step()
        got.append(torch.cat([p.detach().double() for p in ps]).numpy())
    return expected, got


@pytest.mark.parametrize("nesterov", [False, True])
def test_multi_tensor_paper_sgd_matches_numpy_with_groups_and_an_lr_change(optim, nesterov):
    expected, got = grouped_paths(optim, nesterov, True, [torch.float64] * 4)
    assert np.allclose(got, expected, rtol=0, atol=1e-12)
    assert not np.allclose(got, numpy_paper(*problem(features=6), LRS), atol=1e-6)  # decay


@pytest.mark.parametrize("nesterov", [False, True])
def test_lists_of_two_dtypes_step_as_one_parameter_at_a_time(optim, nesterov):
    mixed = [torch.float64, torch.float32] * 2  # two buckets in each group
    expected, got = grouped_paths(optim, nesterov, True, mixed)
    _, one_by_one = grouped_paths(optim, nesterov, False, mixed)
    assert np.array_equal(got, one_by_one)  # the same arithmetic
    assert np.allclose(got, expected, rtol=0, atol=1e-5)  # float32 rounding


@pytest.mark.parametrize("rule", ["PaperSGD", "TFRMSprop"])
def test_groups_without_gradients_are_left_alone(optim, rule):
    p, q = (torch.nn.Parameter(torch.ones(2)) for _ in "pq")
    opt = getattr(optim, rule)([{"params": []}, {"params": [p, q]}], 0.1)
    p.grad = torch.ones(2)
    opt.step()
    assert torch.all(p < 1) and torch.equal(q, torch.ones(2)) and q not in opt.state


class OpCounter(TorchDispatchMode):
    """Counts the aten ops dispatched while it is active."""

    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        """Count func, then run it."""
        if func.namespace == "aten":
            self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


ALEXNET_SHAPES = [(48, 3, 11, 11), (48,), (128, 48, 5, 5), (128,), (192, 128, 3, 3), (192,)]


def ops_per_step(make_opt):
    """The aten ops of the second step (buffers exist by then) of make_opt(params)."""
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(s)) for s in ALEXNET_SHAPES * 2]
    for p in ps:
        p.grad = torch.randn(p.shape)
    opt = make_opt(ps)
    opt.step()
    with OpCounter() as counter:
        opt.step()
    return counter.ops


def test_multi_tensor_steps_dispatch_fewer_ops(optim):
    """Per step: PaperSGD one foreach op per term of its rule (4 with weight decay), instead of
    4 per parameter; torch.optim.SGD on CPU 4 ops per parameter, fused 1 in all."""
    n = len(ALEXNET_SHAPES) * 2
    listed = ops_per_step(lambda ps: optim.PaperSGD(ps, 0.1, MU, WD))
    one_by_one = ops_per_step(lambda ps: optim.PaperSGD(ps, 0.1, MU, WD, foreach=False))
    stock = ops_per_step(lambda ps: torch.optim.SGD(ps, 0.1, MU, weight_decay=WD))
    fused = ops_per_step(lambda ps: optim.multi_tensor(torch.optim.SGD, ps, lr=0.1, momentum=MU))
    assert set(listed) <= {"aten._foreach_mul_", "aten._foreach_add_"}
    assert one_by_one == {op: count * n for op, count in listed.items()}
    assert listed.total() == 4 and stock.total() == 4 * n
    assert fused == {"aten._fused_sgd_": 1}


def test_multi_tensor_chooses_fused_or_foreach_by_device(optim):
    cpu = [torch.nn.Parameter(torch.zeros(2))]
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))]}, {"params": [], "lr": 0.5}]
    for cls in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        opt = optim.multi_tensor(cls, cpu, lr=0.1)
        assert (opt.defaults["fused"], opt.defaults["foreach"]) == (True, None)
    assert optim.multi_tensor(torch.optim.SGD, groups, lr=0.1).defaults["fused"]
    rmsprop = optim.multi_tensor(torch.optim.RMSprop, cpu, lr=0.1)  # torch has no fused one
    assert "fused" not in rmsprop.defaults and rmsprop.defaults["foreach"]
    meta = [torch.nn.Parameter(torch.zeros(2, device="meta"))]  # no fused kernels on meta
    opt = optim.multi_tensor(torch.optim.SGD, meta, lr=0.1)
    assert (opt.defaults["fused"], opt.defaults["foreach"]) == (None, True)


def adam_path(optim, a, b, w, checkpoint_at=None, fused=True):
    """Adam's weights after each step at LRS; with checkpoint_at, a plain (single-tensor)
    Adam takes the first steps and its state dict resumes in multi_tensor's."""
    p = torch.nn.Parameter(torch.tensor(w))
    fresh = lambda: optim.multi_tensor(torch.optim.Adam, [p], lr=0.1, weight_decay=WD)  # noqa: E731
    if checkpoint_at is None:
        return run_steps(fresh(), p, a, b, LRS)
    old = torch.optim.Adam([p], lr=0.1, weight_decay=WD)
    path = run_steps(old, p, a, b, LRS[:checkpoint_at])
    new = fresh()
    settings = [{k: v for k, v in g.items() if k != "params"} for g in new.param_groups]
    new.load_state_dict(old.state_dict())
    assert new.param_groups[0]["fused"] is True and new.param_groups[0]["foreach"] is None
    # what train.py's optimizer_problem compares: the resumed settings are the fresh ones
    assert [{k: v for k, v in g.items() if k != "params"} for g in new.param_groups] == settings
    return path + run_steps(new, p, a, b, LRS[checkpoint_at:])


def test_a_checkpoint_of_a_single_tensor_optimizer_resumes_fused(optim):
    a, b, w = problem()
    straight = adam_path(optim, a, b, w)
    resumed = adam_path(optim, a, b, w, checkpoint_at=3)
    assert np.allclose(resumed, straight, rtol=1e-10, atol=0)
    p = torch.nn.Parameter(torch.tensor(w))
    fused = optim.multi_tensor(torch.optim.SGD, [p], lr=0.1, momentum=MU)
    run_steps(fused, p, a, b, LRS[:2])
    meta = [torch.nn.Parameter(torch.zeros(4, device="meta", dtype=torch.float64))]
    foreach = optim.multi_tensor(torch.optim.SGD, meta, lr=0.1, momentum=MU)
    foreach.load_state_dict(fused.state_dict())  # a fused run resumed where none is
    assert (foreach.param_groups[0]["fused"], foreach.param_groups[0]["foreach"]) == (None, True)
    assert foreach.state[meta[0]]["momentum_buffer"].device.type == "meta"


def test_grad_scaler_steps_a_fused_optimizer_unscaled_and_skips_infinities(optim):
    a, b, w = problem()
    plain = torch_path(lambda ps: torch.optim.SGD(ps, 0.1, MU, weight_decay=WD), a, b, w, LRS)
    p = torch.nn.Parameter(torch.tensor(w))
    opt = optim.multi_tensor(torch.optim.SGD, [p], lr=0.1, momentum=MU, weight_decay=WD)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1000)
    at, bt, got = torch.tensor(a), torch.tensor(b), []
    for lr in LRS:
        opt.param_groups[0]["lr"] = lr
        opt.zero_grad()
        scaler.scale(0.5 * ((at @ p - bt) ** 2).sum()).backward()
        scaler.step(opt)
        scaler.update()
        got.append(p.detach().numpy().copy())
    assert np.allclose(got, plain, rtol=1e-12, atol=0)
    p.grad = torch.full_like(p, float("inf"))
    scaler.step(opt)
    assert np.array_equal(p.detach().numpy(), got[-1])  # skipped
