"""The differential fuzzer (issue 19): random specs through the tracker, `check` / `shapes`,
PyTorch and Keras; every disagreement shrunk to a minimal spec and printed.

The default run: issue 19's six specs (and those found since), a few dozen random valid specs
and their mutations through everything, and many more through the front end alone; `-m slow`:
2,000 specs. `python -m tests.difffuzz --seed N --count M` runs it by hand.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from archdsl import signatures
from difffuzz import generator, harness, mutations, regressions, shrink, tracker
from difffuzz.spec import Init, Op, Spec, Stmt, Towers

SEED = 19
DEFAULT_COUNT = 50  # valid specs through both frameworks in the default run
FRONT_END_COUNT = 400  # valid specs (and as many mutants) through the front end only
SLOW_SEED = 2019
SLOW_COUNT = 2000


def failure_text(summary: harness.Summary) -> str:
    """Every failure's minimal spec and disagreement."""
    return "\n\n".join(f.message() for f in summary.failures)


# ----------------------------------------------------------------------------- the generator


# ops the fuzzer does not write yet: they read token ids (embedding) or are checked against
# NumPy and across the backends by tests/*/test_*_sequence_ops.py instead (lstm, gru); the
# generator has no `tokens L of V` input so far; reshape and permute (whose arguments must fit
# the input's element count and rank) are checked against NumPy in both backends by
# tests/*/test_*_reshape_ops.py and exported by tests/torch_export/every_op.arch instead
NOT_FUZZED = {"embedding", "lstm", "gru", "reshape", "permute"}


def test_the_generator_and_the_tracker_know_every_op_and_argument():
    """A new op or argument in the language fails here until the generator writes it and the
    tracker knows its rule (and its positional order)."""
    language = {
        op: [p.name for p in params]
        for op, params in signatures.OPS.items()
        if op not in NOT_FUZZED
    }
    assert language == {op: list(names) for op, names in generator.ARGUMENTS.items()}
    assert language == {op: [a[0] for a in args] for op, args in tracker.OPS.items()}


def features(spec: Spec, prediction: tracker.Prediction) -> set:
    """What a spec exercises: ops, arguments, forms of padding and bias, structures."""
    found = set()
    statements = spec.statements() + [s for b in spec.blocks for s in b.body]
    for stmt in statements:
        for op in stmt.ops:
            found.add(f"op {op.kind}")
            found.update(f"arg {op.kind}.{name}" for name in op.args)
            pad = op.args.get("pad")
            if pad is not None:
                found.add(f"pad {pad if isinstance(pad, str) else type(pad).__name__}")
            bias = op.args.get("bias")
            if bias is not None:
                found.add(f"bias {type(bias).__name__}")
            if op.positional:
                found.add("positional")
        if stmt.merge:
            found.add(f"op {stmt.merge[0]}")
        if stmt.expect:
            found.add("expect")
        if stmt.tower_merge:
            found.add("towers merge")
        if stmt.call:
            found.add("call * N" if stmt.call.repeat else "call")
    found.update("towers" for item in spec.items if isinstance(item, Towers))
    if any(s.call for b in spec.blocks for s in b.body):
        found.add("block calling a block")
    defined = [name for name, _ in spec.inputs]
    for stmt in spec.statements():
        reads = [stmt.source] if stmt.source else list(stmt.merge[1]) if stmt.merge else []
        if any(name not in defined for name in reads):
            found.add("forward reference")
        defined.append(stmt.name)
    if {s.name for s in statements} & set(generator.TRICKY_NAMES):
        found.add("names the generated code uses")
    if len(spec.inputs) > 1:
        found.add("second input")
    if prediction.unused:
        found.add("unused statement")
    for layer in prediction.layers.values():
        if layer.op in ("concat", "add") and len(layer.shape) == 1:
            found.add(f"{layer.op} of vectors")
        if layer.op == "resize":
            found.add("resize " + ("up" if layer.shape[1] > 1 else "down"))
    return found


