"""Fine-tuning in the PyTorch backend: the train block's `freeze` (no updates, batch norms in
eval mode, no weight decay) and `lr_scale` (one SGD step is the factor times torch's own
autograd step), the parameter groups with no_decay, and the trainer's --init / --fresh."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes_common"))
from finetune_specs import (  # noqa: E402
    FINE_TUNE,
    FLAGS,
    PLAIN_SCALED,
    SCALE,
    SOURCE,
    frozen,
)

ENV_THREADS = {"OMP_NUM_THREADS": "1"}


def batch(seed=0):
    """Four 8 x 8 RGB images and their labels (of 5 classes)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 3, 8, 8, generator=g), torch.tensor([0, 1, 2, 4])


def step(model, optimizer, x, y):
    """One training step of cross-entropy, as the trainer takes it (dropout seeded)."""
    model.train()
    torch.manual_seed(7)
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def tensors(model):
    """{name: copy} of every parameter and buffer."""
    return {n: t.detach().clone() for n, t in model.state_dict().items()}


def test_frozen_statements_stay_bit_identical_while_the_rest_trains(compiled):
    module = compiled(FINE_TUNE).module
    torch.manual_seed(0)
    model = module.build_model()
    optimizer = module.build_optimizer(model)
    before = tensors(model)
    for seed in range(3):
        step(model, optimizer, *batch(seed))
    after = tensors(model)
    for name, value in before.items():
        if frozen(name):  # weights and running statistics: momentum and decay never reach them
            assert torch.equal(after[name], value), name
        elif name.endswith(("weight", "bias", "running_mean")):
            assert not torch.equal(after[name], value), name
    optimized = {id(p) for g in optimizer.param_groups for p in g["params"]}
    trainable = {n for n, p in model.named_parameters() if id(p) in optimized}
    assert trainable == {n for n, p in model.named_parameters() if not frozen(n)}
    assert all(p.requires_grad != frozen(n) for n, p in model.named_parameters())
    # eval mode stays eval mode everywhere; train mode leaves the frozen batch norms in eval
    norms = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    model.train()
    assert {n for n, m in norms.items() if not m.training} == {n for n in norms if frozen(n)}
    model.eval()
    assert not any(m.training for m in model.modules())


def test_groups_keep_no_decay_and_scale_the_rate(compiled):
    module = compiled(FINE_TUNE).module
    model = module.build_model()
    groups = module.build_optimizer(model, lr=0.2).param_groups
    by_param = {id(p): g for g in groups for p in g["params"]}
    for name, p in model.named_parameters():
        if frozen(name):
            assert id(p) not in by_param
            continue
        group = by_param[id(p)]
        decay = 0.0 if name.endswith("bias") else 0.01  # no_decay=[bias]
        lr = 0.2 * (SCALE if name.startswith("mid.") else 1.0)
        assert (group["weight_decay"], group["lr"]) == (decay, lr), name
    assert groups[0]["lr"] == 0.2  # the group the trainer logs holds the spec's rate


def test_a_scaled_group_steps_by_its_factor_times_autograd(compiled):
    module = compiled(PLAIN_SCALED).module
    torch.manual_seed(1)
    model = module.build_model()
    reference = copy.deepcopy(model)
    x, y = batch()
    reference.train()
    torch.manual_seed(7)  # step()'s dropout mask
    loss = torch.nn.functional.cross_entropy(reference(x), y)
    names, params = zip(*reference.named_parameters(), strict=True)
    grads = dict(zip(names, torch.autograd.grad(loss, params), strict=True))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    step(model, module.build_optimizer(model), x, y)
    for name, p in model.named_parameters():
        factor = SCALE if name.startswith("mid.") else 1.0
        expected = -0.1 * factor * grads[name]
        torch.testing.assert_close(p.detach() - before[name], expected, rtol=1e-5, atol=1e-7)
    scaled = [n for n in grads if n.startswith("mid.")]
    assert scaled and all(grads[n].abs().sum() > 0 for n in scaled)


# ----------------------------------------------------------------------------- the trainer


@pytest.fixture(scope="module")
def source_weights(tmp_path_factory):
    """A portable .npz of the three-class net, batch-norm statistics away from their start."""
    from ptgen import check, compile_to, import_model

    directory = compile_to(check(SOURCE), tmp_path_factory.mktemp("source"))
    module = import_model(directory)
    torch.manual_seed(5)
    model = module.build_model()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith(("running_mean", "running_var")):
                buffer.uniform_(0.5, 1.5)
    path = directory / "source.npz"
    module.save_weights(model, path)
    return path, {n: a for n, a in np.load(path).items()}


def train(directory, out, *args):
    """Run the compiled train.py with FLAGS; the CompletedProcess."""
    argv = [sys.executable, "train.py", *map(str, (*FLAGS, "--out", out, *args))]
    env = {**os.environ, **ENV_THREADS}
    return subprocess.run(argv, cwd=directory, env=env, capture_output=True, text=True, timeout=300)


