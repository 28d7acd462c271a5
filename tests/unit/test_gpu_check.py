"""bench/gpu_check.sh's table: rows summarised from real log shapes, the marked section of
RESULTS.md replaced (rows of checks not rerun kept), and, under -m slow, the whole dry run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench_modules import import_bench

ROOT = Path(__file__).resolve().parents[2]
report = import_bench("gpu_check_report")

TVR_LOG = """\
(a) torchvision's AlexNet: input 3 x 224 x 224, 61,100,840 parameters, SGD for both
    generated  specs/variants/torchvision_alexnet.arch      10.0 ms/step  12800.0 images/s  (min 9.9, max 10.3 ms)
    reference  torchvision.models.alexnet(weights=None)     10.1 ms/step  12673.3 images/s  (min 9.9, max 10.4 ms)
generated / reference: (a) 0.990  (target <= 1.02; load average 0.10 at end)
"""
E2E_LOG = """\
| case | data | backend | batch | N1..N2 | trainer img/s (steady) | metrics.csv img/s (N2) | img/s per process (N2) | bare step img/s | **trainer / bare** | reference img/s (steady) | **trainer / reference** | process wall s (N2) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
| alexnet | embedded | torch | 128 | 6..22 | 9000 | 7000 | 900 | 10000 | **0.90** | - | - | 12.0 |
| mini-jpeg | JPEG folder | torch | 256 | 10..50 | 4000 | 3000 | 500 | 8000 | **0.50** | 3000 | 1.33 | 20.0 |
"""


def rows_file(tmp_path, checks):
    """A rows.jsonl of (check, status, log text) records, made by `record`."""
    rows = tmp_path / "rows.jsonl"
    for check, status, text in checks:
        log = tmp_path / f"{check}.log"
        log.write_text(text)
        report.record(rows, check, status, "12.4", log, f"python bench/{check}.py")
    return rows


def test_rows_summarise_the_logs_and_failures(tmp_path):
    rows = rows_file(
        tmp_path,
        [
            ("tvr-amp", "ok", TVR_LOG),
            ("e2e-amp", "ok", E2E_LOG),
            ("decode", "failed (exit 1)", "Traceback...\nRuntimeError: no | device\n\n"),
            ("keras", "skipped: TensorFlow not installed on this machine", ""),
        ],
    )
    section = report.render(rows, "machine X")
    lines = {line.split("|")[1].strip(): line for line in section.splitlines() if "| `" in line}
    assert set(lines) == {"`tvr-amp`", "`e2e-amp`", "`decode`", "`keras`"}
    assert "gen / ref (a) 0.990" in lines["`tvr-amp`"] and "12800.0" in lines["`tvr-amp`"]
    assert "alexnet torch b128: trainer 9000 img/s, bare 10000, trainer / bare 0.90" in section
    assert "trainer / reference 1.33" in lines["`e2e-amp`"]
    assert "RuntimeError: no \\| device" in lines["`decode`"]  # the pipe escaped
    assert lines["`keras`"].count("|") == len(report.COLUMNS) + 1
    assert "| 12 |" in lines["`tvr-amp`"]


def test_write_replaces_the_section_and_keeps_rows_not_rerun(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nkept text\n")
    first = tmp_path / "first.md"
    first.write_text(
        report.render(rows_file(tmp_path, [("tvr-amp", "ok", TVR_LOG), ("e2e-amp", "ok", "")]), "1")
    )
    report.write(first, results)
    (tmp_path / "rows.jsonl").unlink()
    second = tmp_path / "second.md"
    second.write_text(report.render(rows_file(tmp_path, [("e2e-amp", "ok", E2E_LOG)]), "2"))
    report.write(second, results)
    text = results.read_text()
    assert text.startswith("# Results\n\nkept text\n\n")
    assert text.count(report.BEGIN) == text.count(report.END) == 1
    section = report.section_of(text)
    assert "\n2\n" in section and "\n1\n" not in section  # the new header
    assert list(report.row_ids(section)) == ["tvr-amp", "e2e-amp"]  # the first order
    assert "trainer 9000 img/s" in report.row_ids(section)["e2e-amp"]  # the new row
    assert "gen / ref (a) 0.990" in report.row_ids(section)["tvr-amp"]  # the old row kept


def test_the_resnet50_case_names_a_spec_that_exists():
    case = import_bench("end_to_end").CASES["resnet50"]
    assert (ROOT / case.spec).is_file() and not case.jpeg


@pytest.mark.slow
def test_dry_run_fills_every_row(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n")
    env = {**os.environ, "GPU_CHECK_RESULTS": str(results), "OUT": str(tmp_path / "out")}
    env["PYTHON"] = sys.executable
    done = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    section = report.section_of(results.read_text())
    rows = report.row_ids(section)
    assert list(rows)[:9] == [
        "env", "tvr-amp", "tvr-fp32", "profile", "e2e-amp", "e2e-mini", "decode", "e2e-compile",
        "tvr-compile",
    ]  # fmt: skip
    for check in list(rows)[:9]:
        assert "| ok |" in rows[check], rows[check]
    assert (tmp_path / "out" / "gpu_check_section.md").read_text() in results.read_text()
    assert (tmp_path / "out" / "gpu_check_logs.tar.gz").stat().st_size > 0