def test_the_generator_covers_every_op_option_and_structure():
    """300 specs use every op and argument, every padding and bias form, and every structure."""
    found = set()
    for index in range(300):
        spec = generator.generate(SEED, index)
        found |= features(spec, tracker.predict(spec))
    fuzzed = {op: params for op, params in signatures.OPS.items() if op not in NOT_FUZZED}
    wanted = {f"op {op}" for op in fuzzed}
    wanted |= {f"arg {op}.{p.name}" for op, params in fuzzed.items() for p in params}
    wanted |= {"pad same", "pad valid", "pad int", "pad tuple", "bias bool", "bias Init"}
    wanted |= {"positional", "expect", "call", "call * N", "towers", "towers merge"}
    wanted |= {"second input", "unused statement", "concat of vectors", "add of vectors"}
    wanted |= {"resize up", "resize down", "block calling a block", "forward reference"}
    wanted |= {"names the generated code uses"}
    assert not wanted - found


def test_specs_are_deterministic_and_valid():
    """A (seed, index) gives one spec, always the same, valid for the tracker."""
    first = [generator.generate(SEED, i).text() for i in range(20)]
    assert first == [generator.generate(SEED, i).text() for i in range(20)]
    assert len(set(first)) == 20
    assert all(tracker.predict(generator.generate(SEED, i)).valid for i in range(20))


def test_mutations_give_every_diagnostic_they_aim_at():
    """The mutations reach every code the tracker predicts."""
    codes = set()
    for index in range(400):
        mutant = mutations.mutate(generator.generate(SEED, index % 40), f"codes:{index}")
        if mutant is not None:
            error = tracker.predict(mutant).error
            codes.add(error.code if error else "valid")
    wanted = {"E002", "E003", "E004", "E005", "E006", "E007", "E008", "E009", "E010", "E011"}
    wanted |= {"E012", "E013", "E014", "E015", "E016", "E018"}
    assert not wanted - codes


def test_the_command_line_prints_the_specs_it_would_run():
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "tests.difffuzz", "--seed", "3", "--count", "2", "--print-specs"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# seed 3 spec 0\nmodel ")
    assert generator.generate(3, 1).text() in done.stdout


# ----------------------------------------------------------------------------- the tracker


def test_the_tracker_follows_the_documented_rules():
    """Spot checks of the rules the tracker is written from (README, PyTorch, TensorFlow)."""

    def shape(shape_in, *ops):
        """The output shape of `ops` on `shape_in`."""
        spec = Spec("T", [("x", shape_in)], [Stmt("s", list(ops))])
        return tracker.predict(spec).shapes["s"]

    def error(shape_in, *ops):
        """The code the tracker predicts for `ops` on `shape_in`."""
        return tracker.predict(Spec("T", [("x", shape_in)], [Stmt("s", list(ops))])).error.code

    conv = {"filters": 1, "kernel": 1, "stride": 2, "pad": 1, "ceil": True}
    assert shape((1, 5, 5), Op("conv", conv)) == (1, 4, 4)  # README: ceil, no drop for convs
    pool = {"kernel": 2, "stride": 2, "ceil": True}
    assert shape((1, 5, 5), Op("maxpool", pool)) == (1, 3, 3)  # floor would give 2
    # PyTorch: with ceil_mode the last window must start inside the input or the left padding
    assert shape((1, 5, 5), Op("maxpool", {**pool, "pad": 1})) == (1, 3, 3)  # not 4
    same = {"filters": 2, "kernel": 3, "stride": 2, "pad": "same"}
    assert shape((1, 7, 6), Op("conv", same)) == (2, 4, 3)  # TensorFlow: ceil(in / stride)
    assert shape((3, 4, 5), Op("flatten"), Op("flatten")) == (60,)
    assert error((3, 4, 4), Op("maxpool", {"kernel": 2, "pad": 2})) == "E004"
    assert error((3, 4, 4), Op("conv", {"filters": 2, "kernel": 6})) == "E007"
    assert error((3, 4, 4), Op("conv", {"filters": 2, "kernel": 1, "groups": 2})) == "E008"
    assert error((3, 4, 4), Op("dense", {"units": 2})) == "E012"
    assert error((3, 4, 4), Op("flatten"), Op("lrn")) == "E018"
    bias = Op("conv", {"filters": 4, "kernel": 3, "groups": 2, "bias": Init("ones")})
    spec = Spec("T", [("x", (2, 5, 5))], [Stmt("s", [bias, Op("batchnorm")])])
    layers = tracker.predict(spec).layers
    assert (layers["s.conv"].params, layers["s.batchnorm"].params) == (4 * 1 * 9 + 4, 16)
    assert layers["s.batchnorm"].trainable == 8


