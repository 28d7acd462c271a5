"""The comparisons: each spec through the tracker and the front end, then (valid ones) both
compiled models in their driver processes; a failing spec shrunk to a minimal one.

Front end (no framework): the tracker's verdict against `check` (a valid spec has no error; an
invalid one gets the predicted code at the predicted line), and for valid specs every layer's
shape and parameters against `archdsl shapes --format json` (check_source + as_data, in this
process), the weights layout against `archdsl weights`, W103 against the unused statements.

Frameworks (valid specs): both backends compiled (conform.compile_spec); the PyTorch driver
builds, calibrates and runs; the Keras driver loads PyTorch's weights and runs; PyTorch runs
the weights Keras changed and saved. Compared: the outputs (maps in N, C, H, W; vectors as
each framework gives them: the spec's C, H, W order) to conform.INFERENCE_RTOL of the largest
magnitude, every statement's output, the parameters of each framework against the report
(in total and per statement), PyTorch's weights file against `archdsl weights`, Keras's save
of PyTorch's file (the same tensors), and the reverse trip.
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import conform
import numpy as np

from archdsl.compiler import check_source
from archdsl.report_format import as_data
from archdsl.weights import expected_tensors

from . import generator, mutations, shrink, tracker
from .drivers import Driver
from .spec import Spec

FILE = "fuzz.arch"
RTOL = conform.INFERENCE_RTOL
# Two float32 implementations of a spec agree to RTOL of the largest value, or to NOISE times
# the spec's own float32 noise (PyTorch in float32 against PyTorch in float64), whichever is
# larger: calibration (outputs of std 8 after every conv and dense, a saturated relu6 or
# sigmoid before the next) makes a few random specs amplify rounding past RTOL (PyTorch's own
# noise up to 1e-4 there). Measured over 1,300 specs: Keras-vs-PyTorch at most 8.4 times that
# noise; the bugs found differ by 0.1-1 of the largest value where the noise is 1e-7.
NOISE = 30
# A spec whose float32 noise exceeds this somewhere (a dense layer fed by a saturated sigmoid,
# whose inputs vary only by rounding, rescaled to std 8 by calibration) computes rounding, not
# its spec: the frameworks cannot be compared on it, and it is counted as skipped.
NOISE_LIMIT = 1e-3
FRONT_END_KINDS = ("accepted", "wrong-code", "wrong-line", "rejected", "layers", "shape:")
FRONT_END_KINDS += ("params:", "tensors", "W103")


@dataclass
class Disagreement:
    """What disagrees: `kind` (kept while shrinking) and the details."""

    kind: str
    detail: str

    def __str__(self) -> str:
        """`[kind] detail`."""
        return f"[{self.kind}] {self.detail}"


@dataclass
class Case:
    """One spec and everything learned about it."""

    label: str
    spec: Spec
    text: str = ""
    lines: dict = field(default_factory=dict)
    prediction: tracker.Prediction | None = None
    report: dict | None = None
    checked: object = None
    tensors: dict = field(default_factory=dict)  # `archdsl weights`: the portable layout
    disagreements: list = field(default_factory=list)
    skipped: str | None = None  # why the frameworks did not judge it (degenerate numbers)
    notes: list = field(default_factory=list)  # numbers behind `skipped`
    directory: Path | None = None
    worst: float = 0.0  # the largest relative difference between the frameworks
    ran: bool = False  # both frameworks ran it
    widened: bool = False  # passed only with a tolerance its float32 noise widened

    @property
    def runnable(self) -> bool:
        """Valid for the tracker and accepted by `check`: the frameworks run it (even where the
        tracker and `shapes` disagree, the frameworks are compared with `shapes`)."""
        return self.prediction is not None and self.prediction.valid and self.report is not None


@dataclass
class Failure:
    """A disagreement, the spec it showed in, and the minimal spec that still shows it."""

    label: str
    disagreement: Disagreement
    minimal: str
    minimal_disagreement: Disagreement
    tried: int
    also: list = field(default_factory=list)  # other specs with the same kind

    def message(self) -> str:
        """The minimal spec and its disagreement, as a test failure prints it."""
        lines = [
            f"{self.disagreement.kind}: {self.label}, shrunk to (tried {self.tried} candidates):",
            *(f"    {line}" for line in self.minimal.rstrip().splitlines()),
            f"  {self.minimal_disagreement.detail}",
        ]
        if self.also:
            also = list(dict.fromkeys(self.also))
            lines.append(f"  (the same kind also in: {', '.join(also[:8])})")
        return "\n".join(lines)


@dataclass
class Summary:
    """What a run did."""

    specs: int = 0
    ran: int = 0  # valid specs both frameworks ran
    invalid: int = 0  # specs the tracker called invalid (checked against `check`)
    skipped: Counter = field(default_factory=Counter)
    skipped_examples: dict = field(default_factory=dict)  # reason -> the first few labels
    ops: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    worst: float = 0.0
    widened: int = 0  # specs that passed only with a tolerance their float32 noise widened
    seconds: float = 0.0
    failures: list = field(default_factory=list)

    def text(self) -> str:
        """The summary and every failure."""
        lines = [
            f"{self.specs} specs in {self.seconds:.1f} s: {self.ran} run in PyTorch and Keras "
            f"(worst relative difference {self.worst:.1e}), {self.invalid} invalid ones checked "
            f"({dict(sorted(self.codes.items()))})",
        ]
        ops = ", ".join(f"{op} {n}" for op, n in self.ops.most_common())
        lines.append(f"layers of the valid specs: {ops}")
        if self.widened:
            lines.append(f"{self.widened} passed within {NOISE} x their float32 noise, past RTOL")
        for reason, count in self.skipped.items():
            lines.append(
                f"skipped {count}: {reason}, e.g. {', '.join(self.skipped_examples[reason])}"
            )
        lines.append(f"{len(self.failures)} disagreement(s)")
        return "\n".join(lines + [f.message() for f in self.failures])


# ----------------------------------------------------------------------------- front end


def front_end(label: str, spec: Spec) -> Case:
    """The tracker against `check` / `shapes` (no framework)."""
    case = Case(label, spec)
    case.text, case.lines = spec.render()
    case.prediction = tracker.predict(spec)
    case.checked = check_source(case.text, FILE)
    errors = [d for d in case.checked.diagnostics if d.severity == "error"]
    if not case.prediction.valid:
        case.disagreements = rejection(case.prediction.error, errors, case.lines)
        return case
    if errors:
        found = "; ".join(describe(d) for d in errors)
        case.disagreements = [Disagreement(f"rejected:{errors[0].code}", f"check refuses: {found}")]
        return case
    case.report = as_data(case.checked.report, case.checked.diagnostics, 1)
    case.disagreements = layer_disagreements(case.prediction, case.report)
    case.tensors = expected_tensors(case.checked.report)
    case.disagreements += tensor_disagreements(
        case.prediction.tensors, case.tensors, "`archdsl weights`"
    )
    unused = bool(case.prediction.unused or case.prediction.unused_inputs)
    warned = any(d.code == "W103" for d in case.checked.diagnostics)
    if unused != warned:
        names = sorted(case.prediction.unused | case.prediction.unused_inputs)
        detail = f"the tracker's unused statements and inputs: {names or 'none'}; W103 "
        case.disagreements.append(
            Disagreement("W103", detail + ("given" if warned else "not given"))
        )
    return case


def describe(diagnostic) -> str:
    """A diagnostic as `CODE at line N: message`."""
    line = diagnostic.span.line if diagnostic.span else "?"
    return f"{diagnostic.code} at line {line}: {diagnostic.message}"


def rejection(error: tracker.SpecError, errors: list, lines: dict) -> list:
    """The predicted diagnostic against check's errors."""
    predicted = f"the tracker predicts {error.code} ({error.message})"
    if not errors:
        return [Disagreement(f"accepted:{error.code}", f"{predicted}; check accepts the spec")]
    matching = [d for d in errors if d.code == error.code]
    found = "; ".join(describe(d) for d in errors)
    if not matching:
        return [Disagreement(f"wrong-code:{error.code}", f"{predicted}; check says {found}")]
    where = error.where if isinstance(error.where, tuple) else (error.where,)
    wanted = {lines[w] for w in where if w in lines}
    if wanted and all(d.span is None or d.span.line not in wanted for d in matching):
        at = " or ".join(map(str, sorted(wanted)))
        return [Disagreement(f"wrong-line:{error.code}", f"{predicted} at line {at}; {found}")]
    return []


