"""The training step without host-device synchronisation, the CUDA defaults, DDP options and
checkpoints written in the background (issue 16), proved on the CPU.

Synchronising reads are counted by patching what reads a tensor's value into Python
(Tensor.item, tolist, __bool__, __float__, __int__, cpu, torch.cuda.synchronize) in the main
thread: on CUDA each of them waits for the device. Host values the trainer reads on purpose go
through .numpy(), which fails on a device tensor, so no wait can hide there.
"""

import json
import os
import sys
import threading
from argparse import Namespace

import pytest

torch = pytest.importorskip("torch")

# train.Trainer on each rank under torchrun: what reads the device (or puts a Python value on
# it) in the step loop, Ctrl-C on rank 1 only, and validation against the model evaluated
# directly on the whole val set; each rank writes its findings to findings-RANK.json (the ranks'
# stdout lines can interleave under torchrun)
DRIVER = """
import json, os, sys, threading
import torch, torch.nn.functional as F
import train

READS = ("item", "tolist", "__bool__", "__float__", "__int__", "cpu")
calls = []

def counting(name, original, trainer, onto_device=False):
    def read(*args, **kwargs):
        caller = sys._getframe(1).f_code.co_filename
        # the DataLoader's own host tensors (its seed, the sampler's permutation) aside
        loader = os.sep + os.path.join("torch", "utils", "data") + os.sep in caller
        counts = not onto_device or kwargs.get("device") is not None
        if threading.current_thread() is threading.main_thread() and counts and not loader:
            where = os.path.basename(caller)
            calls.append([name, where, trainer.state["global_step"]])
        return original(*args, **kwargs)
    return read

def counted(trainer, run):
    patched = [(torch.Tensor, n, False) for n in READS]
    patched += [(torch, "tensor", True), (torch, "as_tensor", True)]
    originals = [(owner, n, getattr(owner, n)) for owner, n, _ in patched]
    for (owner, name, onto), (_, _, original) in zip(patched, originals):
        setattr(owner, name, counting(name, original, trainer, onto))
    calls.clear()
    try:
        result = run()
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    return result, list(calls)

trainer = train.Trainer(train.parse_args(sys.argv[1:]))
trainer.stop.requested = trainer.rank == 1  # Ctrl-C on one rank before the first step
_, step_calls = counted(trainer, lambda: trainer.train_epoch(0))
stop = trainer.stop_agreed()
trainer.sync_buffers()  # as end_epoch: rank 0's batch norm statistics everywhere
metrics, val_calls = counted(trainer, trainer.validate)
trainer.stop.close()
net = trainer.net.eval()
val = [trainer.val_set[(0, i)] for i in range(len(trainer.val_set))]
x = torch.stack([torch.as_tensor(image) for image, _ in val])
y = torch.tensor([label for _, label in val])
with torch.no_grad():
    logits = net(trainer.to_input(x))
direct = {
    "val_loss": F.cross_entropy(logits.double(), y).item(),
    "val_error": (logits.argmax(1) != y).double().mean().item(),
}
with open(f"findings-{trainer.rank}.json", "w") as f:
    f.write(json.dumps({
    "rank": trainer.rank, "steps": trainer.state["global_step"], "stop": stop,
    "step_calls": step_calls, "val_calls": val_calls, "metrics": metrics,
    "direct": direct, "mean_loss": trainer.mean_loss(),
    "loss": trainer.loss_sum.item() / trainer.seen,
    }))
"""


@pytest.fixture(scope="module")
def driven(assemble_into, run_command, tmp_path_factory):
    """[rank 0's, rank 1's] findings of DRIVER: TinyNet on 2 ranks, 100 images, global batch
    4 (25 steps an epoch), --max-steps 25, 20 validation images."""
    run_dir = assemble_into(tmp_path_factory.mktemp("step"))
    (run_dir / "driver.py").write_text(DRIVER)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    argv = ["--synthetic-per-class", 10, "--batch-size", 4, "--max-steps", 25, "--workers", 0]
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "driver.py", *map(str, argv)]
    done = run_command([*cmd, "--out", "out"], run_dir, timeout=300)
    assert done.returncode == 0, done.stderr
    return [json.loads((run_dir / f"findings-{rank}.json").read_text()) for rank in (0, 1)]


def test_the_step_loop_reads_nothing_from_the_device(driven):
    for rank in driven:
        # one Python value onto the device at the epoch's start (the loss sum), none per step
        assert rank["step_calls"] == [["as_tensor", "train.py", 0]]
        # the bar's loss: the lagged readout, equal to the device sum once it has arrived
        assert rank["mean_loss"] == pytest.approx(rank["loss"], rel=1e-12)