def test_the_tracker_agrees_with_check_and_shapes(tmp_path):
    """Many specs and mutants through the front end alone (no framework)."""
    fronts = harness.Harness(tmp_path)  # its drivers start only when the frameworks run
    valid, mutated = harness.labelled_specs(SEED + 1, FRONT_END_COUNT, FRONT_END_COUNT)
    cases = fronts.evaluate(valid + mutated, frameworks=False)
    failing = [c for c in cases if c.disagreements]
    assert not failing, "\n\n".join(
        f"{c.label}:\n{c.text}{c.disagreements[0]}" for c in failing[:5]
    )
    assert sum(not c.prediction.valid for c in cases) > FRONT_END_COUNT // 2


def test_shrinking_reduces_a_planted_tracker_mistake_to_one_op(monkeypatch, tmp_path):
    """A tracker that forgets PyTorch's ceil-mode rule for pools disagrees with `shapes`; the
    shrinker reduces the spec where that shows to the one pool that shows it."""
    original = tracker.window_size

    def forgetful(size, span, stride, before, after, ceil, pool):
        """window_size without the ceil-mode drop for pools."""
        return original(size, span, stride, before, after, ceil, False)

    monkeypatch.setattr(tracker, "window_size", forgetful)
    spec = Spec(
        "Planted",
        [("x", (3, 9, 9))],
        [
            Stmt("a", [Op("conv", {"filters": 4, "kernel": 3, "pad": 1}), Op("relu")]),
            Stmt("b", [Op("conv", {"filters": 4, "kernel": 1})], source="x"),
            Stmt("c", [Op("batchnorm")], merge=("add", ["a", "b"])),
            Stmt("d", [Op("maxpool", {"kernel": 2, "stride": 2, "pad": 1, "ceil": True})]),
            Stmt("e", [Op("global_avgpool"), Op("flatten"), Op("dense", {"units": 3})]),
        ],
    )
    fronts = harness.Harness(tmp_path)
    (case,) = fronts.evaluate([("planted", spec)], frameworks=False)
    assert [d.kind for d in case.disagreements] == ["shape:maxpool"]
    minimal, found, _ = fronts.shrink(case, case.disagreements[0])
    assert found.kind == "shape:maxpool"
    statements = minimal.statements()
    assert len(statements) == 1 and [op.kind for op in statements[0].ops] == ["maxpool"]
    assert shrink.size(minimal) < shrink.size(spec)


# ----------------------------------------------------------------------------- the frameworks


@pytest.mark.parametrize("name", list(regressions.CASES))
def test_known_disagreement_is_gone(fuzz, name):
    """Each minimal spec of issue 19 (and found since): the tracker, `shapes`, PyTorch and
    Keras agree."""
    (case,) = fuzz.evaluate([(name, regressions.CASES[name])])
    assert not case.disagreements, f"{case.text}" + "\n".join(map(str, case.disagreements))
    assert case.ran


# issue 12's ops on maps and on vectors, the flattened features' order observed (an output)
# and absorbed (a dense layer), and a residual branch with stochastic depth
MODERN = {
    "modern_map_ops": Spec(
        "ModernMap",
        [("x", (3, 5, 4))],
        [
            Stmt("stem", [Op("conv", {"filters": 6, "kernel": 1}), Op("layernorm")]),
            Stmt(
                "branch",
                [
                    Op("conv", {"filters": 6, "kernel": 3, "pad": 1, "groups": 6}),
                    Op("layernorm", {"eps": 1e-6}),
                    Op("gelu"),
                    Op("conv", {"filters": 6, "kernel": 1}),
                    Op("layer_scale", {"init": 0.5}),
                    Op("stochastic_depth", {"p": 0.2}, 1),
                ],
            ),
            Stmt("s", [Op("silu"), Op("hardswish"), Op("mish")], merge=("add", ["branch", "stem"])),
        ],
    ),
    "modern_flat_output": Spec(
        "ModernFlat",
        [("x", (2, 3, 3))],
        [Stmt("s", [Op("flatten"), Op("layernorm"), Op("layer_scale", {"init": 2.0})])],
    ),
    "modern_flat_dense": Spec(
        "ModernDense",
        [("x", (3, 2, 2))],
        [
            Stmt(
                "s",
                [
                    Op("flatten"),
                    Op("layer_scale", {"init": -1.0}),
                    Op("layernorm", {"eps": 0.1}),
                    Op("gelu", {"approximate": "tanh"}),
                    Op("dense", {"units": 4}),
                    Op("hardsigmoid"),
                ],
            )
        ],
    ),
}