def layer_disagreements(prediction: tracker.Prediction, report: dict) -> list:
    """The layers `shapes` lists against the tracker's: the first (in the report's order)
    whose shape differs, the first whose parameters differ, the first only one lists."""
    out = []
    listed = {layer["name"]: layer for layer in report["layers"]}
    for name, layer in listed.items():
        mine = prediction.layers.get(name)
        if mine is None:
            detail = f"`shapes` lists {name} ({layer['op']}), the tracker does not"
            out.append(Disagreement("layers", detail))
            continue
        shape = tuple(layer["output_shape"])
        if shape != mine.shape or layer["op"] != mine.op:
            detail = (
                f"{name}: `shapes` says {layer['op']} {dims(shape)} ({layer['formula']}), "
                f"the tracker {mine.op} {dims(mine.shape)}"
            )
            out.append(Disagreement(f"shape:{mine.op}", detail))
        elif (layer["params"], layer["trainable_params"]) != (mine.params, mine.trainable):
            detail = (
                f"{name}: `shapes` says {layer['params']} parameters "
                f"({layer['trainable_params']} trainable), the tracker {mine.params} "
                f"({mine.trainable})"
            )
            out.append(Disagreement(f"params:{mine.op}", detail))
    for name, mine in prediction.layers.items():
        if name not in listed:
            detail = f"the tracker expects {name} ({mine.op}), `shapes` does not list it"
            out.append(Disagreement("layers", detail))
    return first_per_kind(out)


