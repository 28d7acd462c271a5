"""--fsdp (sharding.py): the refusals; under torchrun on the CPU (gloo) sharded training equals
DDP, resumes after a kill as if uninterrupted, and its portable weights equal DDP's."""

import importlib.util
import math
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # as conftest.py's runs
FLAGS = dict(devices=None, sync_bn=False, compile=False)
# 300 training images at a global batch of 20: 15 steps an epoch; 60 validation images
BASE = ("--synthetic-per-class", 30, "--batch-size", 20, "--seed", 3, "--workers", 0)
BOTH = """
import os, sys
import torch.distributed as dist
import train, weights
net = train.train(train.parse_args([*sys.argv[1:], "--out", "ddp"]))
if os.environ["RANK"] == "0":
    weights.save_weights(net, "ddp.npz")
train.train(train.parse_args([*sys.argv[1:], "--out", "fsdp", "--fsdp"]))
dist.destroy_process_group()
"""


def torchrun(*args, processes=2):
    """The argv of torchrun with local processes (it picks a free loopback port)."""
    launcher = os.path.join(os.path.dirname(sys.executable), "torchrun")
    return [launcher, "--standalone", "--nproc_per_node", str(processes), *map(str, args)]


def table(out):
    """metrics.csv without its timing columns."""
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()]
    keep = [i for i, k in enumerate(rows[0]) if k not in ("images_per_s", "seconds")]
    return [[row[i] for i in keep] for row in rows]


def assert_same_weights(found, expected, rtol=1e-6):
    """Two portable files: the same tensors, equal to float32 rounding (rtol=0: bit for
    bit)."""
    a, b = np.load(found), np.load(expected)
    assert list(a) == list(b)
    for name in b:
        assert a[name].shape == b[name].shape, name
        assert np.abs(a[name] - b[name]).max() <= rtol * np.abs(b[name]).max(), name


@pytest.mark.parametrize(
    ("flags", "train", "world", "words"),
    [
        ({"devices": "2"}, {}, 2, "--devices (the two-tower split)"),
        ({"sync_bn": True}, {}, 2, "--sync-bn"),
        ({"compile": True}, {}, 2, "--compile"),
        ({}, {"ema": {"decay": 0.99}}, 2, "keeps an EMA"),
        ({}, {}, 1, "torchrun --nproc_per_node N (N >= 2)"),
        ({}, {}, 2, None),
    ],
)
def test_fsdp_refuses_what_it_does_not_shard(load, flags, train, world, words):
    spec = SimpleNamespace(MODEL_NAME="TinyNet", TRAIN=train)
    problem = load("sharding").fsdp_problem(Namespace(**{**FLAGS, **flags}), spec, world)
    assert problem == words if words is None else words in problem


def test_wrapping_units_are_statements_or_their_block_calls(load):
    sharding, nn = load("sharding"), torch.nn

    class Block(nn.Module):  # a generated block (a class outside torch)
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)

    net = nn.Sequential()
    net.add_module("stem", nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU()))
    net.add_module("layer1", nn.Sequential(Block(), Block()))
    net.add_module("pool", nn.AdaptiveAvgPool2d(1))
    net.add_module("head", nn.Linear(2, 4))
    units = sharding.wrapping_units(net)
    assert units == [net.stem, net.layer1[0], net.layer1[1], net.head]


@pytest.mark.parametrize(("count", "world", "batch"), [(10, 3, 3), (60, 2, 20), (7, 4, 1)])
@pytest.mark.parametrize("limit", [1, 2, 10**9])
def test_every_rank_makes_rank_0s_validation_forwards(
    load, monkeypatch, count, world, batch, limit
):
    """Each rank's batches (of its share range(rank, count, world), at most `limit` of
    them) plus its extra forwards are rank 0's batches: a sharded forward waits for all."""
    sharding = load("sharding")
    monkeypatch.setattr(sharding.dist, "get_world_size", lambda: world)
    made = []
    for rank in range(world):
        share = list(range(rank, count, world))
        loader = torch.utils.data.DataLoader(range(count), batch_size=batch, sampler=share)
        made.append(min(len(list(loader)), limit) + sharding.extra_forwards(loader, limit))
    assert made == [made[0]] * world
    assert made[0] == min(math.ceil(len(range(0, count, world)) / batch), limit)


