"""train.py over several "machines": torchrun agents on loopback joined by a c10d rendezvous,
elastic restarts after a killed worker, and resuming at another world size.

The model is TinyNet in float64 without batch norm and dropout (the two layers whose results
depend on how the global batch is split), so one process and two agree to the conformance
suite's float64 tolerance.
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
from conform import CROSS_RTOL  # noqa: E402

TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")
FIXTURE_MODEL = Path(__file__).parent / "fixtures" / "model.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # as conftest.py's: one thread a process
LOOPBACK_ENV = {**ENV, "GLOO_SOCKET_IFNAME": "lo"}
EDITS = {  # TinyNet -> the split-independent float64 net
    "nn.BatchNorm2d(16)": "nn.Identity()",
    "nn.Dropout(0.3)": "nn.Identity()",
    "self.conv1(x)": "self.conv1(x.double())",
    "return TinyNet()": "return TinyNet().double()",
}
# 40 synthetic images, global batch 8: 5 steps an epoch, 10 in all
FLAGS = ("--synthetic-per-class", 4, "--batch-size", 8, "--epochs", 2, "--seed", 3, "--workers", 0)
DONE = {"epoch": 2, "batches_done": 0, "global_step": 10}
TIMEOUT = 240

KILLER = """
import os, signal, sys
import train

def train_step(self, x, y, original=train.Trainer.train_step):
    marker = os.environ["KILL_MARKER"]
    at = (os.environ["KILL_RANK"], int(os.environ["KILL_AT_STEP"]))
    if (os.environ.get("RANK", "0"), self.state["global_step"]) == at:
        if not os.path.exists(marker):
            self.writer.wait()  # this rank's checkpoints so far are on disk
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
    return original(self, x, y)

train.Trainer.train_step = train_step
sys.exit(train.main())
"""


def plain_model_text():
    """The fixture model's source with EDITS applied (each exactly once)."""
    text = FIXTURE_MODEL.read_text()
    for old, new in EDITS.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def run_dir(assemble_into, tmp_path_factory):
    """An output directory with the float64 TinyNet and the KILLER wrapper."""
    root = tmp_path_factory.mktemp("nodes")
    (root / "plain_model.py").write_text(plain_model_text())
    run_dir = assemble_into(root / "run", root / "plain_model.py")
    (run_dir / "killer.py").write_text(KILLER)
    return run_dir


def free_port():
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nodes_command(port, *flags):
    """torchrun's argv for one of two one-process nodes meeting at 127.0.0.1:port."""
    rdzv = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}"]
    nodes = ["--nnodes", "2", "--nproc-per-node", "1", "--local-addr", "127.0.0.1"]
    return [TORCHRUN, *nodes, *rdzv, "--rdzv-id", f"test{port}", *map(str, flags)]


def run_all(commands, cwd, env, timeout=TIMEOUT):
    """Run commands side by side, each in its own process group; [(returncode, stdout,
    stderr)] in order. Every group is killed on a timeout or any error."""
    procs = []
    try:
        for cmd in commands:
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=cwd,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + timeout
        outputs = [p.communicate(timeout=max(1, deadline - time.monotonic())) for p in procs]
        return [(p.returncode, *out) for p, out in zip(procs, outputs, strict=True)]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def run_one(cwd, *args, env=ENV):
    """train.py (or another script) in one process: (returncode, stdout, stderr)."""
    return run_all([[sys.executable, *map(str, args)]], cwd, env)[0]


def run_two_nodes(cwd, *args, torchrun_flags=(), env=LOOPBACK_ENV):
    """Two torchrun agents, one process each, on a free loopback port."""
    command = nodes_command(free_port(), *torchrun_flags, *map(str, args))
    return run_all([command, command], cwd, env)


def ok(result):
    """Assert a (returncode, stdout, stderr) succeeded; return its stdout."""
    assert result[0] == 0, result[2][-3000:]
    return result[1]


def weights(out):
    """The model tensors of OUT/last.pt."""
    return torch.load(out / "last.pt", weights_only=True)["model"]


def assert_same_weights(a, b):
    """Per tensor, max |a - b| <= CROSS_RTOL * max |b| (the conformance tolerance)."""
    assert list(a) == list(b)
    for name in a:
        scale = b[name].abs().max().item()
        assert (a[name] - b[name]).abs().max().item() <= CROSS_RTOL * scale, name


def resumed_steps(stdout):
    """The steps the run headers in stdout say they start from."""
    return sorted(int(step) for step in re.findall(r"from epoch \d+, step (\d+)", stdout))


@pytest.fixture(scope="module")
def reference(run_dir):
    """The weights of one uninterrupted process."""
    ok(run_one(run_dir, "train.py", *FLAGS, "--out", "ref"))
    return weights(run_dir / "ref")


def state(out):
    """The progress entry of OUT/last.pt."""
    return torch.load(out / "last.pt", weights_only=True)["state"]


def test_two_nodes_on_loopback_train_as_one_process(run_dir, reference):
    results = run_two_nodes(run_dir, "train.py", *FLAGS, "--out", "two")
    lead = [ok(r) for r in results]
    assert sum("2 process(es) on cpu" in out for out in lead) == 1  # global rank 0 alone
    assert sum(out.count("epoch 2/2  step 10") for out in lead) == 1
    assert state(run_dir / "two") == DONE
    assert_same_weights(weights(run_dir / "two"), reference)