def first_per_kind(found: list) -> list:
    """The first disagreement of each kind, `shape:conv` and `shape:relu` being one kind (a
    layer after a misshaped one differs as a consequence)."""
    seen, out = set(), []
    for disagreement in found:
        kind = disagreement.kind.split(":")[0]
        if kind not in seen:
            seen.add(kind)
            out.append(disagreement)
    return out


def tensor_disagreements(
    mine: dict, theirs: dict, whose: str, kind="tensors", against="the tracker"
) -> list:
    """Portable tensors (the tracker's, or `archdsl weights`'s) against another list."""
    mine, theirs = {k: tuple(v) for k, v in mine.items()}, {k: tuple(v) for k, v in theirs.items()}
    if mine == theirs:
        return []
    missing = sorted(set(mine) - set(theirs))
    extra = sorted(set(theirs) - set(mine))
    shaped = sorted(n for n in set(mine) & set(theirs) if mine[n] != theirs[n])
    parts = [f"missing {missing}" if missing else "", f"extra {extra}" if extra else ""]
    parts += [f"{n}: {dims(theirs[n])} instead of {dims(mine[n])}" for n in shaped]
    return [Disagreement(kind, f"{whose} against {against}: " + "; ".join(p for p in parts if p))]


def dims(shape) -> str:
    """A shape as `C x H x W`."""
    return " x ".join(str(d) for d in shape)


# ----------------------------------------------------------------------------- frameworks


