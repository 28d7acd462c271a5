"""The warning corpus: W101-W104, I201, I202, `--strict`, and specs that check clean.

Each tests/core/warn_specs/*.arch lists its diagnostics in its leading comment lines
(`# expect: W101 at 5:9`, or `# expect: nothing`); `archdsl check` must report exactly those.
Warnings and notes never fail a check; `--strict` makes every warning an error (exit 1) but
leaves notes alone.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from core_helpers import INTERNAL_REPR, WARN_DIR, keys, read_header, run_inprocess

from archdsl.compiler import check_source

WARN_SPECS = sorted(WARN_DIR.glob("*.arch"))


def _warnings(expected):
    return [e for e in expected if e.severity == "warning"]


@pytest.mark.parametrize("path", WARN_SPECS, ids=lambda p: p.stem)
def test_reports_exactly_the_listed_diagnostics(path):
    expected = read_header(path)
    checked = check_source(path.read_text(encoding="utf-8"), str(path))
    assert keys(checked.diagnostics) == Counter(e.key for e in expected)
    assert checked.ok, "warnings and notes must leave a usable graph"
    for want in expected:
        (got,) = [
            d for d in checked.diagnostics if (d.code, d.span.line, d.span.column) == want.key
        ]
        assert got.severity == want.severity
        for fragment in want.messages:
            assert fragment in got.message
        for fragment in want.hints:
            assert fragment in got.hint
        for internal in INTERNAL_REPR:
            assert internal not in got.message + got.hint


@pytest.mark.parametrize("path", WARN_SPECS, ids=lambda p: p.stem)
def test_check_exits_0_and_prints_each_diagnostic(path, capsys):
    expected = read_header(path)
    code, out, err = run_inprocess(capsys, "check", str(path))
    assert "Traceback" not in out + err
    assert code == 0, err
    for want in expected:
        assert f"{path}:{want.line}:{want.column}: {want.severity}[{want.code}]" in err, err
    if not expected:
        assert err.strip() == f"{path}: no problems"


@pytest.mark.parametrize("path", WARN_SPECS, ids=lambda p: p.stem)
def test_strict_turns_warnings_into_errors(path, capsys):
    expected = read_header(path)
    warnings = _warnings(expected)
    code, out, err = run_inprocess(capsys, "check", "--strict", str(path))
    assert code == (1 if warnings else 0), err
    for want in warnings:
        assert f"{path}:{want.line}:{want.column}: error[{want.code}]" in err, err
    assert "warning[" not in err
    for want in expected:
        if want.severity == "info":
            assert f"{path}:{want.line}:{want.column}: info[{want.code}]" in err, err

    code, out, err = run_inprocess(capsys, "check", "--strict", "--format", "json", str(path))
    data = json.loads(out)
    assert code == (1 if warnings else 0)
    assert data["ok"] is not warnings
    severities = Counter(d["severity"] for d in data["diagnostics"])
    assert severities["warning"] == 0
    assert severities["error"] == len(warnings)


def test_corpus_covers_every_warning_and_note_code():
    from archdsl.diagnostics import CATALOGUE

    listed = {e.code for p in WARN_SPECS for e in read_header(p)}
    assert listed == {c for c in CATALOGUE if c[0] in "WI"}
    assert any(not read_header(p) for p in WARN_SPECS), "keep at least one clean spec"


def test_w101_names_the_input_size_that_would_tile():
    """AlexNet's conv1 at 224: (224 - 11) / 4 + 1 = 54.25; 227 gives exactly 55."""
    text = "model T\ninput image: 3 x 224 x 224\nconv1 = conv(96, kernel=11, stride=4)\n"
    (d,) = check_source(text, "t.arch").diagnostics
    assert d.code == "W101"
    assert "54.25" in d.message
    assert "227" in d.hint
    # and 227 really does tile: no warning
    assert not check_source(text.replace("224", "227"), "t.arch").diagnostics


@pytest.mark.parametrize(
    "size, kernel, stride, larger, smaller",
    [(224, 11, 4, 227, 223), (54, 3, 2, 55, 53), (10, 5, 3, 11, 8), (7, 2, 2, 8, 6)],
)
def test_w101_hint_sizes_tile_and_the_warned_size_does_not(size, kernel, stride, larger, smaller):
    """The sizes the hint names tile the window exactly; each one checks clean."""
    spec = "model T\ninput x: 3 x {n} x {n}\ny = conv(4, kernel={k}, stride={s})\n"
    (d,) = check_source(spec.format(n=size, k=kernel, s=stride), "t.arch").diagnostics
    assert d.code == "W101"
    assert f"an input of {larger} (or {smaller}) would tile exactly" in d.hint
    for n in (larger, smaller):
        assert (n - kernel) % stride == 0
        assert check_source(spec.format(n=n, k=kernel, s=stride), "t.arch").diagnostics == []


def test_strict_on_a_clean_spec_and_on_a_spec_with_only_notes(capsys, tmp_path):
    notes_only = tmp_path / "notes.arch"
    notes_only.write_text("model T\ninput x: 10\ny = dense(3) |> softmax\n", encoding="utf-8")
    code, _, err = run_inprocess(capsys, "check", "--strict", str(notes_only))
    assert code == 0 and "info[I201]" in err
    clean = tmp_path / "clean.arch"
    clean.write_text("model T\ninput x: 10\ny = dense(3)\n", encoding="utf-8")
    code, _, err = run_inprocess(capsys, "check", "--strict", str(clean))
    assert code == 0 and err.strip() == f"{clean}: no problems"


def test_strict_applies_to_shapes_too(capsys):
    path = WARN_DIR / "01_w101_alexnet_conv1_at_224.arch"
    code, out, err = run_inprocess(capsys, "shapes", str(path))
    assert code == 0 and "conv1" in out
    code, out, err = run_inprocess(capsys, "shapes", "--strict", str(path))
    assert code == 1 and "error[W101]" in err


def test_several_files_exit_with_the_worst_status(capsys):
    clean = WARN_DIR / "23_clean_small_net.arch"
    warned = WARN_DIR / "01_w101_alexnet_conv1_at_224.arch"
    code, out, _ = run_inprocess(capsys, "check", "--format", "json", str(clean), str(warned))
    assert code == 0
    assert [entry["ok"] for entry in json.loads(out)] == [True, True]
    code, out, _ = run_inprocess(
        capsys, "check", "--strict", "--format", "json", str(clean), str(warned)
    )
    assert code == 1
    assert [entry["ok"] for entry in json.loads(out)] == [True, False]