def test_issue_12_ops_agree_everywhere(fuzz):
    """The tracker, `shapes`, PyTorch and Keras agree on specs made of issue 12's ops."""
    for case in fuzz.evaluate(list(MODERN.items())):
        assert not case.disagreements, f"{case.text}" + "\n".join(map(str, case.disagreements))
        assert case.ran


# issue 13's ops: a map read as tokens, a class token and a position embedding, attention
# with and without biases, dense and layer norm over tokens, a residual add; the tokens back
# as a map, one token and their mean
TOKENS = {
    "tokens_encoder": Spec(
        "Tokens",
        [("x", (4, 2, 3))],
        [
            Stmt("t", [Op("to_tokens"), Op("class_token"), Op("position_embedding", {"std": 0.5})]),
            Stmt("a", [Op("layernorm"), Op("attention", {"heads": 2})]),
            Stmt("r", [Op("dense", {"units": 4}), Op("gelu")], merge=("add", ["a", "t"])),
            Stmt("s", [Op("attention", {"heads": 4, "bias": False}), Op("token", {"index": 2})]),
        ],
    ),
    "tokens_back": Spec(
        "TokensBack",
        [("x", (3, 2, 2))],
        [
            Stmt(
                "t",
                [
                    Op("to_tokens"),
                    Op("attention", {"heads": 3}),
                    Op("to_map", {"height": 1, "width": 4}),
                ],
            ),
            Stmt("m", [Op("to_tokens"), Op("mean_tokens")]),
        ],
    ),
}


def test_issue_13_ops_agree_everywhere(fuzz):
    """The tracker, `shapes`, PyTorch and Keras agree on specs made of issue 13's ops."""
    for case in fuzz.evaluate(list(TOKENS.items())):
        assert not case.disagreements, f"{case.text}" + "\n".join(map(str, case.disagreements))
        assert case.ran


def test_a_planted_backend_mistake_is_caught_and_shrunk(fuzz):
    """Keras compiled from a spec whose nearest resize became bilinear: the outputs differ,
    and the shrinker keeps the resize alone."""
    spec = Spec(
        "Planted",
        [("x", (2, 3, 4))],
        [
            Stmt("a", [Op("conv", {"filters": 3, "kernel": 3, "pad": 1}), Op("relu")]),
            Stmt("b", [Op("resize", {"size": (7, 5), "mode": "nearest"}), Op("batchnorm")]),
            Stmt("c", [Op("flatten"), Op("dense", {"units": 4})]),
        ],
    )
    fuzz.plant = {"keras": [("nearest", "bilinear")]}
    try:
        (case,) = fuzz.evaluate([("planted", spec)])
        kinds = {d.kind for d in case.disagreements}
        assert {"output", "statement"} <= kinds
        statement = next(d for d in case.disagreements if d.kind == "statement")
        assert statement.detail.startswith("statement b (resize |> batchnorm)")
        minimal, _, _ = fuzz.shrink(case, statement, max_tries=60)
    finally:
        fuzz.plant = {}
    ops = [op.kind for s in minimal.statements() for op in s.ops]
    assert ops == ["resize"]


def test_fuzz_default(fuzz):
    """A few dozen random valid specs and their mutations through everything: no
    disagreement (a failure prints each kind's minimal spec)."""
    start = time.monotonic()
    valid, mutated = harness.labelled_specs(SEED, DEFAULT_COUNT, 3 * DEFAULT_COUNT)
    summary = harness.run(fuzz, valid + mutated, shrink_seconds=60)
    print(summary.text(), f"({time.monotonic() - start:.1f} s)")
    assert not summary.failures, failure_text(summary)
    assert summary.ran >= DEFAULT_COUNT * 0.9


@pytest.mark.slow
def test_fuzz_slow(fuzz):
    """2,000 random valid specs (and as many mutants) through everything, 50 per driver job."""
    valid, mutated = harness.labelled_specs(SLOW_SEED, SLOW_COUNT, SLOW_COUNT)
    summary = harness.run(fuzz, valid + mutated, batch=50)
    print(summary.text())
    assert not summary.failures, failure_text(summary)
    assert summary.ran >= SLOW_COUNT * 0.9