class Harness:
    """Runs specs through everything; holds the two driver processes of a run."""

    def __init__(self, work_dir: Path, keep: bool = False, plant: dict | None = None):
        """Drivers start on first use; case files go in work_dir (removed unless kept)."""
        self.work_dir = Path(work_dir)
        self.keep = keep
        # {backend: [(old, new)]}: that backend compiles the spec's text so edited (a planted
        # mistake, to show that the comparisons catch one)
        self.plant = plant or {}
        self.torch = Driver("torch", self.work_dir)
        self.keras = Driver("keras", self.work_dir)
        self.serial = 0

    def close(self) -> None:
        """Stop both drivers."""
        self.torch.stop()
        self.keras.stop()

    def evaluate(self, labelled: list, frameworks: bool = True) -> list:
        """[(label, spec)] -> [Case], each with its disagreements."""
        cases = [front_end(label, spec) for label, spec in labelled]
        if frameworks:
            self.run_frameworks([c for c in cases if c.runnable])
        return cases

    def run_frameworks(self, cases: list) -> None:
        """Compile, run and compare the cases (their files removed after, unless kept)."""
        for case in cases:
            self.serial += 1
            case.directory = self.work_dir / f"case{self.serial:05d}"
        ready = [case for case in cases if self.compile(case)]
        for case, results in zip(ready, self.drive(ready), strict=True):
            compare(case, *results)
        if not self.keep:
            for case in cases:
                shutil.rmtree(case.directory, ignore_errors=True)

    def drive(self, cases: list) -> list:
        """[(torch result, Keras result or None, reverse result or None)] per case: PyTorch
        first, Keras where PyTorch ran, PyTorch again where Keras ran."""
        tasks = [self.task(case) for case in cases]
        torch_results = self.torch.run(tasks)
        ran = [i for i, r in enumerate(torch_results) if not {"error", "degenerate"} & set(r)]
        keras_results = dict(zip(ran, self.keras.run([tasks[i] for i in ran]), strict=True))
        back = [i for i in ran if "error" not in keras_results[i]]
        reverse = [{**tasks[i], "kind": "reverse"} for i in back]
        reverse_results = dict(zip(back, self.torch.run(reverse), strict=True))
        return [
            (torch_results[i], keras_results.get(i), reverse_results.get(i))
            for i in range(len(cases))
        ]

    def task(self, case: Case) -> dict:
        """The drivers' task for a case: its directory and its inputs' shapes."""
        inputs = [[name, list(shape)] for name, shape in case.spec.inputs]
        return {"kind": "infer", "dir": str(case.directory), "inputs": inputs}

    def compile(self, case: Case) -> bool:
        """Both backends' output into the case's directory; whether both compiled (a failure
        is a disagreement)."""
        case.directory.mkdir(parents=True, exist_ok=True)
        spec_file = case.directory / FILE
        spec_file.write_text(case.text)
        compiled = True
        for backend in ("torch", "keras"):
            try:
                replace = self.plant.get(backend, ())
                conform.compile_spec(spec_file, backend, case.directory / backend, replace)
            except Exception:
                error = traceback.format_exc()
                case.disagreements.append(error_disagreement(f"compile-{backend}", error))
                compiled = False
        return compiled

    # ------------------------------------------------------------------ shrinking

    def shrink(self, case: Case, disagreement: Disagreement, max_tries=400, seconds=180):
        """(minimal spec, its disagreement of the same kind, candidates tried)."""
        frameworks = not disagreement.kind.startswith(FRONT_END_KINDS)
        found = {}

        def fails(candidates):
            """The index of the first candidate that shows the same kind."""
            labelled = [("candidate", c) for c in candidates]
            for index, result in enumerate(self.evaluate(labelled, frameworks)):
                same = [d for d in result.disagreements if d.kind == disagreement.kind]
                if same:
                    found[id(candidates[index])] = same[0]
                    return index
            return None

        minimal, tried = shrink.shrink(case.spec, fails, max_tries, seconds)
        return minimal, found.get(id(minimal), disagreement), tried


