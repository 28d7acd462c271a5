"""The Keras trainer's GPU defaults (fast_defaults.py) and several steps per tf.function call.

No GPU here: the defaults are decided from tf.config's device list and capability lookup,
patched to show a GPU; XLA runs on the CPU (XLA:CPU) to check the compiled steps' numbers.
"""

import json
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")


@pytest.fixture
def fake_gpu(load, monkeypatch):
    """fake_gpu(capability): tf.config shows one GPU of that compute capability; returns the
    list of TF32 settings the code made."""
    real = tf.config.list_physical_devices
    tf32 = []

    def install(capability):
        gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
        devices = {"GPU": [gpu]}
        monkeypatch.setattr(
            tf.config, "list_physical_devices", lambda kind=None: devices.get(kind, real(kind))
        )
        details = {"compute_capability": capability, "device_name": "fake"}
        monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda d: details)
        monkeypatch.setattr(tf.config.experimental, "enable_tensor_float_32_execution", tf32.append)
        return tf32

    return install


def resolved(load, device, *flags):
    """(args after resolve_fast_defaults, replica devices) for train.py's flags."""
    train = load("train")
    args = train.parse_args(["--device", device, *flags])
    devices = train.replica_devices(args.device, args.devices)
    train.resolve_fast_defaults(args, devices)
    return args, devices


def fast(args):
    """(--compile, --steps-per-call, dtype policy) as resolved."""
    return args.compile, args.steps_per_call, args.policy


def test_a_gpu_with_bf16_gets_xla_bf16_tf32_and_several_steps_per_call(load, fake_gpu):
    tf32 = fake_gpu((8, 0))
    args, devices = resolved(load, "auto")
    assert devices == ["/gpu:0"]
    assert fast(args) == (True, 8, "mixed_bfloat16") and tf32 == [True]
    assert load("fast_defaults").modes_text(args) == " (mixed_bfloat16, XLA, 8 steps per call)"


@pytest.mark.parametrize(
    ("flags", "expected", "tf32"),
    [
        (["--fp32"], (True, 8, None), False),
        (["--no-compile", "--steps-per-call", "1"], (False, 1, "mixed_bfloat16"), True),
        (["--compile", "--steps-per-call", "3"], (True, 3, "mixed_bfloat16"), True),
    ],
)
def test_the_opt_outs_on_a_gpu_with_bf16(load, fake_gpu, flags, expected, tf32):
    settings = fake_gpu((9, 0))
    assert fast(resolved(load, "cuda", *flags)[0]) == expected
    assert settings == [tf32]


def test_an_older_gpu_gets_xla_but_float32_unless_amp_asks_for_float16(load, fake_gpu):
    fake_gpu((7, 5))
    assert fast(resolved(load, "auto")[0]) == (True, 8, None)
    assert fast(resolved(load, "auto", "--amp")[0]) == (True, 8, "mixed_float16")


def test_the_cpu_keeps_plain_float32_one_step_per_call_without_xla(load):
    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    args, devices = resolved(load, "cpu")
    assert devices == ["/cpu:0"] and fast(args) == (False, 1, None)
    assert load("fast_defaults").modes_text(args) == ""
    assert tf.config.experimental.tensor_float_32_execution_enabled() == tf32
    amp = resolved(load, "cpu", "--amp", "--compile", "--steps-per-call", "4")[0]
    assert fast(amp) == (True, 4, "mixed_float16")  # as before: loss-scaled float16


def test_fp32_with_amp_is_a_usage_error(load):
    with pytest.raises(load("train").UsageError, match="contradict"):
        resolved(load, "cpu", "--fp32", "--amp")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((8, 0, 10, None, (0, 0)), 8),  # a full call
        ((8, 16, 10, 20, (0, 0)), 4),  # --max-steps 20 at step 16
        ((8, 6, 10, None, (5, 0)), 4),  # --save-every 5: the checkpoint at step 10
        ((8, 9, 10, None, (0, 3)), 3),  # an EMA update every 3 steps: at step 12
        ((8, 9, 2, None, (0, 0)), 2),  # 2 batches left in the epoch
        ((8, 9, 0, None, (0, 0)), 0),  # the epoch's end
        ((8, 20, 10, 20, (0, 0)), 0),  # --max-steps reached
        ((1, 4, 10, 7, (5, 2)), 1),
    ],
)
def test_a_call_ends_at_every_boundary(load, args, expected):
    assert load("train").steps_in_call(*args) == expected