def runtime(directory):
    """The compiled directory's warm_start, weights and trainer_args modules (by bare name,
    as the trainer imports them)."""
    sys.path.insert(0, str(directory))
    try:
        import trainer_args
        import warm_start
        import weights
    finally:
        sys.path.pop(0)
    return warm_start, weights, trainer_args


def test_warm_start_loads_the_body_and_keeps_the_fresh_head(compiled, source_weights):
    path, arrays = source_weights
    done = compiled(FINE_TUNE)
    warm_start, weights, _ = runtime(done.dir)
    torch.manual_seed(0)
    model = done.module.build_model()
    fresh = {n: t.detach().clone() for n, t in weights.portable_tensors(model).items()}
    expected = {n: tuple(t.shape) for n, t in fresh.items()}
    loaded, left, line = warm_start.warm_start(path, expected, ("head",))
    weights.load_arrays(model, loaded, str(path), keep=left)  # as the trainer's start_from
    assert left == ["head.dense.weight", "head.dense.bias"]
    assert line == (
        f"init: 21 tensors from {path}; fresh: head (2 tensors, the spec's init); "
        "2 tensors of the file under --fresh not used"
    )
    for name, tensor in weights.portable_tensors(model).items():
        if name.startswith("head."):
            assert torch.equal(tensor, fresh[name]), name
        else:
            assert np.array_equal(tensor.detach().numpy(), arrays[name]), name


@pytest.mark.slow  # the trainer's start-up
def test_init_loads_the_body_and_leaves_the_new_head_fresh(compiled, source_weights, tmp_path):
    path, arrays = source_weights
    done = compiled(FINE_TUNE)
    run = train(done.dir, tmp_path / "run", "--init", path, "--fresh", "head")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (
        f"init: 21 tensors from {path}; fresh: head (2 tensors, the spec's init); "
        "2 tensors of the file under --fresh not used" in run.stdout
    )
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    for name, value in arrays.items():
        if frozen(name):  # loaded exactly and never changed
            assert np.array_equal(state[name].numpy(), value), name
        elif name.startswith("mid.") and name.endswith("weight"):
            assert not np.array_equal(state[name].numpy(), value), name  # loaded, then trained
    torch.manual_seed(0)  # the trainer's --seed, before it builds the model
    fresh = done.module.build_model().state_dict()
    assert state["head.dense.weight"].shape == (5, 4)
    assert not torch.equal(state["head.dense.weight"], fresh["head.dense.weight"])


@pytest.mark.slow  # the trainer's start-up, twice
def test_init_refuses_what_does_not_fit_and_a_resume(compiled, source_weights, tmp_path):
    path, _ = source_weights
    directory = compiled(FINE_TUNE).dir
    run = train(directory, tmp_path / "a", "--init", path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: --init {path} does not fit the model: head.dense.weight is 3 x 4 where the "
        "model needs 5 x 4; head.dense.bias is 3 where the model needs 5 (hint: --fresh NAME "
        "leaves new layers, a new head, fresh)"
    )
    run = train(directory, tmp_path / "b", "--init", path, "--fresh", "head", "--resume")
    assert run.returncode == 2
    assert "--resume continues one from its checkpoint" in run.stderr
    assert not (tmp_path / "b").exists()  # refused before the run folder is made


def test_warm_start_refusals(compiled, source_weights):
    path, _ = source_weights
    warm_start, _, trainer_args = runtime(compiled(FINE_TUNE).dir)
    UsageError = trainer_args.UsageError  # noqa: N806 - the class
    expected = {"stem.conv.weight": (4, 3, 3, 3), "head.dense.weight": (5, 4)}
    with pytest.raises(UsageError, match=r"--fresh hed: the model has no tensors under it"):
        warm_start.warm_start(path, expected, ("hed",))
    with pytest.raises(UsageError, match="--fresh layer1.1: the spec's `freeze` fixes it"):
        warm_start.warm_start(path, expected, ("layer1.1",), ("stem", "layer1"))
    with pytest.raises(UsageError, match="--fresh layer1: the spec's `freeze` fixes it"):
        warm_start.warm_start(path, expected, ("layer1",), ("layer1",))
    with pytest.raises(UsageError, match="extra \\(not in the model\\) "):
        warm_start.warm_start(path, expected, ("head",))
    with pytest.raises(UsageError, match=r"5 x 4; head.dense.bias is 3 where .* --fresh NAME"):
        warm_start.warm_start(path, expected | {"head.dense.bias": (5,)}, ())
    args = type("Args", (), {"init": None, "fresh": ("head",), "resume": None})
    with pytest.raises(UsageError, match="--fresh names what --init leaves fresh"):
        warm_start.init_request(args)
    args.init, args.resume = path, ""
    with pytest.raises(UsageError, match="--resume continues one from its checkpoint"):
        warm_start.init_request(args)
    assert warm_start.fresh_names("head, layer4.1") == ("head", "layer4.1")
    with pytest.raises(Exception, match="not a statement name"):
        warm_start.fresh_names("head;rm")