def compare(case: Case, torch_result: dict, keras_result: dict | None, reverse_result) -> None:
    """The frameworks' results against the report and each other."""
    out = case.disagreements
    if "error" in torch_result:
        out.append(error_disagreement("torch-error", torch_result["error"]))
        return
    if "degenerate" in torch_result:
        case.skipped = f"degenerate ({torch_result['degenerate']})"
        return
    directory, report = case.directory, case.report
    torch_out = load(directory / "torch_out.npz")["output"]
    if not np.isfinite(torch_out).all():
        case.skipped = "degenerate (PyTorch's output is not finite)"
        return
    out += count_disagreements("PyTorch", torch_result, report, "params-torch")
    out += shape_disagreements(load(directory / "torch_statements.npz"), torch_out, report)
    out += tensor_disagreements(
        case.tensors,
        {k: v.shape for k, v in load(directory / "weights.npz").items()},
        "PyTorch's weights file",
        "weights-file",
        "`archdsl weights`",
    )
    if torch_result["reload"][1] > 0:
        out.append(
            Disagreement(
                "reload-torch", f"PyTorch's own weights file reloads to {torch_result['reload']}"
            )
        )
    if keras_result is None or "error" in keras_result:
        error = (keras_result or {}).get("error", "not run")
        kind = "weights-load" if "WeightsError" in error else "keras-error"
        out.append(error_disagreement(kind, error))
        return
    case.ran = True
    noise = torch_result["noise"]
    loudest = max([noise["output"], *noise["statements"].values()])
    if loudest > NOISE_LIMIT:
        case.skipped = "ill-conditioned (float32 noise over NOISE_LIMIT)"
        case.notes.append(f"float32 noise {loudest:.1e}")
        return
    out += count_disagreements("Keras", keras_result, report, "params-keras")
    keras_out = load(directory / "keras_out.npz")["output"]
    out += output_disagreements(case, torch_out, keras_out, tolerance(noise["output"]))
    out += statement_disagreements(case, noise["statements"])
    out += roundtrip_disagreements(directory)
    out += reverse_disagreements(case, reverse_result, tolerance(noise["output"]))


def load(path: Path) -> dict:
    """Every array of an .npz file."""
    with np.load(path) as data:
        return dict(data)


def error_disagreement(kind: str, error: str) -> Disagreement:
    """A driver's failure: its kind names the exception's class (one kind per class)."""
    message = last_line(error)
    return Disagreement(f"{kind}:{message.split(':', 1)[0]}", message)


def last_line(error: str) -> str:
    """The message of a traceback (its last line), with where it was raised."""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    where = [line.strip() for line in lines if line.strip().startswith("File ")]
    return lines[-1] + (f" ({where[-1]})" if where else "")


def statement_params(report: dict) -> dict:
    """{statement: the parameters `shapes` gives its layers}."""
    out = {}
    for layer in report["layers"]:
        out[layer["statement"]] = out.get(layer["statement"], 0) + layer["params"]
    return out


def count_disagreements(framework: str, result: dict, report: dict, kind: str) -> list:
    """A framework's parameter counts against the report's, in total and per statement."""
    out = []
    theirs = (result["trainable"], result["frozen"])
    ours = (report["trainable_params"], report["non_trainable_params"])
    if theirs != ours:
        out.append(
            Disagreement(
                kind,
                f"{framework} has {theirs[0]} trainable and {theirs[1]} non-trainable "
                f"parameters, `shapes` says {ours[0]} and {ours[1]}",
            )
        )
    expected = statement_params(report)
    for name, count in sorted(result["statement_params"].items()):
        if count != expected.get(name, 0):
            out.append(
                Disagreement(
                    kind,
                    f"statement {name}: {count} parameters in {framework}, "
                    f"`shapes` says {expected.get(name, 0)}",
                )
            )
    return first_per_kind(out)


def report_shapes(report: dict) -> dict:
    """{statement: the shape of its last layer} (its output)."""
    return {layer["statement"]: tuple(layer["output_shape"]) for layer in report["layers"]}