TINY = ["--synthetic-per-class", "10", "--batch-size", "4", "--workers", "1", "--seed", "5"]


@pytest.fixture
def recorded(load, monkeypatch):
    """(calls, saves): the steps of each call and the step of each checkpoint that the
    trainer makes, recorded (the SIGINT handler it installs restored after the test)."""
    trainer, calls, saves = load("train").Trainer, [], []
    steps_in_call, save = trainer.steps_in_call, trainer.save
    monkeypatch.setattr(
        trainer, "steps_in_call", lambda t: calls.append(steps_in_call(t)) or calls[-1]
    )
    monkeypatch.setattr(trainer, "save", lambda t: saves.append(t.state["global_step"]) or save(t))
    handler = signal.getsignal(signal.SIGINT)
    yield calls, saves
    signal.signal(signal.SIGINT, handler)


def arrays(path):
    """{name: array} of a checkpoint, its metadata's training state and validation metrics
    instead of the meta bytes (which also hold timings)."""
    with np.load(path) as npz:
        found = {k: npz[k] for k in npz.files if k != "meta"}
        meta = json.loads(npz["meta"].tobytes())
    found["state"] = np.array(list(meta["state"].values()))
    found["progress"] = np.array([meta["train_loss_sum"], meta["train_seen"]])
    found["val"] = np.array([[r["val_loss"], r["val_error"]] for r in meta["metrics"]])
    return found


def test_several_steps_per_call_give_the_weights_of_one_step_per_call(load, recorded, tmp_path):
    """--steps-per-call 1 and 3 (in this process): a stop by --max-steps 7 (a call of 3 cut
    to 2), --save-every 5 (a call cut to 2), then a resume to the end of epoch 2."""
    runs = []
    for n in (1, 3):
        out = tmp_path / f"n{n}"
        for stage in (["--max-steps", "7"], ["--resume"]):
            argv = [*TINY, "--epochs", "2", "--save-every", "5", "--steps-per-call", str(n)]
            assert load("train").main([*argv, *stage, "--out", str(out)]) == 0
            shutil.copy(out / "last.npz", out / f"{stage[0][2:]}.npz")
            runs.append((n, [*recorded[0]], [*recorded[1]]))
            recorded[0].clear(), recorded[1].clear()
    # 40 images in batches of 4: 10 steps an epoch; --max-steps 7 ends epoch 1 (as ever),
    # the resumed run trains epoch 2 to step 17
    assert runs == [
        (1, [1] * 7 + [0], [5, 7]),
        (1, [1] * 10 + [0], [10, 15, 17]),
        (3, [3, 2, 2, 0], [5, 7]),
        (3, [3, 3, 2, 2, 0], [10, 15, 17]),
    ]
    for stage in ("max-steps", "resume"):
        one, three = (arrays(tmp_path / f"n{n}" / f"{stage}.npz") for n in (1, 3))
        assert one.keys() == three.keys()
        for name in one:
            np.testing.assert_array_equal(three[name], one[name], err_msg=name)


# XLA on two replicas (XLA:CPU, two logical CPUs): one run of each --steps-per-call
XLA_RUNS = """
import json, sys
import train
out, flags = sys.argv[1], json.loads(sys.argv[2])
for n in (1, 3):
    argv = [*flags, "--devices", "2", "--compile", "--steps-per-call", str(n)]
    assert train.main([*argv, "--out", f"{out}/n{n}"]) == 0
"""


