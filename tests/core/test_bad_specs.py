"""The bad-spec corpus: every error code of the catalogue, each way it can differ.

Each tests/core/bad_specs/NN_name.arch states its diagnostic in its first line
(`# expect: E008 at 5:9`). `archdsl check FILE` must exit 1, print `FILE:LINE:COL: error[CODE]`
with the source line under it, never a traceback, report exactly that diagnostic and nothing
else, and `--format json` must say the same.
"""

from __future__ import annotations

import json
import re

import pytest
from core_helpers import (
    BAD_DIR,
    INTERNAL_REPR,
    read_header,
    run_inprocess,
    run_subprocess,
)

from archdsl.compiler import check_source
from archdsl.diagnostics import CATALOGUE

BAD_SPECS = sorted(BAD_DIR.glob("*.arch"))

# Front-end bugs this corpus exposes (see the report): each case fails until the bug is fixed.
# All the ones found so far are fixed; keep the mechanism for the next.
KNOWN_BUGS: dict[str, str] = {}

# Of those, the ones where the front end reports no error at all (a missing check).
MISSING_CHECKS: set[str] = set()

# These run `python -m archdsl` in a fresh process; the rest go through cli.main in-process.
SUBPROCESS = {
    "01_e001_missing_rparen.arch",
    "09_e002_unknown_op_cnov.arch",
    "44_e007_kernel_larger_than_input.arch",
    "56_e010_undefined_in_block.arch",
    "80_e017_no_model_line.arch",
    "91_e019_unknown_augmentation.arch",
}


def _cases(bugs=KNOWN_BUGS):
    for path in BAD_SPECS:
        marks = []
        if path.name in bugs:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[path.name]))
        yield pytest.param(path, id=path.stem, marks=marks)


def _run(capsys, path, *args):
    if path.name in SUBPROCESS:
        return run_subprocess("check", str(path), *args)
    return run_inprocess(capsys, "check", str(path), *args)


@pytest.mark.parametrize("path", list(_cases()))
def test_check_reports_the_expected_error(path, capsys):
    """Exit 1, `FILE:LINE:COL: error[CODE]` plus the culprit's source line, nothing else."""
    (want,) = read_header(path)
    source_lines = path.read_text(encoding="utf-8").split("\n")
    code, out, err = _run(capsys, path)
    assert "Traceback" not in out + err
    assert code == 1, err
    assert f"{path}:{want.line}:{want.column}: error[{want.code}]" in err, err
    # every reported diagnostic is the expected one: no second error, no cascade
    reported = re.findall(rf"^{re.escape(str(path))}:(\d+):(\d+): (\w+)\[(\w+)\]", err, re.M)
    assert reported == [(str(want.line), str(want.column), "error", want.code)], err
    assert err.rstrip().endswith(f"{path}: 1 error"), err
    # the excerpt shows the culprit's own line, with the caret at its column
    excerpt = source_lines[want.line - 1].expandtabs(1)
    assert f" {want.line} | {excerpt}" in err, err
    assert f" | {' ' * (want.column - 1)}^" in err, err
    for fragment in want.messages + want.hints:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    for internal in INTERNAL_REPR:
        assert internal not in err, f"internal repr {internal!r} leaked into:\n{err}"


@pytest.mark.parametrize("path", list(_cases()))
def test_check_json_agrees(path, capsys):
    """`--format json`: exit 1, ok false, exactly the expected code, line and column."""
    (want,) = read_header(path)
    code, out, err = _run(capsys, path, "--format", "json")
    assert "Traceback" not in out + err
    assert code == 1
    data = json.loads(out)
    assert data["file"] == str(path)
    assert data["ok"] is False
    got = [(d["code"], d["severity"], d["line"], d["column"]) for d in data["diagnostics"]]
    assert got == [(want.code, "error", want.line, want.column)]
    (diagnostic,) = data["diagnostics"]
    assert diagnostic["file"] == str(path)
    assert (diagnostic["end_line"], diagnostic["end_column"]) > (want.line, want.column)
    assert diagnostic["message"]
    for fragment in want.messages:
        assert fragment in diagnostic["message"]
    for fragment in want.hints:
        assert fragment in diagnostic["hint"]
    for internal in INTERNAL_REPR:
        assert internal not in diagnostic["message"] + diagnostic["hint"]


@pytest.mark.parametrize("path", list(_cases({k: KNOWN_BUGS[k] for k in MISSING_CHECKS})))
def test_check_source_never_builds_a_graph_for_a_bad_spec(path):
    """The pure front end agrees with the CLI: errors, no usable result, no exception."""
    checked = check_source(path.read_text(encoding="utf-8"), path.name)
    assert not checked.ok
    assert any(d.severity == "error" for d in checked.diagnostics)


def test_corpus_is_large_and_well_formed():
    """At least 45 files, named NN_short_name.arch with unique numbers, one diagnostic each."""
    assert len(BAD_SPECS) >= 45
    numbers = [p.name.split("_", 1)[0] for p in BAD_SPECS]
    assert all(re.fullmatch(r"\d{2,3}", n) for n in numbers), numbers
    assert len(set(numbers)) == len(numbers)
    for path in BAD_SPECS:
        assert re.fullmatch(r"\d{2,3}_[a-z0-9_]+\.arch", path.name), path.name
        expected = read_header(path)
        assert len(expected) == 1 and expected[0].severity == "error", path.name
        assert expected[0].code in path.name.upper(), f"{path.name}: name its code"
    assert set(KNOWN_BUGS) <= {p.name for p in BAD_SPECS}
    assert MISSING_CHECKS <= set(KNOWN_BUGS)
    assert SUBPROCESS <= {p.name for p in BAD_SPECS} - set(KNOWN_BUGS)


def test_corpus_covers_every_error_code_without_relying_on_known_bugs():
    """Every E-code of the catalogue has at least one corpus file that passes today."""
    errors = {code for code in CATALOGUE if code.startswith("E")}
    covered = {read_header(p)[0].code for p in BAD_SPECS if p.name not in KNOWN_BUGS}
    assert covered == errors


@pytest.mark.parametrize(
    "code, at_least",
    [("E001", 4), ("E004", 4), ("E006", 4), ("E013", 2), ("E015", 3), ("E016", 3), ("E017", 3)],
)
def test_codes_that_fail_in_several_ways_have_several_files(code, at_least):
    files = [p for p in BAD_SPECS if read_header(p)[0].code == code]
    assert len(files) >= at_least, [p.name for p in files]
