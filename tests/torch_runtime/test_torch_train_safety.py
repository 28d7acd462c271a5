"""train.py against hostile and careless input: flags, run folders, checkpoints, the model.

Each case ends in one line on stderr and exit status 2, before any training step, and changes
nothing outside the run's own folder. Many cases run through train.main() in one subprocess
(DRIVER) to pay for the torch import once.
"""

import json
import os
import signal
import sys
import time

import pytest

torch = pytest.importorskip("torch")

TINY = ("--synthetic-per-class", 2, "--workers", 0)
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


@pytest.fixture(scope="module")
def main_calls(outdir, run_command):
    """calls([argv, ...]) -> [{code, stdout, stderr}] of train.main(argv), in one process."""

    def calls(argvs):
        argvs = [[str(a) for a in argv] for argv in argvs]
        cmd = [sys.executable, "-c", DRIVER, json.dumps(argvs)]
        done = run_command(cmd, outdir, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    return calls


def one_error_line(result):
    """The single stderr line of a run that must have failed with exit status 2."""
    lines = result["stderr"].splitlines()
    assert result["code"] == 2 and len(lines) == 1, result
    return lines[0]


# ----------------------------------------------------------------------------- flags

BAD_FLAGS = {
    ("--batch-size", "0"): "--batch-size: expected an integer >= 1, not '0'",
    ("--batch-size", "-4"): "--batch-size: expected an integer >= 1, not '-4'",
    ("--lr", "-1"): "--lr: expected a finite number > 0, not '-1'",
    ("--lr", "0"): "--lr: expected a finite number > 0, not '0'",
    ("--lr", "nan"): "--lr: expected a finite number > 0, not 'nan'",
    ("--lr", "inf"): "--lr: expected a finite number > 0, not 'inf'",
    ("--lr", "fast"): "--lr: expected a finite number > 0, not 'fast'",
    ("--seed", "-1"): "--seed: expected an integer from 0 to 4294967295, not '-1'",
    ("--seed", "4294967296"): "--seed: expected an integer from 0 to 4294967295",
    ("--workers", "-1"): "--workers: expected an integer from 0 to 256, not '-1'",
    ("--workers", "100000"): "--workers: expected an integer from 0 to 256",
    ("--synthetic-per-class", "0"): "--synthetic-per-class: expected an integer >= 1",
    ("--epochs", "0"): "--epochs: expected an integer >= 1, not '0'",
    ("--epochs", "9" * 5000): "--epochs: expected an integer >= 1, not '9999",
    ("--max-steps", "0"): "--max-steps: expected an integer >= 1, not '0'",
    ("--save-every", "-1"): "--save-every: expected an integer >= 0, not '-1'",
    ("--devices", "0"): "--devices: expected at least one device and at most 64, not '0'",
    ("--devices", "-1"): "--devices: expected at least one device and at most 64",
    ("--devices", "99999999999"): "--devices: expected at least one device and at most 64",
    ("--devices", "gpu0,cpu"): "--devices: 'gpu0' is not a device (cpu, cuda:1)",
    ("--devices", "cpu,,cpu"): "--devices: '' is not a device",
    ("--devices", "meta"): "--devices: this trainer runs on cpu and cuda, not 'meta'",
    ("--lr", "\x1b[2J"): "--lr: expected a finite number > 0, not '\\x1b[2J'",
    ("--prefetch-factor", "0"): "--prefetch-factor: expected an integer from 1 to 64, not '0'",
    ("--decode", "tpu"): "--decode: invalid choice: 'tpu'",
}


EDGE_FLAGS = ("--seed", 2**32 - 1, "--lr", "1e-9", "--save-every", 0, "--max-steps", 1)


def unusable_outs(folder):
    """{case: an --out in folder (or in /proc) the trainer cannot write into}."""
    (folder / "a_file").write_text("mine")
    outs = {
        "a file": folder / "a_file",
        "under a file": folder / "a_file" / "run",
        "in /proc": "/proc/archdsl-run",
    }
    if os.geteuid() != 0:  # root writes into read-only folders
        (folder / "read_only").mkdir(mode=0o555)
        outs["read-only folder"] = folder / "read_only" / "run"
    return outs


@pytest.fixture(scope="module")
def results(main_calls, tmp_path_factory):
    """main()'s results: {"flags": {BAD_FLAGS key: result}, "edge": result of EDGE_FLAGS,
    "huge": of a synthetic set too large, "outs": {case: (unusable --out, result)}, "folder":
    where the outs are}."""
    folder = tmp_path_factory.mktemp("outs")
    outs = unusable_outs(folder)
    argvs = [
        *BAD_FLAGS,
        [*TINY, *EDGE_FLAGS, "--out", folder / "edge"],
        [*TINY, "--synthetic-per-class", 10**12, "--out", folder / "huge"],
        *([*TINY, "--out", out] for out in outs.values()),
    ]
    found = main_calls(argvs)
    flags, (edge, huge), out_results = (
        found[: len(BAD_FLAGS)],
        found[len(BAD_FLAGS) : len(BAD_FLAGS) + 2],
        found[-len(outs) :],
    )
    return {
        "flags": dict(zip(BAD_FLAGS, flags, strict=True)),
        "edge": edge,
        "huge": huge,
        "outs": {c: (o, r) for (c, o), r in zip(outs.items(), out_results, strict=True)},
        "folder": folder,
    }


@pytest.mark.parametrize("flags", list(BAD_FLAGS))
def test_a_bad_flag_is_one_line_and_exit_2(results, flags):
    line = one_error_line(results["flags"][flags])
    assert line.startswith("-c: error: argument ") and line.endswith(" (see --help)")
    assert BAD_FLAGS[flags] in line
    assert "\x1b" not in line


def test_negative_lr_through_the_command_line(run_train, tmp_path):
    result = run_train(*TINY, "--lr", "-1", "--out", tmp_path / "run")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "train.py: error: argument --lr: expected a finite number > 0, not '-1' (see --help)\n"
    )
    assert not (tmp_path / "run").exists()