@pytest.mark.slow
def test_killed_worker_restarts_from_the_checkpoint_and_finishes(run_dir, reference):
    out, marker = run_dir / "elastic", run_dir / "elastic.killed"
    env = {**LOOPBACK_ENV, "KILL_RANK": "1", "KILL_AT_STEP": "8", "KILL_MARKER": str(marker)}
    env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"  # a fresh store each round (see README)
    flags = (*FLAGS, "--out", out, "--save-every", 3)
    results = run_two_nodes(run_dir, "killer.py", *flags, torchrun_flags=("--max-restarts", 1), env=env)  # fmt: skip
    stdout = "".join(ok(r) for r in results)
    assert marker.exists()  # rank 1 was killed at step 8
    assert stdout.count("2 process(es) on cpu") == 2  # the first start and the restart
    assert resumed_steps(stdout) in ([0, 5], [0, 6])  # the epoch's end or --save-every's
    assert state(out) == DONE
    assert_same_weights(weights(out), reference)


def killed_mid_epoch(run_dir, name, start, rank):
    """OUT of a run `start` launches that rank `rank` kills at step 8 (checkpoint at 6)."""
    out, marker = run_dir / name, run_dir / f"{name}.killed"
    env = {**LOOPBACK_ENV, "KILL_RANK": rank, "KILL_AT_STEP": "8", "KILL_MARKER": str(marker)}
    result = start("killer.py", *FLAGS, "--out", out, "--save-every", 3, env=env)
    assert marker.exists() and result[0] != 0
    assert state(out) == {"epoch": 1, "batches_done": 1, "global_step": 6}
    return out


@pytest.mark.slow
def test_resume_at_two_processes_from_one_continues_the_run(run_dir, reference):
    out = killed_mid_epoch(run_dir, "grow", lambda *a, env: run_one(run_dir, *a, env=env), "0")
    stdout = "".join(ok(r) for r in run_two_nodes(run_dir, "train.py", *FLAGS, "--out", out, "--resume"))  # fmt: skip
    assert resumed_steps(stdout) == [6] and "2 process(es)" in stdout
    assert_same_weights(weights(out), reference)


@pytest.mark.slow
def test_resume_at_one_process_from_two_continues_the_run(run_dir, reference):
    def two(*args, env):
        return max(run_two_nodes(run_dir, *args, env=env))  # the failed node's result

    out = killed_mid_epoch(run_dir, "shrink", two, "0")
    stdout = ok(run_one(run_dir, "train.py", *FLAGS, "--out", out, "--resume"))
    assert resumed_steps(stdout) == [6] and "1 process(es)" in stdout
    assert_same_weights(weights(out), reference)


@pytest.mark.slow
def test_resume_at_another_global_batch(run_dir):
    out = killed_mid_epoch(run_dir, "rebatch", lambda *a, env: run_one(run_dir, *a, env=env), "0")
    code, _, stderr = run_one(run_dir, "train.py", *FLAGS, "--batch-size", 4, "--out", out, "--resume")  # fmt: skip
    assert code == 2 and stderr.count("\n") == 1
    assert "saved inside an epoch at global batch 8; resume with --batch-size 8" in stderr


class Checkpoint(dict):
    """The entries of a checkpoint batch_change reads."""

    def __init__(self, batch, batches_done):
        """Trained at global batch `batch`, saved `batches_done` steps into an epoch."""
        super().__init__(args={"batch_size": batch}, state={"batches_done": batches_done})


def test_another_global_batch_is_refused_inside_an_epoch_and_warned_between(load):
    elastic = load("elastic")
    assert elastic.batch_change(Checkpoint(8, 3), 8, "last.pt") is None
    assert elastic.batch_change({"args": {}, "state": {"batches_done": 3}}, 4, "p") is None
    warning = elastic.batch_change(Checkpoint(8, 0), 4, "last.pt")
    assert warning.startswith("warning: last.pt: trained at global batch 8, continuing at 4")
    with pytest.raises(elastic.UsageError, match="resume with --batch-size 8"):
        elastic.batch_change(Checkpoint(8, 3), 4, "last.pt")


@pytest.mark.parametrize("restarts", ["0", "1"])
@pytest.mark.parametrize("saved", [False, True])
def test_a_restarted_worker_resumes_from_its_run_folder(load, monkeypatch, tmp_path, restarts, saved):  # fmt: skip
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", restarts)
    if saved:
        (tmp_path / "last.pt").write_bytes(b"")
    args = argparse.Namespace(out=tmp_path, resume=None)
    load("elastic").resume_after_restart(args, "last.pt", 1, torch.device("cpu"))
    assert args.resume == ("" if saved and restarts == "1" else None)


@pytest.mark.parametrize(
    ("shared", "nodes", "restarts", "warned"),
    [
        ("True", "2", "1", True),
        ("False", "2", "1", False),
        ("True", "1", "1", False),
        ("True", "2", "0", False),
    ],
)
def test_restarts_over_a_shared_store_are_warned(load, monkeypatch, shared, nodes, restarts, warned):  # fmt: skip
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", shared)
    monkeypatch.setenv("GROUP_WORLD_SIZE", nodes)
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", restarts)
    warning = load("elastic").store_warning()
    assert (warning is not None) == warned
    assert warning is None or "export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in warning