@pytest.mark.slow
def test_xla_on_two_replicas_gives_the_same_weights_with_several_steps_per_call(outdir, tmp_path):
    flags = [*TINY, "--epochs", "2", "--max-steps", "13", "--save-every", "5"]
    cmd = [sys.executable, "-c", XLA_RUNS, str(tmp_path), json.dumps(flags)]
    proc = subprocess.run(cmd, cwd=outdir, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 replica(s) on /cpu:0, /cpu:1 (XLA, 3 steps per call)" in proc.stdout
    one, three = (arrays(tmp_path / f"n{n}" / "last.npz") for n in (1, 3))
    assert list(one["state"]) == [2, 0, 13]
    for name in one:
        np.testing.assert_array_equal(three[name], one[name], err_msg=name)


@pytest.mark.slow
def test_mixed_bfloat16_trains_without_loss_scaling(load, recorded, monkeypatch, tmp_path):
    """The policy a GPU with bf16 gets, forced on the CPU: bf16 layers, float32 weights and
    logits, a plain optimizer, and the losses of the float32 run to bf16's precision
    (0.05), falling."""
    import keras

    train = load("train")
    flags = ["--synthetic-per-class", "40", "--batch-size", "16", "--workers", "1"]
    flags += ["--epochs", "3", "--steps-per-call", "2"]

    def losses(out, policy):
        """(trainer, its epochs' training losses) of a run under the dtype policy."""
        resolve = train.resolve_fast_defaults

        def forced(args, devices):
            resolve(args, devices)
            args.policy = policy

        monkeypatch.setattr(train, "resolve_fast_defaults", forced)
        try:
            trainer = train.Trainer(train.parse_args([*flags, "--out", str(out)]))
            trainer.run()
        finally:
            keras.mixed_precision.set_dtype_policy("float32")
            monkeypatch.setattr(train, "resolve_fast_defaults", resolve)
        return trainer, [row["train_loss"] for row in trainer.log.rows]

    trainer, bf16 = losses(tmp_path / "bf16", "mixed_bfloat16")
    assert trainer.net.layers[1].compute_dtype == "bfloat16"
    assert {v.dtype for v in trainer.net.trainable_variables} == {"float32"}
    assert not isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    fp32 = losses(tmp_path / "fp32", None)[1]
    assert bf16 != fp32 and bf16 == pytest.approx(fp32, abs=0.05)
    assert bf16[-1] < bf16[0] < np.log(4)


@pytest.fixture
def host_reads(monkeypatch):
    """The list of the main thread's reads of an eager tensor's value (numpy(), float(),
    int(), bool(), np.asarray()) while the test runs."""
    import threading

    from tensorflow.python.framework import ops

    reads, main = [], threading.get_ident()
    for name in ("numpy", "__float__", "__int__", "__bool__", "__array__"):
        read = getattr(ops._EagerTensorBase, name)

        def counted(tensor, *args, read=read, name=name, **kwargs):
            if threading.get_ident() == main:
                reads.append(name)
            return read(tensor, *args, **kwargs)

        monkeypatch.setattr(ops._EagerTensorBase, name, counted)
    return reads


def test_the_step_loop_never_reads_the_device_and_validation_reads_once(
    load, recorded, host_reads, tmp_path
):
    """An epoch of 20 steps in calls of 3 reads no value from the device (the loss is summed
    there, read when printed: not at all here, with no terminal); validation over 4 batches
    reads its sums once."""
    train = load("train")
    flags = [*TINY, "--steps-per-call", "3", "--batch-size", "2", "--out", str(tmp_path)]
    trainer = train.Trainer(train.parse_args(flags))
    host_reads.clear()
    trainer.train_epoch(0)
    assert recorded[0] == [3] * 6 + [2, 0] and host_reads == []
    assert len(trainer.val_set) == 4 * 2  # 4 batches
    metrics = trainer.validate()
    assert host_reads == ["numpy"] and np.isfinite(metrics["val_loss"])


# the fixture model with an EMA updated every 2 steps, trained with 1 and then 3 steps per
# call (calls cut at each update) in one process
EMA_RUNS = """
import json, sys
import train
out, flags = sys.argv[1], json.loads(sys.argv[2])
train.spec.TRAIN["ema"] = {"decay": 0.9, "every": 2, "adjust": False}
for n in (1, 3):
    argv = [*flags, "--steps-per-call", str(n), "--out", f"{out}/n{n}"]
    assert train.main(argv) == 0
"""


@pytest.mark.slow
def test_the_ema_updates_after_the_same_steps_with_several_steps_per_call(outdir, tmp_path):
    flags = [*TINY, "--epochs", "2", "--max-steps", "13"]
    cmd = [sys.executable, "-c", EMA_RUNS, str(tmp_path), json.dumps(flags)]
    proc = subprocess.run(cmd, cwd=outdir, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, three = (arrays(tmp_path / f"n{n}" / "last.npz") for n in (1, 3))
    assert any(name.startswith("ema/") for name in one)
    assert not np.array_equal(one["ema/00000"], one["model/00000"])
    for name in one:
        np.testing.assert_array_equal(three[name], one[name], err_msg=name)
