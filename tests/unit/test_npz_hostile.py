"""`archdsl weights SPEC FILE.npz` on hostile files: one line, exit 2, no traceback, no big reads.

The files are npz_crafts.CASES (shared with the runtimes' load_weights tests); the checks are
backends/common/npzcheck.py's, reached through archdsl.weights.npz_shapes.
"""

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from archdsl.backends.common.npzcheck import printable
from npz_crafts import CASES, CLAIMED, DEFLATED_ZEROS, ESCAPE_NAMED

from archdsl.cli import main
from archdsl.compiler import check_source
from archdsl.weights import WeightFileError, expected_tensors, npz_shapes

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "specs" / "mini_alexnet.arch"
FILES = {case: data for case, data, _ in CASES}
SAYS = {case: says for case, _, says in CASES}


@pytest.fixture
def crafted(tmp_path):
    """crafted(case) -> the path of that case's file."""

    def _write(case):
        path = tmp_path / f"{case}.npz"
        path.write_bytes(FILES[case])
        return path

    return _write


def archdsl_weights(*args):
    """`python -m archdsl weights ARGS` in a subprocess."""
    cmd = [sys.executable, "-m", "archdsl", "weights", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)


def assert_one_line(message, path, says):
    """The message is one printable line naming the file and the problem."""
    assert "\n" not in message.strip() and "\x1b" not in message, repr(message)
    assert str(path) in message
    assert says in message, message


@pytest.mark.parametrize("case", SAYS)
def test_npz_shapes_refuses_with_one_line(crafted, case):
    path = crafted(case)
    with pytest.raises(WeightFileError) as info:
        npz_shapes(path)
    assert_one_line(str(info.value), path, SAYS[case])
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("case", SAYS)
def test_cli_refuses_with_exit_2(crafted, capsys, case):
    path = crafted(case)
    assert main(["weights", str(MINI), str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_line(err, path, SAYS[case])
    assert "Traceback" not in err


@pytest.mark.parametrize("case", ["claims_1_5_gb", "pickled_objects", "escape_in_name"])
def test_cli_process_refuses_with_exit_2(crafted, case):
    path = crafted(case)
    done = archdsl_weights(MINI, path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert_one_line(done.stderr, path, SAYS[case])


@pytest.mark.parametrize("case", ["claims_1_5_gb", "deflate_size_lie", "many_members"])
def test_claims_are_refused_fast(crafted, case):
    path = crafted(case)
    start = time.perf_counter()
    with pytest.raises(WeightFileError):
        npz_shapes(path)
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize("case", ["claims_1_5_gb", "deflate_size_lie", "huge_directory"])
def test_claims_are_refused_without_reading_them(crafted, case):
    path = crafted(case)
    tracemalloc.start()
    try:
        with pytest.raises(WeightFileError):
            npz_shapes(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak


def test_a_deflated_1_5_gb_array_is_checked_from_its_header_alone(tmp_path):
    path = tmp_path / "zeros.npz"
    path.write_bytes(DEFLATED_ZEROS)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        assert npz_shapes(path) == {"a": ((CLAIMED,), "<f4")}
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 2 and peak < 2**20, (elapsed, peak)
    done = archdsl_weights(MINI, path)
    assert done.returncode == 1, done.stderr
    assert f"extra     a ({CLAIMED}): not in {MINI}" in done.stdout


def test_escaped_member_name_is_printed_escaped(tmp_path):
    path = tmp_path / "red.npz"
    path.write_bytes(ESCAPE_NAMED)
    done = archdsl_weights(MINI, path)
    assert done.returncode == 1, done.stderr
    assert "extra     \\x1b[31mred (2 x 3)" in done.stdout
    assert "\x1b" not in done.stdout + done.stderr


def test_not_a_regular_file_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "weights.npz"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        with pytest.raises(WeightFileError, match="not a regular file"):
            npz_shapes(path)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_numpy_files_are_read_from_their_headers(tmp_path, save):
    arrays = {
        "conv.weight": np.ones((4, 3, 2, 2), np.float32),
        "fortran": np.asfortranarray(np.ones((3, 5), np.float64)),
        "steps": np.int64(7),
        "codes": np.arange(6, dtype=np.uint8),
        "empty": np.zeros((0, 7), np.float16),
    }
    save(tmp_path / "w.npz", **arrays)
    found = npz_shapes(tmp_path / "w.npz")
    assert found == {name: (a.shape, a.dtype.str) for name, a in arrays.items()}


def test_a_fitting_file_matches(tmp_path):
    checked = check_source(MINI.read_text(), str(MINI))
    tensors = expected_tensors(checked.report)
    np.savez(tmp_path / "w.npz", **{n: np.zeros(s, np.float32) for n, s in tensors.items()})
    done = archdsl_weights(MINI, tmp_path / "w.npz")
    assert done.returncode == 0, done.stderr
    assert f"matches {MINI}: {len(tensors)} of {len(tensors)} tensors fit" in done.stdout


def test_printable_shows_control_characters():
    assert printable("a\x1b[31m\n\t\u202e é\udcff") == "a\\x1b[31m\\n\\t\\u202e é\\udcff"
    assert printable("conv1.conv.weight") == "conv1.conv.weight"