def test_the_ranks_agree_on_ctrl_c_at_one_step_without_waiting(driven):
    # Ctrl-C on rank 1 only; the agreement started at step 10 is read at step 20 by both
    assert [(r["steps"], r["stop"]) for r in driven] == [(20, True), (20, True)]


def test_validation_reads_the_device_once_and_counts_right(driven):
    for rank in driven:
        # the counter sees reads: the count of images onto the device and one read, after
        # the loop (the all_reduce of the sums between them)
        assert [c[:2] for c in rank["val_calls"]] == [["tensor", "train.py"], ["tolist", "train.py"]]  # fmt: skip
        metrics, direct = rank["metrics"], rank["direct"]
        assert metrics["val_loss"] == pytest.approx(direct["val_loss"], rel=1e-5)
        assert metrics["val_error"] == pytest.approx(direct["val_error"], abs=1e-12)


# ----------------------------------------------------------------------------- readout


class Event:
    """A stand-in for a CUDA event: done when the test says."""

    def __init__(self):
        """Not done."""
        self.done = False

    def query(self):
        """Whether the queued work is done."""
        return self.done


def test_the_readout_shows_the_newest_arrived_copy_without_waiting(load, monkeypatch):
    nosync = load("nosync")
    events = []
    monkeypatch.setattr(nosync, "copies_queued", lambda devices: events.append(Event()) or events[-1:])  # fmt: skip
    readout = nosync.LaggedReadout()
    readout.push(torch.tensor(3.0), 1)
    assert readout.latest() is None  # in flight
    readout.push(torch.tensor(5.0), 2)  # a copy is in flight: none queued
    assert len(events) == 1
    events[0].done = True
    assert readout.latest() == (3.0, 1)
    readout.push(torch.tensor(7.0), 3)
    assert len(events) == 2 and readout.latest() == (3.0, 1)
    events[1].done = True
    assert readout.latest() == (7.0, 3)


# ----------------------------------------------------------------------------- CUDA defaults


@pytest.fixture
def precision(load, monkeypatch):
    """fast_defaults with a patched CUDA capability; restores the global precision after."""
    fast_defaults = load("fast_defaults")
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (8, 0))
    yield fast_defaults
    torch.set_float32_matmul_precision(before[0])
    torch.backends.cudnn.allow_tf32 = before[1]


def flags(amp=None, channels_last=None, fp32=False):
    """The precision flags as parse_args leaves them."""
    return Namespace(amp=amp, channels_last=channels_last, fp32=fp32)


CUDA, CPU = torch.device("cuda", 0), torch.device("cpu")


def test_a_bf16_gpu_defaults_to_amp_channels_last_and_tf32(precision):
    args = flags()
    precision.resolve_precision(args, [CUDA])
    assert args.amp is True and args.channels_last is True
    assert torch.get_float32_matmul_precision() == "high"  # TF32 matmuls
    assert torch.backends.cudnn.allow_tf32


def test_fp32_opts_out_and_explicit_flags_win(precision):
    args = flags(fp32=True)
    precision.resolve_precision(args, [CUDA, CUDA])
    assert args.amp is False and args.channels_last is False
    assert torch.get_float32_matmul_precision() == "highest"
    assert not torch.backends.cudnn.allow_tf32
    args = flags(channels_last=True, fp32=True)
    precision.resolve_precision(args, [CUDA])
    assert args.amp is False and args.channels_last is True
    usage_error = sys.modules[precision.check_precision.__module__].UsageError
    with pytest.raises(usage_error, match="--fp32 and --amp contradict"):
        precision.resolve_precision(flags(amp=True, fp32=True), [CUDA])


def test_older_gpus_and_the_cpu_keep_float32(precision, monkeypatch):
    before = torch.get_float32_matmul_precision()
    args = flags()
    precision.resolve_precision(args, [CPU])
    assert args.amp is False and args.channels_last is False
    assert torch.get_float32_matmul_precision() == before  # the CPU's matmuls untouched
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (7, 0))
    args = flags(amp=True)
    precision.resolve_precision(args, [CUDA])
    assert args.amp is True and args.channels_last is False  # Volta: fp16 only if asked


# ----------------------------------------------------------------------------- checkpoints