def test_edge_values_of_the_flags_train(results):
    assert results["edge"]["code"] == 0, results["edge"]
    assert "from epoch 1, step 0" in results["edge"]["stdout"]


def test_a_synthetic_set_too_large_is_refused(results):
    assert one_error_line(results["huge"]) == (
        "error: --synthetic-per-class 1000000000000: 10,000,000,000,000 images of 10 classes; "
        "at most 10,000,000 (pass --data DIR for more)"
    )


# ----------------------------------------------------------------------------- the model


def test_a_model_that_outputs_a_map_is_refused(assemble_into, run_command, tmp_path):
    source = (assemble_into(tmp_path / "base") / "model.py").read_text()
    assert "OUTPUT_SHAPE = (10,)\n" in source
    model = tmp_path / "map_model.py"
    model.write_text(source.replace("OUTPUT_SHAPE = (10,)\n", "OUTPUT_SHAPE = (10, 4, 4)\n"))
    directory = assemble_into(tmp_path / "map", model)
    cmd = [sys.executable, "train.py", *map(str, TINY), "--out", "run"]
    result = run_command(cmd, directory)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "error: the model outputs a map of shape (10, 4, 4); the classification trainer "
        "needs a vector of class scores (hint: end the spec with global_avgpool |> flatten "
        "|> dense(N))\n"
    )
    assert not (directory / "run").exists()


# ----------------------------------------------------------------------------- run folder


@pytest.mark.parametrize("case", ["a file", "under a file", "in /proc", "read-only folder"])
def test_an_unusable_out_is_an_error_before_training(results, case):
    if case not in results["outs"]:
        pytest.skip("root writes into read-only folders")
    out, result = results["outs"][case]
    line = one_error_line(result)
    assert line.startswith(f"error: --out {out}: cannot write the run there (")
    assert line.endswith("); pass another --out") and result["stdout"] == ""
    if case == "a file":
        assert "(a file, not a folder)" in line
        assert (results["folder"] / "a_file").read_text() == "mine"


