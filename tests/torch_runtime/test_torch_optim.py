"""PaperSGD against a NumPy transcription of the paper's rule; decay / no-decay groups."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

MU, WD = 0.9, 0.0005
LRS = [0.1] * 4 + [0.01] * 4  # the learning rate drops after four steps


@pytest.fixture
def optim(load):
    """The optim module."""
    return load("optim")


def problem():
    """A least-squares problem: A, b and a starting w (float64)."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 4)), rng.normal(size=6), rng.normal(size=4)


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