def shape_disagreements(statements: dict, output, report: dict) -> list:
    """PyTorch's statement and output shapes against `shapes`."""
    out = []
    shapes = report_shapes(report)
    for name, value in statements.items():
        if name in shapes and value.shape[1:] != shapes[name]:
            got, want = dims(value.shape[1:]), dims(shapes[name])
            detail = f"statement {name}: PyTorch gives {got}, `shapes` says {want}"
            out.append(Disagreement("shape-torch", detail))
    want = shapes.get(report["output"])
    if want is not None and output.shape[1:] != want:
        detail = f"the output: PyTorch gives {dims(output.shape[1:])}, `shapes` says {dims(want)}"
        out.append(Disagreement("shape-torch", detail))
    return first_per_kind(out)


def tolerance(noise: float) -> float:
    """How closely PyTorch and Keras must agree on an output with this float32 noise."""
    return max(RTOL, NOISE * noise)


def output_disagreements(case: Case, torch_out, keras_out, tol: float) -> list:
    """The two outputs: the same shape, within `tol` of the largest value."""
    if torch_out.shape != keras_out.shape:
        detail = (
            f"the output: PyTorch {dims(torch_out.shape[1:])}, Keras {dims(keras_out.shape[1:])}"
        )
        return [Disagreement("output-shape", detail)]
    err, rel = conform.diff(keras_out, torch_out)
    if not within(case, rel, tol):
        detail = (
            f"the output ({case.report['output']}): Keras differs from PyTorch by {err:.3g}, "
            f"{rel:.2g} of the largest value (tolerance {tol:.2g})"
        )
        return [Disagreement("output", detail)]
    return []


def within(case: Case, rel: float, tol: float) -> bool:
    """Whether a relative difference is within tolerance (noting the largest, and whether
    the spec's float32 noise widened the tolerance past RTOL to pass it)."""
    case.worst = max(case.worst, rel)
    case.widened = case.widened or RTOL < rel <= tol
    return rel <= tol


def statement_disagreements(case: Case, noise: dict) -> list:
    """Each statement's output, the first that differs (in the report's order) reported;
    `noise`: each one's float32 noise."""
    theirs = load(case.directory / "keras_statements.npz")
    mine = load(case.directory / "torch_statements.npz")
    order = list(dict.fromkeys(layer["statement"] for layer in case.report["layers"]))
    out = []
    for name in sorted(mine, key=lambda n: order.index(n) if n in order else len(order)):
        if name not in theirs:
            out.append(
                Disagreement("statement-missing", f"statement {name}: Keras has no layer of it")
            )
            continue
        if theirs[name].shape != mine[name].shape:
            got, want = dims(theirs[name].shape[1:]), dims(mine[name].shape[1:])
            detail = f"statement {name}: PyTorch {want}, Keras {got}"
            out.append(Disagreement("statement-shape", detail))
            continue
        err, rel = conform.diff(theirs[name], mine[name])
        tol = tolerance(noise[name])
        if not within(case, rel, tol):
            ops = " |> ".join(x["op"] for x in case.report["layers"] if x["statement"] == name)
            detail = (
                f"statement {name} ({ops}): Keras differs from PyTorch by {err:.3g}, "
                f"{rel:.2g} of the largest value (tolerance {tol:.2g})"
            )
            out.append(Disagreement("statement", detail))
    return first_per_kind(out)


def roundtrip_disagreements(directory: Path) -> list:
    """Keras saves exactly the tensors it loaded from PyTorch's file."""
    torch_file, keras_file = load(directory / "weights.npz"), load(directory / "keras_weights.npz")
    if sorted(torch_file) != sorted(keras_file):
        detail = f"Keras saved {sorted(keras_file)}, PyTorch's file has {sorted(torch_file)}"
        return [Disagreement("weights-roundtrip", detail)]
    changed = [n for n in torch_file if not np.array_equal(torch_file[n], keras_file[n])]
    if changed:
        return [Disagreement("weights-roundtrip", f"Keras saved other values for {changed}")]
    return []


