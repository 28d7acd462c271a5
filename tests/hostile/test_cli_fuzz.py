"""End-to-end fuzz of the whole CLI: mutated specs through `check`, `shapes --format json` and
`compile` for both backends, each compiled model.py imported (and, for cheap models, built and
run); mutated flags through both trainers.

Spec mutants come from tests/core/test_front_end_properties.py (hypothesis, derandomised). The
CLI runs in this process (archdsl.cli.main, streams captured, CASE_SECONDS per command); the
models of a backend are imported in one subprocess per batch, the trainers' flags run through
train.main() in one subprocess per backend. Every case: no traceback, no hang past
CASE_SECONDS, exit codes that agree (`compile` fails exactly when `check` reports an error),
one printable line for a usage error, no raw control character in what is printed.
Default run: SPEC_CASES specs and FLAG_CASES flag sets per backend; `-m slow`: SLOW_SPEC_CASES
(10,000) specs, thousands of models imported per framework, and SLOW_FLAG_CASES flag sets per
backend.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import signal
import traceback
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from core_helpers import SHIPPED_SPECS
from hostile_harness import (
    CASE_SECONDS,
    QUICK,
    Untouched,
    image_folder,
    python,
    refused_in_process,
    train_main_calls,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from test_front_end_properties import DETERMINISTIC, mutants, mutation

from archdsl.cli import main

BACKENDS = ("torch", "keras")
SPEC_CASES = 60
SLOW_SPEC_CASES = 10_000
FLAG_CASES = 8
SLOW_FLAG_CASES = 500
MODEL_BATCH = 800  # models imported per subprocess
# a compiled model this small is also built, given a zero batch and its output shape checked
CHEAP_PARAMS, CHEAP_MACS = 2_000_000, 200_000_000
# at most this many builds per backend (default run, slow run): a Keras build takes ~0.4 s
BUILDS = {"torch": (8, SLOW_SPEC_CASES), "keras": (6, 400)}


class Hang(BaseException):
    """A case ran past CASE_SECONDS (a BaseException: no `except OSError` swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise Hang in this (main) thread after `seconds`."""

    def alarm(signum, frame):
        raise Hang(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    """What one in-process `archdsl` command did."""

    code: int | None
    out: str
    err: str
    crash: str | None


def cli(*argv) -> Outcome:
    """archdsl.cli.main(argv) with stdout and stderr captured, under CASE_SECONDS."""
    out, err, crash = io.StringIO(), io.StringIO(), None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            with time_limit(CASE_SECONDS):
                code = main([str(a) for a in argv])
        except SystemExit as stop:
            code = stop.code
        except BaseException:  # a traceback or a Hang: what the fuzz looks for
            code, crash = None, traceback.format_exc()
    return Outcome(code, out.getvalue(), err.getvalue(), crash)


def raw_controls(text: str) -> list[str]:
    """The control characters (but newline) and lone surrogates printed raw in `text`."""
    return [c for c in set(text) if c != "\n" and unicodedata.category(c) in ("Cc", "Cs")]


def assert_sound(outcome: Outcome, text: str, *codes: int) -> None:
    """No crash, an expected exit code, nothing unprintable, one line for a usage error."""
    where = f"spec {text[:300]!r}"
    assert outcome.crash is None, f"{where}\n{outcome.crash}"
    assert outcome.code in codes, (where, outcome)
    assert not raw_controls(outcome.out + outcome.err), (where, outcome)
    if outcome.code == 2:
        assert len(outcome.err.splitlines()) == 1, (where, outcome.err)


# ----------------------------------------------------------------------------- specs


@dataclass
class SpecRun:
    """Mutated specs through the CLI; the model.py files compiled from them, by backend."""

    work: Path
    cases: int = 0
    models: dict = field(default_factory=lambda: {b: [] for b in BACKENDS})
    built: dict = field(default_factory=lambda: dict.fromkeys(BACKENDS, 0))

    def run(self, text: str) -> None:
        """One mutant through check, shapes --format json and compile for both backends."""
        case = self.cases
        self.cases += 1
        spec = self.work / f"case{case}.arch"
        spec.write_text(text, encoding="utf-8")
        check = cli("check", spec)
        assert_sound(check, text, 0, 1)
        shapes = cli("shapes", "--format", "json", spec)
        assert_sound(shapes, text, check.code)
        report = json.loads(shapes.out)
        cheap = check.code == 0 and (
            report["total_params"] <= CHEAP_PARAMS and report["total_macs"] <= CHEAP_MACS
        )
        for backend in BACKENDS:
            out = self.work / f"{backend}{case}"
            compiled = cli("compile", spec, "--backend", backend, "-o", out)
            assert_sound(compiled, text, check.code)  # `check` clean <=> it compiles
            if compiled.code == 0:
                model = self.work / backend / f"model{case}.py"
                (out / "model.py").rename(model)
                self.models[backend].append((model, cheap, text))
            shutil.rmtree(out, ignore_errors=True)


# the shipped specs small enough to build: without them few mutants would be (hypothesis draws
# mostly mutants of the first specs, the AlexNets, in a short run)
SMALL_SOURCES = [
    p.read_text(encoding="utf-8") for p in SHIPPED_SPECS if p.stem in ("lenet5", "mini_alexnet")
]


@st.composite
def small_mutants(draw) -> str:
    """One to four random edits (test_front_end_properties.mutation) of a small shipped spec."""
    text = draw(st.sampled_from(SMALL_SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        text = draw(mutation(text))
    return text


def run_specs(work: Path, count: int) -> SpecRun:
    """`count` mutants of the shipped specs through the CLI (hypothesis shrinks a failure)."""
    runs = SpecRun(work)
    for backend in BACKENDS:
        (work / backend).mkdir(parents=True)

    @settings(max_examples=count, **DETERMINISTIC)
    @given(st.one_of(mutants(), small_mutants()))
    def through_the_cli(text):
        runs.run(text)

    through_the_cli()
    return runs


# model.py files (JSON [[path, build], ...] on stdin) imported one by one in one process, each
# under an alarm; a cheap one also built, with its optimizer and schedule, and run on zeros.
MODEL_DRIVER = """
import importlib.util, json, signal, sys, traceback

class Hang(BaseException):
    pass

def alarm(signum, frame):
    raise Hang("over {limit} s")

if sys.argv[1] == "torch":
    import torch

    def run(module):
        net = module.build_model().eval()
        module.build_scheduler(module.build_optimizer(net))
        with torch.no_grad():
            return tuple(net(example(module, torch.ones, torch.long)).shape[1:])
else:
    import keras

    def run(module):
        net = module.build_model()
        module.build_scheduler(module.build_optimizer(net))
        shape = tuple(net(example(module, keras.ops.ones, "int32")).shape[1:])
        keras.backend.clear_session()
        return shape

# one input: a text model's token ids (id 1, a real token), else an image of ones
def example(module, ones, ids):
    shape = (1, *module.INPUT_SHAPE)
    return ones(shape, dtype=ids) if getattr(module, "INPUT_VOCAB", None) else ones(shape)

signal.signal(signal.SIGALRM, alarm)
results = []
for i, (path, build) in enumerate(json.load(sys.stdin)):
    problem = None
    signal.alarm({limit})
    try:
        spec = importlib.util.spec_from_file_location(f"fuzzed_model_{{i}}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if build:
            shape = run(module)
            if shape != tuple(module.OUTPUT_SHAPE):
                problem = f"output shape {{shape}}, OUTPUT_SHAPE {{module.OUTPUT_SHAPE}}"
    except BaseException:
        problem = traceback.format_exc()
    signal.alarm(0)
    results.append(problem)
print(json.dumps(results))
"""


def import_models(backend: str, runtime: Path, models: list, builds: int) -> tuple[list, int]:
    """Import every model.py, building the first `builds` cheap ones: (the problems found, how
    many were built)."""
    problems, built = [], 0
    plan = []
    for path, cheap, text in models:
        build = cheap and built < builds
        built += build
        plan.append((str(path), build, text))
    for start in range(0, len(plan), MODEL_BATCH):
        batch = plan[start : start + MODEL_BATCH]
        request = json.dumps([[path, build] for path, build, _ in batch]).encode()
        timeout = 120 + CASE_SECONDS * len(batch)
        driver = MODEL_DRIVER.format(limit=CASE_SECONDS)
        done = python("-c", driver, backend, cwd=runtime, timeout=timeout, input=request)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
        results = json.loads(done.stdout.splitlines()[-1])
        for (path, build, text), problem in zip(batch, results, strict=True):
            if problem:
                problems.append(f"{backend} {path} (built: {build}) from {text[:300]!r}\n{problem}")
    return problems, built


def fuzz_specs(work: Path, builds: dict, count: int, slow: bool) -> SpecRun:
    """Mutants through the CLI, then their models through both frameworks."""
    runs = run_specs(work, count)
    problems = []
    for backend in BACKENDS:
        models = runs.models[backend]
        found, runs.built[backend] = import_models(
            backend, builds[backend], models, BUILDS[backend][slow]
        )
        problems += found
    assert not problems, "\n\n".join(problems[:5])
    return runs


def test_mutated_specs_through_the_cli_and_both_frameworks(tmp_path, builds):
    runs = fuzz_specs(tmp_path, builds, SPEC_CASES, slow=False)
    assert runs.cases == SPEC_CASES
    assert min(len(m) for m in runs.models.values()) >= SPEC_CASES // 4  # many still compile
    cheap = {backend: sum(c for _, c, _ in runs.models[backend]) for backend in BACKENDS}
    assert runs.built == {b: min(BUILDS[b][False], cheap[b]) for b in BACKENDS}
    assert min(runs.built.values()) >= 4  # enough of them built and ran


# ----------------------------------------------------------------------------- trainer flags

COUNTS = ["0", "-1", "1", "2", "3", "", "x", "1.5", "nan", "1e3", "9" * 25, "\u0663", " 2 "]
COUNTS += ["+2", "0x10", "\x1b[2J", "-0", "1_0"]
BIG = "999999999999"  # valid, but not for --epochs or --max-steps: that run would not end
LRS = ["-1", "0", "nan", "inf", "-inf", "1e-9", "1e308", "1e309", "0.1", "", "1e", "\x1b"]
LRS += ["-0.0", "1_0", "infinity"]
DEVICES = {
    "torch": ["0", "1", "2", "cpu", "cpu,cpu", "cuda:0", "meta", "", "-1", "99999999999"],
    "keras": ["0", "1", "-1", "65", "x", ""],  # more replicas: once per process, not per call
}
SWITCHES = {
    "torch": ["--ten-crop", "--amp", "--channels-last", "--resume"],
    "keras": ["--ten-crop", "--channels-last", "--resume"],  # --amp stays set for the process
}
MANGLED = ["--l", "--LR", "-lr", "\u2014lr", "--max-step", "--max_steps", "--", "-", "extra"]
MANGLED += ["--epochs=", "--=1", "--out-dir"]
FIXED = ("--out", "--max-steps")  # kept, so that every run is short and stays in its folder


def flag_values(backend: str, root: Path) -> dict[str, list[str]]:
    """{flag: the values a mutation may give it} (paths in root)."""
    values = {flag: COUNTS for flag in QUICK[::2]}
    values.update(
        {
            "--synthetic-per-class": [*COUNTS, BIG],
            "--batch-size": [*COUNTS, BIG],
            "--save-every": [*COUNTS, BIG],
            "--seed": [*COUNTS, BIG, "4294967295", "4294967296"],
            "--lr": LRS,
            "--device": ["auto", "cpu", "cuda", "", "CPU", "tpu"],
            "--devices": DEVICES[backend],
            "--resume": ["", "/dev/zero", "absent.pt", str(root)],
            "--data": ["/dev/zero", "", "absent", str(root / "images")],
            "--out": [str(root / "afile"), str(root / "afile" / "run"), "/proc/archdsl-fuzz"],
        }
    )
    return values


def mutated_flags(rng: random.Random, argv: list[str], values: dict, switches: list) -> list:
    """argv with one to three random edits: a value replaced, dropped or added, a flag pair
    removed, a switch or a mangled flag added."""
    argv = list(argv)
    for _ in range(rng.randint(1, 3)):
        flags = [i for i, a in enumerate(argv) if a in values and i + 1 < len(argv)]
        movable = [i for i in flags if argv[i] not in FIXED]
        kind = rng.choice(["replace", "drop", "add", "equals", "pair", "switch", "mangle"])
        flag = rng.choice(sorted(values))
        if kind == "replace" and flags:
            i = rng.choice(flags)
            argv[i + 1] = rng.choice(values[argv[i]])
        elif kind == "drop" and movable:
            del argv[rng.choice(movable) + 1]
        elif kind == "pair" and movable:
            i = rng.choice(movable)
            del argv[i : i + 2]
        elif kind == "equals":
            argv.append(f"{flag}={rng.choice(values[flag])}")
        elif kind == "switch":
            argv.append(rng.choice(switches))
        elif kind == "mangle":
            argv += [rng.choice(MANGLED), rng.choice(values[flag])]
        else:
            argv += [flag, rng.choice(values[flag])]
    return argv


def flag_cases(backend: str, root: Path, count: int, seed: int) -> list[list[str]]:
    """A first, plain run into root/resumed, then `count` mutated flag sets: a third of them
    resume root/resumed, the others run in a folder of their own."""
    rng = random.Random(f"{backend}-{seed}")
    image_folder(root / "images")
    (root / "afile").write_text("mine")
    values = flag_values(backend, root)
    argvs = [[*QUICK, "--out", str(root / "runs" / "resumed")]]
    for case in range(count):
        resume = rng.random() < 1 / 3
        out = root / "runs" / ("resumed" if resume else f"case{case}")
        base = [*QUICK, "--out", str(out), *(["--resume"] if resume else [])]
        argvs.append(mutated_flags(rng, base, values, SWITCHES[backend]))
    return argvs


def fuzz_flags(backend: str, root: Path, builds: dict, count: int, seed: int) -> list[dict]:
    """Mutated flags through one backend's train.main(); every result sound, nothing outside
    the run folders changed."""
    argvs = flag_cases(backend, root, count, seed)
    watch = Untouched(root, root / "runs").start()
    results = train_main_calls(builds[backend], argvs)
    assert watch.changes() == []
    first, *rest = results
    assert first["code"] == 0, first
    for argv, result in zip(argvs[1:], rest, strict=True):
        assert result["crash"] is None, (argv, result["crash"])
        assert result["code"] in (0, 2), (argv, result)
        assert not raw_controls(result["stdout"] + result["stderr"]), (argv, result)
        if result["code"] == 2:
            refused_in_process(result)
    return rest


@pytest.mark.parametrize("backend", BACKENDS)
def test_mutated_trainer_flags(tmp_path, builds, backend):
    results = fuzz_flags(backend, tmp_path, builds, FLAG_CASES, seed=0)
    assert len(results) == FLAG_CASES


# ----------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_ten_thousand_mutated_specs_through_the_cli_and_both_frameworks(tmp_path, builds):
    runs = fuzz_specs(tmp_path, builds, SLOW_SPEC_CASES, slow=True)
    assert runs.cases == SLOW_SPEC_CASES
    assert min(len(m) for m in runs.models.values()) >= 2_000  # imported in each framework
    assert runs.built["torch"] >= 1_000 and runs.built["keras"] == BUILDS["keras"][True]
    compiled = {backend: len(models) for backend, models in runs.models.items()}
    print(f"{runs.cases} specs; compiled and imported: {compiled}; built and run: {runs.built}")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_many_mutated_trainer_flags(tmp_path, builds, backend):
    results = fuzz_flags(backend, tmp_path, builds, SLOW_FLAG_CASES, seed=1)
    assert len(results) == SLOW_FLAG_CASES
    trained = sum(result["code"] == 0 for result in results)
    print(f"{backend}: {SLOW_FLAG_CASES} flag sets, {trained} trained, the others refused")
