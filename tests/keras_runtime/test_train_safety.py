"""The Keras trainer against hostile and careless input: flags, run folders, checkpoints.

Each case ends in one line on stderr and exit status 2 before any training step, as in the
PyTorch trainer (tests/torch_runtime/test_torch_train_safety.py covers the shared code in
depth). Many cases run through train.main() in one subprocess (DRIVER), to import TensorFlow
once; its own log lines go to the process's stderr, not to the captured one.
"""

import json
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

pytest.importorskip("keras")

TINY = ("--synthetic-per-class", 2, "--batch-size", 4, "--workers", 1)
# train.main(argv) for each argv of sys.argv[1] (JSON); prints [{code, stdout, stderr}, ...]
DRIVER = """
import contextlib, io, json, sys
import train
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = train.main(argv)
        except SystemExit as stop:
            code = stop.code
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


def main_calls(outdir, argvs):
    """[{code, stdout, stderr}] of train.main(argv) for each argv, in one subprocess."""
    argvs = [[str(a) for a in argv] for argv in argvs]
    cmd = [sys.executable, "-c", DRIVER, json.dumps(argvs)]
    done = subprocess.run(cmd, cwd=outdir, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def one_error_line(result):
    """The single stderr line of a main() call that must have failed with exit status 2."""
    lines = result["stderr"].splitlines()
    assert result["code"] == 2 and len(lines) == 1 and result["stdout"] == "", result
    return lines[0]


def error_line(proc):
    """The one `error:` line of a finished train.py (TensorFlow may log lines of its own)."""
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and errors[0] == proc.stderr.splitlines()[-1]
    return errors[0]


BAD_FLAGS = {
    ("--lr", "-1"): "argument --lr: expected a finite number > 0, not '-1'",
    ("--lr", "nan"): "argument --lr: expected a finite number > 0, not 'nan'",
    ("--batch-size", "0"): "argument --batch-size: expected an integer >= 1, not '0'",
    ("--seed", "4294967296"): "argument --seed: expected an integer from 0 to 4294967295",
    ("--workers", "-1"): "argument --workers: expected an integer from 0 to 256, not '-1'",
    ("--synthetic-per-class", "0"): "argument --synthetic-per-class: expected an integer >= 1",
    ("--epochs", "0"): "argument --epochs: expected an integer >= 1, not '0'",
    ("--max-steps", "-5"): "argument --max-steps: expected an integer >= 1, not '-5'",
    ("--save-every", "-1"): "argument --save-every: expected an integer >= 0, not '-1'",
    ("--devices", "0"): "argument --devices: expected at least one device and at most 64",
    ("--devices", "65"): "argument --devices: expected at least one device and at most 64",
    ("--steps-per-call", "0"): "argument --steps-per-call: expected an integer from 1 to 4096",
}


@pytest.fixture(scope="module")
def results(outdir, tmp_path_factory):
    """main()'s results: {"flags": {BAD_FLAGS key: result}, "outs": {case: (unusable --out,
    result)}, "replicas": result of more --devices than images in a step}."""
    folder = tmp_path_factory.mktemp("outs")
    (folder / "a_file").write_text("mine")
    outs = {"a file": folder / "a_file", "under a file": folder / "a_file" / "run"}
    outs["in /proc"] = "/proc/archdsl-run"
    replicas = [*TINY, "--devices", 5, "--out", folder / "replicas"]  # last: sets up TF
    argvs = [*BAD_FLAGS, *([*TINY, "--out", o] for o in outs.values()), replicas]
    found = main_calls(outdir, argvs)
    return {
        "flags": dict(zip(BAD_FLAGS, found[: len(BAD_FLAGS)], strict=True)),
        "outs": {
            c: (o, r) for (c, o), r in zip(outs.items(), found[-1 - len(outs) : -1], strict=True)
        },
        "replicas": found[-1],
    }


@pytest.mark.parametrize("flags", list(BAD_FLAGS))
def test_a_bad_flag_is_one_line_and_exit_2(results, flags):
    line = one_error_line(results["flags"][flags])
    assert line.startswith(f"-c: error: {BAD_FLAGS[flags]}") and line.endswith(" (see --help)")


@pytest.mark.parametrize("case", ["a file", "under a file", "in /proc"])
def test_an_unusable_out_is_an_error_before_training(results, case):
    out, result = results["outs"][case]
    line = one_error_line(result)
    assert line.startswith(f"error: --out {out}: cannot write the run there (")
    assert line.endswith("); pass another --out")


def test_more_replicas_than_images_in_a_step_is_refused(results):
    assert one_error_line(results["replicas"]) == (
        "error: --devices 5: more replicas than the 4 images of a training step; "
        "use a larger --batch-size or fewer --devices"
    )


PADDED_EVAL = """
import feed, keras, numpy as np, tensorflow as tf, train
devices = train.replica_devices("cpu", 3)
x = np.random.default_rng(0).normal(size=(1, 4, 4, 3)).astype("float32")
y = np.array([2], "int32")
for strategy in (train.make_strategy(devices[:1]), train.make_strategy(devices)):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        layers = [keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()]
        net = keras.Sequential([keras.Input((4, 4, 3)), *layers])
    step = train.make_eval_step(strategy, net, False)
    for batch in ((x, y), (np.concatenate([x, x]), np.concatenate([y, y]))):
        padded = train.padded(batch, strategy.num_replicas_in_sync)
        parts = feed.distribute(strategy, tf.data.Dataset.from_tensors(padded))
        print(strategy.num_replicas_in_sync, *step(next(iter(parts))).numpy())