def reverse_disagreements(case: Case, result: dict | None, tol: float) -> list:
    """Keras's changed weights, saved by Keras and loaded by PyTorch, give Keras's output
    (to `tol`, the output's tolerance with PyTorch's weights)."""
    if result is None or "error" in result:
        error = (result or {}).get("error", "not run")
        kind = "weights-load-torch" if "WeightsError" in error else "reverse-error"
        return [error_disagreement(kind, error)]
    keras_out = load(case.directory / "keras_changed_out.npz")["logits"]
    keras_out = keras_out.transpose(0, 3, 1, 2) if keras_out.ndim == 4 else keras_out
    torch_out = load(case.directory / "torch_reverse_out.npz")["output"]
    if torch_out.shape != keras_out.shape:
        return [Disagreement("reverse", f"shapes {torch_out.shape} and {keras_out.shape}")]
    err, rel = conform.diff(torch_out, keras_out)
    if within(case, rel, tol):
        return []
    detail = f"weights Keras changed and saved, run in PyTorch: {err:.3g} off, {rel:.2g} relative"
    return [Disagreement("reverse", detail)]


# ----------------------------------------------------------------------------- runs


def labelled_specs(seed: int, count: int, mutants: int) -> tuple[list, list]:
    """([(label, valid spec)] * count, [(label, mutated spec)] * about `mutants`)."""
    valid = [(f"seed {seed} spec {i}", generator.generate(seed, i)) for i in range(count)]
    mutated = []
    for i in range(mutants):
        base = valid[i % len(valid)][1] if valid else generator.generate(seed, i)
        mutant = mutations.mutate(base, f"{seed}:{i}")
        if mutant is not None:
            mutated.append((f"seed {seed} mutant {i}", mutant))
    return valid, mutated


def run(
    harness: Harness,
    labelled: list,
    batch: int = 40,
    shrink_kinds: int = 6,
    shrink_seconds: float = 180,
    progress=None,
) -> Summary:
    """Every spec through the harness (valid ones `batch` at a time through the drivers);
    the first failure of each kind shrunk (at most `shrink_kinds` kinds)."""
    start = time.monotonic()
    summary = Summary()
    failing: dict = {}
    for offset in range(0, len(labelled), batch):
        cases = harness.evaluate(labelled[offset : offset + batch])
        for case in cases:
            tally(summary, case)
            for d in case.disagreements:
                failing.setdefault(d.kind, []).append((case, d))
        if progress:
            done = min(offset + batch, len(labelled))
            progress(f"{done}/{len(labelled)} specs, {len(failing)} kinds of disagreement")
    for found in failing.values():
        case, disagreement = found[0]
        also = [c.label for c, _ in found[1:]]
        if len(summary.failures) < shrink_kinds:
            minimal, detail, tried = harness.shrink(case, disagreement, seconds=shrink_seconds)
        else:
            minimal, detail, tried = case.spec, disagreement, 0
        summary.failures.append(
            Failure(case.label, disagreement, minimal.text(), detail, tried, also)
        )
    summary.seconds = time.monotonic() - start
    return summary


def tally(summary: Summary, case: Case) -> None:
    """Count a case into the summary."""
    summary.specs += 1
    if case.prediction and not case.prediction.valid:
        summary.invalid += 1
        summary.codes[case.prediction.error.code] += 1
        return
    if case.skipped:
        summary.skipped[case.skipped] += 1
        examples = summary.skipped_examples.setdefault(case.skipped, [])
        if len(examples) < 3:
            examples.append(" ".join([case.label, *case.notes]))
    elif case.ran:
        summary.ran += 1
    summary.worst = max(summary.worst, case.worst)
    summary.widened += case.widened
    if case.prediction:
        summary.ops.update(layer.op for layer in case.prediction.layers.values())