def wait_for_lock(out, proc, timeout=120):
    """Block until proc holds the lock of its run folder (its pid is in OUT/.lock)."""
    deadline = time.monotonic() + timeout
    lock = out / ".lock"
    while not (lock.exists() and lock.read_text().strip() == str(proc.pid)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_second_run_on_a_busy_folder_exits_2(start_train, run_train, tmp_path):
    out = tmp_path / "run"
    first = start_train("--synthetic-per-class", 50, "--epochs", 50, "--workers", 0, "--out", out)
    try:
        wait_for_lock(out, first)
        unfinished = out / ".last.pt.abcd1234.tmp"  # the first run's save in progress
        unfinished.write_bytes(b"half")
        second = run_train(*TINY, "--out", out, "--resume")
        assert second.returncode == 2 and second.stdout == ""
        assert second.stderr == (
            f"error: --out {out}: the run folder is in use by another training "
            f"(pid {first.pid}); wait for it to end or pass another --out\n"
        )
        assert unfinished.read_bytes() == b"half"
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()


def test_two_runs_on_their_own_folders_both_finish(start_train, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [
        start_train(*TINY, "--max-steps", 2, "--seed", seed, "--out", out)
        for seed, out in enumerate(runs)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr
    a, b = (torch.load(out / "last.pt", weights_only=True) for out in runs)
    assert a["args"]["seed"] == 0 and b["args"]["seed"] == 1
    assert not torch.equal(a["model"]["fc.weight"], b["model"]["fc.weight"])
    assert (runs[0] / "metrics.csv").read_text() != (runs[1] / "metrics.csv").read_text()


def test_unfinished_saves_are_removed_at_start(run_train, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    stale = [".last.pt.abcd1234.tmp", ".metrics.csv.k2_j9xq1.tmp", ".metrics.png.zzzzzzzz.tmp"]
    kept = [".last.pt.keep", "last.pt.abcd1234.tmp", ".notes.abcd1234.tmp", "mine.tmp"]
    for name in stale + kept:
        (out / name).write_text("x")
    beside = tmp_path / ".last.pt.abcd1234.tmp"  # outside the run folder
    beside.write_text("x")
    result = run_train(*TINY, "--max-steps", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    left = {p.name for p in out.iterdir()}
    assert left == {*kept, ".lock", "last.pt", "metrics.csv", "metrics.png", "tensorboard"}
    assert beside.exists()


# ----------------------------------------------------------------------------- checkpoints


class RunsCode:
    """Unpickling this object creates a file: what a crafted checkpoint could do."""

    def __init__(self, call, *args):
        """The call that unpickling makes."""
        self.call, self.args = call, args

    def __reduce__(self):
        """Ask pickle to call self.call(*self.args)."""
        return self.call, self.args


def test_resume_never_runs_code_from_a_checkpoint(run_train, tmp_path):
    out, victim = tmp_path / "run", tmp_path / "created_by_the_checkpoint"
    out.mkdir()
    torch.save({"model_name": RunsCode(open, str(victim), "w")}, out / "last.pt")
    result = run_train(*TINY, "--out", out, "--resume")
    assert not victim.exists()
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {out / 'last.pt'}: refused to load")


@pytest.fixture(scope="module")
def saved(run_train, tmp_path_factory):
    """A real checkpoint after one step (loaded without pickle's code)."""
    out = tmp_path_factory.mktemp("saved")
    result = run_train(*TINY, "--max-steps", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["optimizer"]["state"]  # momentum buffers to damage
    return out / "last.pt", ckpt


def edit(change):
    """A function of a checkpoint that returns a copy of it that change(copy) damaged."""

    def damaged(ckpt):
        ckpt = dict(ckpt)
        change(ckpt)
        return ckpt

    return damaged


def nested(path, value):
    """edit() that sets ckpt[path[0]][path[1]]... to value (copying the dicts on the way)."""

    def change(ckpt):
        node = ckpt
        for key in path[:-1]:
            node[key] = dict(node[key]) if isinstance(node[key], dict) else node[key]
            node = node[key]
        node[path[-1]] = value

    return edit(change)


def damaged_momentum(ckpt):
    """The checkpoint with a momentum buffer of the wrong shape."""
    state = {i: {**s, "momentum_buffer": torch.zeros(2)} for i, s in ckpt["optimizer"]["state"].items()}  # fmt: skip
    return {**ckpt, "optimizer": {**ckpt["optimizer"], "state": state}}


NOT_OURS = "not a checkpoint of this trainer"
DAMAGE = {
    "a list": (lambda c: [1, 2], f"{NOT_OURS} (a list, not a dict)"),
    "a tensor": (lambda c: torch.zeros(3), f"{NOT_OURS} (a Tensor, not a dict)"),
    "no state": (edit(lambda c: c.pop("state")), f"{NOT_OURS} (no state)"),
    "negative epoch": (nested(["state", "epoch"], -1), "(state.epoch is not an integer >= 0)"),
    "epoch as text": (nested(["state", "epoch"], "1"), "(state.epoch is not an integer >= 0)"),
    "epoch past 2**63": (nested(["state", "global_step"], 2**70), "(state.global_step is"),
    "state a list": (nested(["state"], [0, 0, 0]), "(state is not a dict of epoch, batches_"),
    "negative seen": (nested(["train_seen"], -1), "(train_seen or train_loss_sum is not a"),
    "loss sum text": (nested(["train_loss_sum"], "0"), "(train_seen or train_loss_sum is not"),
    "model name": (nested(["model_name"], 7), f"{NOT_OURS} (model_name is not a string)"),
    "another model": (nested(["model_name"], "Other\x1b[31m"), "of Other\\x1b[31m, not TinyNet"),
    "metrics rows": (nested(["metrics"], [{"epoch": 1}]), f"{NOT_OURS} (metrics is not a list"),
    "metrics text": (nested(["metrics"], "rows"), f"{NOT_OURS} (metrics is not a list"),
    "schedule value": (nested(["scheduler", "best"], "x"), "(scheduler.best is a str, not a"),
    "schedule list": (nested(["scheduler"], [1]), "(scheduler is a list, not a dict)"),
    "schedule keys": (nested(["scheduler", "optimizer"], 1), "(scheduler does not have the e"),
    "model a list": (nested(["model"], [1]), f"{NOT_OURS} (model is not a dict of tensors)"),
    "model shape": (nested(["model", "fc.bias"], torch.zeros(3)), "does not fit this model (siz"),
    "model text": (nested(["model", "fc.bias"], "x"), "checkpoint does not fit this model"),
    "optimizer": (nested(["optimizer"], 5), "(optimizer is not a dict of state and param_gr"),
    "param groups": (nested(["optimizer", "param_groups"], []), "does not fit this model (lo"),
    "momentum": (damaged_momentum, "(optimizer buffer momentum_buffer does not fit its param"),
    "scaler": (nested(["scaler"], torch.zeros(2)), f"{NOT_OURS} (scaler is not a dict)"),
    "rng": (nested(["rng"], []), f"{NOT_OURS} (rng is not a dict of python, numpy, torch, c"),
    "python rng": (nested(["rng", "python"], 5), f"{NOT_OURS} (damaged random states: "),
    "numpy rng": (nested(["rng", "numpy"], {"state": 1}), f"{NOT_OURS} (damaged random stat"),
    "torch rng": (nested(["rng", "torch"], torch.zeros(3)), f"{NOT_OURS} (damaged random sta"),
}
RAW = {  # bytes of the file, from the bytes of a real checkpoint
    "empty": (lambda data: b"", "unreadable checkpoint ("),
    "cut short": (lambda data: data[:5000], "unreadable checkpoint ("),
    "random bytes": (lambda data: bytes(range(256)) * 4, "unreadable checkpoint ("),
}


def test_a_damaged_checkpoint_is_one_line_and_exit_2(saved, main_calls, tmp_path):
    path, ckpt = saved
    cases = {}
    for name, (damage, message) in DAMAGE.items():
        cases[name] = (tmp_path / f"{name}.pt", message)
        torch.save(damage(ckpt), cases[name][0])
    for name, (damage, message) in RAW.items():
        cases[name] = (tmp_path / f"{name}.pt", message)
        cases[name][0].write_bytes(damage(path.read_bytes()))
    victim = tmp_path / "created_by_the_checkpoint"
    cases["runs a command"] = (
        tmp_path / "command.pt",
        "refused to load: it asks to run code",
    )
    torch.save({"x": RunsCode(os.system, f"touch {victim}")}, cases["runs a command"][0])
    out = tmp_path / "run"
    results = main_calls([[*TINY, "--out", out, "--resume", p] for p, _ in cases.values()])
    for (name, (case, message)), result in zip(cases.items(), results, strict=True):
        line = one_error_line(result)
        assert line.startswith(f"error: {case}: ") and message in line, (name, line)
        assert result["stdout"] == "", name
    assert not (out / "metrics.csv").exists() and not (out / "last.pt").exists()
    assert not victim.exists()