def saved_shards(folder, net):
    """net's state dict written as a sharded checkpoint (one process, DCP)."""
    state = {"model": net.state_dict()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DCP's note that no process group is running
        torch.distributed.checkpoint.save(state, checkpoint_id=folder)
    return folder


@pytest.mark.parametrize(
    ("other", "named"),
    [
        (
            torch.nn.Sequential(torch.nn.Linear(3, 5)),
            "0.weight is [4, 3] there, [5, 3] in the model",
        ),
        (torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)), "it has no 1.weight"),
    ],
)
def test_shards_of_another_model_do_not_fit_in_one_line(load, tmp_path, other, named):
    sharding = load("sharding")
    folder = saved_shards(tmp_path / "sharded-5-0", torch.nn.Sequential(torch.nn.Linear(3, 4)))
    with pytest.raises(sharding.UsageError) as caught:
        sharding.read_shards({"model": other.state_dict()}, folder)
    assert str(caught.value) == f"{folder}: does not fit this model ({named})"


def test_shards_of_the_same_model_load_its_tensors(load, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    folder = saved_shards(tmp_path / "sharded-5-0", net)
    fresh = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    state = {"model": fresh.state_dict()}
    load("sharding").read_shards(state, folder)
    for name, tensor in net.state_dict().items():
        assert torch.equal(state["model"][name], tensor), name


def test_fsdp_without_torchrun_is_one_line_before_any_work(run_train, tmp_path):
    result = run_train("--fsdp", "--out", tmp_path / "out", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --fsdp shards over torchrun's processes: run under torchrun "
        "--nproc_per_node N (N >= 2), or drop --fsdp"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_fsdp_equals_ddp_and_its_weights_convert(assemble_into, run_command, tmp_path):
    run_dir = assemble_into(tmp_path / "both")
    (run_dir / "both.py").write_text(BOTH)
    cmd = torchrun("both.py", *BASE, "--epochs", 2, "--max-steps", 20)
    result = run_command(cmd, run_dir, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "fsdp: 4 units and the root sharded over 2 processes" in result.stdout
    ddp, fsdp = run_dir / "ddp", run_dir / "fsdp"
    assert table(fsdp) == table(ddp) and table(ddp)[-1][:2] == ["2", "20"]
    assert_same_weights(fsdp / "weights.npz", run_dir / "ddp.npz", rtol=0)
    assert sorted(p.name for p in fsdp.glob("sharded-*")) == ["sharded-20-0"]  # only the newest
    # one process, no torchrun: DCP reads the two ranks' shards of the newest checkpoint
    convert = [sys.executable, "sharding.py", str(fsdp / "last.pt"), "converted.npz"]
    done = run_command(convert, run_dir, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_same_weights(run_dir / "converted.npz", fsdp / "weights.npz")
    shard = next((fsdp / "sharded-20-0").glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[:100])  # cut short
    damaged = run_command([*convert[:-1], "again.npz"], run_dir, timeout=120)
    assert damaged.returncode == 2 and len(damaged.stderr.strip().splitlines()) == 1
    assert "sharded-20-0: unreadable sharded checkpoint (" in damaged.stderr
    (fsdp / "sharded-20-0" / ".metadata").unlink()  # a save cut short before its end
    unfinished = run_command([*convert[:-1], "again.npz"], run_dir, timeout=120)
    assert unfinished.returncode == 2
    assert unfinished.stderr.strip().endswith(
        "sharded-20-0: no sharded checkpoint there (no .metadata)"
    )
    assert not (run_dir / "again.npz").exists()
    plain = [sys.executable, "train.py", *map(str, BASE), "--out", str(fsdp), "--resume"]
    refused = run_command(plain, run_dir)
    assert refused.returncode == 2 and "written by an --fsdp run" in refused.stderr


@pytest.mark.slow
def test_fsdp_on_three_processes_with_clipping_and_uneven_validation_shares(
    assemble_into, run_command, tmp_path
):
    # 10 validation images over 3 ranks at 3 a batch: 2, 1 and 1 batches; every forward
    # gathers all ranks' shards, so ranks 1 and 2 make one more (even_out) or all would hang.
    # With gradient clipping: the global norm over the shards (a DTensor) is DDP's.
    fixture = Path(__file__).parent / "fixtures" / "model.py"
    clipped = fixture.read_text().replace('"batch": 32,', '"batch": 32, "clip_grad_norm": 0.5,')
    assert "clip_grad_norm" in clipped
    (tmp_path / "model.py").write_text(clipped)
    run_dir = assemble_into(tmp_path / "three", tmp_path / "model.py")
    (run_dir / "both.py").write_text(BOTH)
    flags = ("--synthetic-per-class", 5, "--batch-size", 9, "--epochs", 2, "--workers", 0)
    result = run_command(torchrun("both.py", *flags, processes=3), run_dir, timeout=300)
    assert result.returncode == 0, result.stderr
    ddp, fsdp = table(run_dir / "ddp"), table(run_dir / "fsdp")
    assert [row[:2] for row in fsdp] == [row[:2] for row in ddp] == [
        ["epoch", "step"], ["1", "5"], ["2", "10"]
    ]  # fmt: skip
    numbers = [[float(v) for v in row] for row in ddp[1:]]
    assert [[float(v) for v in row] for row in fsdp[1:]] == [
        pytest.approx(row, rel=1e-6) for row in numbers
    ]  # the mean over 3 gradients rounds differently in a reduce-scatter
    assert_same_weights(run_dir / "fsdp" / "weights.npz", run_dir / "ddp.npz")


def start(cmd, cwd):
    """Start a command in the background with the test environment."""
    pipe = subprocess.PIPE
    return subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=pipe, stderr=pipe, text=True)


def descendants(pid):
    """The ids of pid's child processes and theirs (read from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def kill_after_first_checkpoint(proc, out, limit=120):
    """SIGKILL torchrun and its workers (which have sessions of their own) once
    OUT/last.pt exists."""
    deadline = time.monotonic() + limit
    try:
        while not (out / "last.pt").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.02)
    finally:
        for pid in [*descendants(proc.pid), proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.communicate()


@pytest.mark.slow
def test_fsdp_resumes_after_a_kill_as_if_uninterrupted(assemble_into, run_command, tmp_path):
    run_dir = assemble_into(tmp_path / "resume")
    flags = (*BASE, "--epochs", 3, "--fsdp")
    whole = run_command(torchrun("train.py", *flags, "--out", "whole"), run_dir, timeout=300)
    assert whole.returncode == 0, whole.stderr
    killed = run_dir / "killed"
    proc = start(torchrun("train.py", *flags, "--save-every", 4, "--out", killed), run_dir)
    kill_after_first_checkpoint(proc, killed)
    cmd = torchrun("train.py", *flags, "--out", killed, "--resume")
    resumed = run_command(cmd, run_dir, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    step = int(re.search(r"from epoch \d+, step (\d+)", resumed.stdout).group(1))
    assert 0 < step < 45 and (step % 4 == 0 or step % 15 == 0)  # a save of the killed run
    assert table(killed) == table(run_dir / "whole")
    assert_same_weights(killed / "weights.npz", run_dir / "whole" / "weights.npz")
    assert len(list(killed.glob("sharded-*"))) == 1


KERAS_LOGITS = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import model
net = model.build_model()
model.load_weights(net, sys.argv[2])
x = np.load(sys.argv[3]).transpose(0, 2, 3, 1)  # NCHW -> Keras's NHWC
np.save(sys.argv[4], np.asarray(net(x, training=False)))
"""


def compiled(spec, backend, dest):
    """The spec's generated output for a backend in dest (the compiler in a subprocess)."""
    cmd = [sys.executable, "-m", "archdsl", "compile", spec, "--backend", backend, "-o", dest]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return dest


@pytest.mark.slow
def test_keras_reads_the_fsdp_weights_with_the_same_logits(run_command, tmp_path):
    pytest.importorskip("keras")
    spec = Path(__file__).parents[1] / "conformance" / "specs" / "bn_pocket.arch"
    torch_dir = compiled(spec, "torch", tmp_path / "torch")
    keras_dir = compiled(spec, "keras", tmp_path / "keras")
    flags = ("--synthetic-per-class", 4, "--batch-size", 8, "--max-steps", 3, "--workers", 0)
    trained = run_command(torchrun("train.py", *flags, "--fsdp", "--out", "out"), torch_dir, 300)
    assert trained.returncode == 0, trained.stderr
    weights = torch_dir / "out" / "weights.npz"
    x = np.random.default_rng(0).normal(size=(4, 3, 33, 33)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = [sys.executable, "-c", KERAS_LOGITS, keras_dir, weights, tmp_path / "x.npy"]
    done = run_command([*map(str, script), str(tmp_path / "keras.npy")], tmp_path, 300)
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(torch_dir))  # the model's runtime siblings
    try:
        module = importlib.util.spec_from_file_location("fsdp_bn_pocket", torch_dir / "model.py")
        generated = importlib.util.module_from_spec(module)
        module.loader.exec_module(generated)
    finally:
        sys.path.remove(str(torch_dir))
    net = generated.load_weights(generated.build_model(), weights).eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    got = np.load(tmp_path / "keras.npy")
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()  # INFERENCE_RTOL