def test_a_checkpoint_is_written_in_the_background_and_whole(load, tmp_path):
    writer_module = load("checkpoint_writer")
    path = tmp_path / "last.pt"
    release, started = threading.Event(), threading.Event()

    def held(ckpt):
        """Pickle only once the test lets it."""
        started.set()
        assert release.wait(30)
        return ckpt

    writer = writer_module.CheckpointWriter()
    weight = torch.arange(4.0)
    writer.submit(path, {"w": weight, "rows": [{"a": 1}]}, lambda c: c, lambda c: None)
    writer.wait()
    first = path.read_bytes()
    writer.submit(path, {"w": weight, "rows": [{"a": 2}]}, held, lambda c: None)
    assert started.wait(30)
    weight.add_(10)  # training goes on: the queued copy is of the weights at submit
    assert path.read_bytes() == first  # the old file stays whole while the new one is written
    release.set()
    writer.wait()
    saved = torch.load(path, weights_only=True)
    assert torch.equal(saved["w"], torch.arange(4.0)) and saved["rows"] == [{"a": 2}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_a_failed_background_write_raises_and_keeps_the_old_file(load, tmp_path):
    writer_module = load("checkpoint_writer")
    path = tmp_path / "last.pt"
    writer = writer_module.CheckpointWriter()
    writer.submit(path, {"w": torch.ones(2)}, lambda c: c, lambda c: None)
    writer.wait()
    first = path.read_bytes()

    def broken(ckpt):
        """A write that fails half way (a full disk)."""
        raise OSError(28, "No space left on device")

    writer.submit(path, {"w": torch.zeros(2)}, broken, lambda c: None)
    with pytest.raises(OSError, match="No space left"):
        writer.wait()
    writer.wait()  # the error is raised once
    assert path.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_the_host_copy_keeps_a_state_dicts_metadata(load):
    writer_module = load("checkpoint_writer")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    state = net.state_dict()
    copy = writer_module.host_copy({"model": state, "rng": (1, (2, 3), None)})
    assert copy["model"]._metadata == state._metadata and copy["rng"] == (1, (2, 3), None)
    for name, tensor in state.items():
        assert torch.equal(copy["model"][name], tensor)
        assert copy["model"][name].data_ptr() != tensor.data_ptr()


# ----------------------------------------------------------------------------- DDP


def test_sync_bn_converts_in_place_of_the_same_parameters(load):
    train = load("train")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    params, buffers = list(net.parameters()), list(net.buffers())
    synced = train.sync_batchnorm(net, CUDA, 2)  # converting touches no device
    assert isinstance(synced[1], torch.nn.SyncBatchNorm)
    assert all(a is b for a, b in zip(synced.parameters(), params, strict=True))
    assert all(a is b for a, b in zip(synced.buffers(), buffers, strict=True))
    assert train.sync_batchnorm(net, CUDA, 1) is net  # one process: nothing to sync
    with pytest.raises(train.UsageError, match="--sync-bn needs CUDA"):
        train.sync_batchnorm(net, CPU, 2)


def test_the_header_names_what_differs_from_float32(load):
    train = load("train")
    assert train.precision_text(torch.bfloat16, True) == " (bfloat16 autocast, channels-last)"
    assert train.precision_text(torch.float16, False) == " (float16 autocast)"
    assert train.precision_text(None, False) == ""


# train.main with a step that fails on the third call (after two --save-every 1 saves)
CRASHING = """
import sys
import train

steps = 0
original = train.Trainer.train_step

def failing(self, x, y):
    global steps
    steps += 1
    if steps == 3:
        raise RuntimeError("the device fell off the bus")
    return original(self, x, y)

train.Trainer.train_step = failing
train.main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_crash_leaves_the_last_background_save_whole(assemble_into, run_command, tmp_path):
    run_dir = assemble_into(tmp_path / "crash")
    (run_dir / "crash.py").write_text(CRASHING)
    argv = ["--synthetic-per-class", 2, "--batch-size", 4, "--save-every", 1, "--workers", 0]
    done = run_command([sys.executable, "crash.py", *map(str, argv), "--out", "out"], run_dir)
    assert done.returncode == 1 and "the device fell off the bus" in done.stderr
    out = run_dir / "out"
    files = [".lock", "last.pt", "metrics.csv", "metrics.png", "tensorboard"]
    assert sorted(p.name for p in out.iterdir()) == files  # no temp file left
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["state"] == {"epoch": 0, "batches_done": 2, "global_step": 2}
    assert ckpt["train_seen"] == 8


def test_the_ema_update_is_torchs_averaged_model_bit_for_bit(load):
    ema_module = load("ema")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    ours = ema_module.ema_model(net, 0.9)
    decay = 0.9
    theirs = torch.optim.swa_utils.AveragedModel(
        net,
        avg_fn=lambda a, w, n: decay * a + (1.0 - decay) * w if a.is_floating_point() else w,
        use_buffers=True,
    )
    for step in range(4):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        net(torch.randn(4, 2, 5, 5))  # moves the running statistics and the batch count
        ema_module.update(ours, net, restart=False)
        theirs.update_parameters(net)
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):  # fmt: skip
            assert torch.equal(a, b), (step, name)
    assert ours.n_averaged.device.type == "cpu"