"""


def test_validation_pads_a_batch_smaller_than_the_replicas(outdir):
    """A last validation batch of 1 or 2 images on 3 replicas: pads weighted 0, the sums
    those of one device (an empty replica part broke TensorFlow's kernels)."""
    cmd = [sys.executable, "-c", PADDED_EVAL]
    proc = subprocess.run(cmd, cwd=outdir, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in proc.stdout.strip().splitlines()[-4:]]
    assert [line[0] for line in lines] == ["1", "1", "3", "3"]
    one, three = lines[:2], lines[2:]
    for a, b in zip(one, three, strict=True):
        assert [float(v) for v in b[1:]] == pytest.approx([float(v) for v in a[1:]], rel=1e-5)
    assert float(one[1][1]) == pytest.approx(2 * float(one[0][1]), rel=1e-5)


def test_a_model_that_outputs_a_map_is_refused(outdir, tmp_path):
    directory = tmp_path / "map"
    directory.mkdir()
    for source in outdir.glob("*.py"):
        text = source.read_text()
        if source.name == "model.py":
            assert "OUTPUT_SHAPE = (4,)\n" in text
            text = text.replace("OUTPUT_SHAPE = (4,)\n", "OUTPUT_SHAPE = (8, 8, 4)\n")
        (directory / source.name).write_text(text)
    cmd = [sys.executable, "train.py", *map(str, TINY), "--out", "run"]
    proc = subprocess.run(cmd, cwd=directory, capture_output=True, text=True, timeout=240)
    assert error_line(proc) == (
        "error: the model outputs a map of shape (8, 8, 4); the classification trainer needs "
        "a vector of class scores (hint: end the spec with global_avgpool |> flatten |> dense(N))"
    )
    assert not (directory / "run").exists()


def test_a_second_run_on_a_busy_folder_exits_2(outdir, run_train, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "train.py", "--synthetic-per-class", "40", "--epochs", "50"]
    first = subprocess.Popen([*cmd, "--out", str(out)], cwd=outdir, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not ((out / ".lock").exists() and (out / ".lock").read_text() == f"{first.pid}\n"):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        second = run_train(*TINY, "--out", out)
        assert error_line(second) == (
            f"error: --out {out}: the run folder is in use by another training "
            f"(pid {first.pid}); wait for it to end or pass another --out"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


# ----------------------------------------------------------------------------- checkpoints

STALE = [".last.npz.abcd1234.tmp", ".metrics.csv.k2_j9xq1.tmp"]


@pytest.fixture(scope="module")
def saved(outdir, tmp_path_factory):
    """Train one step into a folder holding unfinished saves; returns (OUT, arrays, meta)."""
    out = tmp_path_factory.mktemp("saved")
    for name in STALE:
        (out / name).write_bytes(b"half a save")
    cmd = [sys.executable, "train.py", *map(str, TINY), "--max-steps", "1", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=outdir, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    with np.load(out / "last.npz", allow_pickle=False) as f:
        arrays = dict(f)
    return out, arrays, json.loads(arrays["meta"].tobytes())


def test_unfinished_saves_are_removed_at_start(saved):
    out, _, _ = saved
    files = {".lock", "last.npz", "metrics.csv", "metrics.png", "tensorboard"}
    assert {p.name for p in out.iterdir()} == files


def meta_of(value=None, text=None):
    """A damage: the meta array replaced by the JSON of value (or by text)."""
    raw = (json.dumps(value) if text is None else text).encode()
    return lambda arrays, meta: {**arrays, "meta": np.frombuffer(raw, np.uint8)}


def meta_with(change):
    """A damage: change(meta) applied to a copy of the meta."""

    def damage(arrays, meta):
        meta = json.loads(json.dumps(meta))
        change(meta)
        return meta_of(meta)(arrays, meta)

    return damage


def arrays_with(change):
    """A damage: change(arrays) applied to a copy of the arrays."""

    def damage(arrays, meta):
        arrays = dict(arrays)
        change(arrays)
        return arrays

    return damage


NOT_OURS = "not a checkpoint of this trainer"
DAMAGE = {
    "meta a list": (meta_of([1, 2]), f"{NOT_OURS} (a list, not a dict)"),
    "meta not JSON": (meta_of(text="{nope"), f"{NOT_OURS} (Expecting property name"),
    "meta too deep": (meta_of(text="[" * 100_000 + "]" * 100_000), f"{NOT_OURS} ("),
    "meta big int": (meta_of(text='{"seed": ' + "9" * 5000 + "}"), f"{NOT_OURS} ("),
    "no meta": (arrays_with(lambda a: a.pop("meta")), f"{NOT_OURS} (no meta array of JSON"),
    "meta floats": (arrays_with(lambda a: a.update(meta=np.zeros(3))), "(no meta array of"),
    "meta text": (arrays_with(lambda a: a.update(meta=np.array("{}"))), "member meta.npy: "),
    "no state": (meta_with(lambda m: m.pop("state")), f"{NOT_OURS} (no state)"),
    "negative epoch": (meta_with(lambda m: m["state"].update(epoch=-1)), "(state.epoch is not"),
    "seed text": (meta_with(lambda m: m.update(seed="0")), f"{NOT_OURS} (a bad seed)"),
    "other seed": (meta_with(lambda m: m.update(seed=7)), "written with --seed 7, not 0"),
    "schedule keys": (meta_with(lambda m: m.update(scheduler={})), "(scheduler does not have"),
    "schedule lr": (meta_with(lambda m: m["scheduler"].update(lr="x")), "(scheduler.lr is a st"),
    "metrics": (meta_with(lambda m: m.update(metrics=[[1]])), f"{NOT_OURS} (metrics is not a"),
    "model name": (
        meta_with(lambda m: m.update(model_name="E\x1b]0;x\x07")),
        "of E\\x1b]0;x\\x07,",
    ),
    "shape": (arrays_with(lambda a: a.update({"model/00000": np.zeros(2)})), "model variables do"),
    "dtype": (
        arrays_with(lambda a: a.update({"model/00000": a["model/00000"].astype(np.float64)})),
        "the checkpoint's model variables do not match this model",
    ),
    "extra": (arrays_with(lambda a: a.update({"model/99999": np.zeros(1)})), "model variables"),
    "fewer": (arrays_with(lambda a: a.pop("optimizer/00001")), "optimizer variables do not"),
}


def test_a_damaged_checkpoint_is_one_line_and_exit_2(outdir, saved, tmp_path):
    out, arrays, meta = saved
    cases = {}
    for name, (damage, message) in DAMAGE.items():
        cases[name] = (tmp_path / f"{name}.npz", message)
        np.savez(cases[name][0], **damage(arrays, meta))
    np.savez(tmp_path / "objects.npz", meta=np.array([{"code": 1}], dtype=object))
    cases["objects"] = (tmp_path / "objects.npz", "member meta.npy: ")
    (tmp_path / "noise.npz").write_bytes(bytes(range(256)) * 4)
    cases["noise"] = (tmp_path / "noise.npz", "not an .npz file")
    (tmp_path / "cut.npz").write_bytes((out / "last.npz").read_bytes()[:3000])
    cases["cut short"] = (tmp_path / "cut.npz", "")
    with zipfile.ZipFile(tmp_path / "claims.npz", "w") as archive:  # 400 GB in 64 bytes
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }"
        header = header.ljust(117) + "\n"
        npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
        archive.writestr("model/00000.npy", npy + bytes(64))
    cases["claims too much"] = (tmp_path / "claims.npz", "model/00000.npy")
    run = tmp_path / "run"
    argvs = [[*TINY, "--out", run, "--resume", path] for path, _ in cases.values()]
    for (name, (path, message)), result in zip(
        cases.items(), main_calls(outdir, argvs), strict=True
    ):
        line = one_error_line(result)
        assert line.startswith(f"error: {path}: ") and message in line, (name, line)
    assert sorted(p.name for p in run.iterdir()) == [".lock"]
