"""`archdsl` on hostile and careless input: specs, file names, flags, manifests, weights files.

Each case: the one printable stderr line (key words, exit code, no traceback) and nothing
changed under the case's folder but the run's own folders (hostile_harness.Untouched). The
cases tests/unit (test_cli_hostile, test_emit_safety, test_render_escapes, test_npz_hostile)
already run are not repeated; these are the ones they leave out.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_harness import TINY, archdsl, tiny_spec
from hostile_harness import CASE_SECONDS, ENV, QUICK, Untouched, compile_tiny, lines, one_line
from npz_crafts import ESCAPE_NAMED

from archdsl.cli import main

MANIFEST = ".archdsl-manifest.json"
VGG16 = Path(__file__).resolve().parents[2] / "specs" / "zoo" / "vgg16.arch"  # a large spec


def dev_zero(folder, name):
    """/dev/zero itself."""
    return "/dev/zero"


def link_to_dev_zero(folder, name):
    """A symbolic link named `name` to /dev/zero."""
    (folder / name).symlink_to("/dev/zero")
    return folder / name


def fifo(folder, name):
    """A FIFO named `name` (reading it would wait for a writer forever)."""
    os.mkfifo(folder / name)
    return folder / name


def a_folder(folder, name):
    """A folder named `name`."""
    (folder / name).mkdir()
    return folder / name


NOT_FILES = [dev_zero, link_to_dev_zero, fifo]

# ----------------------------------------------------------------------------- specs


def test_a_spec_that_is_not_utf8_is_one_line_and_nothing_is_built(tmp_path):
    spec = tmp_path / "latin1.arch"
    spec.write_bytes(TINY.replace("Tiny", "T\xefny").encode("latin-1"))
    with Untouched(tmp_path):
        for command in (["check"], ["shapes", "--format", "json"], ["compile"], ["train"]):
            done = archdsl(command[0], spec, *command[1:], cwd=tmp_path, timeout=CASE_SECONDS)
            one_line(done, 2, f"error[usage]: {spec}: not UTF-8 text (byte 7)")


@pytest.mark.parametrize("make", NOT_FILES, ids=lambda f: f.__name__)
def test_train_refuses_a_spec_that_is_not_a_regular_file_unread(tmp_path, make):
    path = make(tmp_path, "spec.arch")
    with Untouched(tmp_path):
        for command in (["check"], ["train", *QUICK]):
            done = archdsl(command[0], path, *command[1:], cwd=tmp_path, timeout=CASE_SECONDS)
            one_line(done, 2, f"error[usage]: {path}: not a regular file")


# ----------------------------------------------------------------------------- file names


def test_a_newline_in_a_file_name_stays_on_its_line(tmp_path):
    (tmp_path / "two\nlines.arch").write_text(TINY)
    with Untouched(tmp_path, tmp_path / "build"):
        done = archdsl("check", "two\nlines.arch", cwd=tmp_path, timeout=CASE_SECONDS)
        one_line(done, 0, "two\\nlines.arch: no problems")
        done = archdsl("compile", "two\nlines.arch", cwd=tmp_path, timeout=CASE_SECONDS)
        assert done.returncode == 0 and lines(done) == []
        assert re.match(r"wrote \d+ files to build/two\\nlines-torch/ \(", done.stdout.decode())
        assert done.stdout.count(b"\n") == 1
        done = archdsl("check", "no\nsuch.arch", cwd=tmp_path, timeout=CASE_SECONDS)
        one_line(done, 2, "error[usage]: no\\nsuch.arch: no such file")


def test_a_spec_name_too_long_for_its_build_folder_is_one_line(tmp_path):
    spec = tiny_spec(tmp_path, "x" * 250 + ".arch")
    with Untouched(tmp_path, tmp_path / "build"):
        done = archdsl("train", spec.name, *QUICK, cwd=tmp_path, timeout=CASE_SECONDS)
        one_line(done, 2, "-torch: cannot write the output here: File name too long")


HOSTILE_SPEC = b"n\xff\x1b[31m\n.arch"  # not UTF-8, a colour code and a newline
HOSTILE_FOLDER = b"same\xff\x1b]0;x\x07"  # a terminal title escape


def test_train_with_unprintable_names_and_one_folder_for_build_and_run(tmp_path):
    """The names are shown escaped (TensorBoard, which cannot take them, is skipped with a
    warning); a second train refuses to compile over the run's files."""
    (tmp_path / os.fsdecode(HOSTILE_SPEC)).write_text(TINY)
    same = tmp_path / os.fsdecode(HOSTILE_FOLDER)
    args = ("train", HOSTILE_SPEC, "--build-dir", same, "--run-dir", same, *QUICK)
    with Untouched(tmp_path, same):
        done = archdsl(*args, cwd=tmp_path, env=ENV, timeout=120)
        assert done.returncode == 0, done.stderr
        command, board = lines(done)  # TensorBoard's writers take only UTF-8 names
        assert board.startswith("warning: no TensorBoard event files") and "UTF-8" in board
        out = done.stdout.decode("utf-8")
        assert all(line.isprintable() for line in out.splitlines()), out
        assert command.startswith("$ ") and "same\\udcff\\x1b]0;x\\x07/train.py" in command
        assert "Tiny (n\\udcff\\x1b[31m\\n.arch): 386 parameters" in out
    checkpoint = (same / "last.pt").stat()
    with Untouched(tmp_path):
        line = one_line(archdsl(*args, cwd=tmp_path, env=ENV, timeout=CASE_SECONDS))
        assert "refusing to overwrite files archdsl did not write: .lock, last.pt" in line
    assert (same / "last.pt").stat().st_mtime_ns == checkpoint.st_mtime_ns


def test_a_closed_stderr_is_no_crash(tmp_path):
    """With fd 2 closed, Python's sys.stderr is None: messages fall back to stdout as print()'s
    do (cli.py's _color and the trainers' progress bar once called None.isatty(): exit 1)."""
    spec = tiny_spec(tmp_path)
    (tmp_path / "bad.arch").write_text(TINY.replace("dense", "dnese"))

    def without_stderr(*args):
        command = [sys.executable, "-m", "archdsl", *map(str, args)]
        return subprocess.run(
            command,
            cwd=tmp_path,
            env={**os.environ, **ENV},
            stdout=subprocess.PIPE,
            preexec_fn=lambda: os.close(2),
            timeout=120,
        )

    with Untouched(tmp_path, tmp_path / "out", tmp_path / "run"):
        done = without_stderr("compile", spec, "-o", "out")
        assert done.returncode == 0 and re.match(rb"wrote \d+ files to out/ \(", done.stdout)
        assert (tmp_path / "out" / "model.py").is_file()
        done = without_stderr("check", "bad.arch")
        assert done.returncode == 1 and b"bad.arch:3:21: error[E002]: " in done.stdout
        done = without_stderr("train", spec, "--build-dir", "out", "--run-dir", "run", *QUICK)
        assert done.returncode == 0 and b"$ " in done.stdout, done.stdout
        assert (tmp_path / "run" / "last.pt").is_file()


# ----------------------------------------------------------------------------- flags


def test_a_build_dir_under_a_file_is_one_line_and_nothing_runs(tmp_path):
    spec = tiny_spec(tmp_path)
    (tmp_path / "afile").write_text("mine")
    with Untouched(tmp_path):
        done = archdsl("train", spec, "--build-dir", "afile/x", *QUICK, cwd=tmp_path)
        one_line(done, 2, "error[usage]: afile/x: cannot write the output here: Not a directory")


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_a_run_dir_under_a_file_is_the_trainers_one_line(tmp_path, backend):
    spec = tiny_spec(tmp_path)
    (tmp_path / "afile").write_text("mine")
    args = ("train", spec, "--backend", backend, "--run-dir", "afile/x", *QUICK)
    with Untouched(tmp_path, tmp_path / "build"):
        done = archdsl(*args, cwd=tmp_path, env=ENV, timeout=120)
        assert done.returncode == 2
        command, error = lines(done)  # the trainer's command line, then its one error
        assert command.startswith("$ ") and command.endswith(f"--out afile/x {' '.join(QUICK)}")
        assert error == (
            "error: --out afile/x: cannot write the run there (Not a directory); pass another --out"
        )


FORMATS = ["table", "json", "markdown"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_batch_past_the_size_cap_is_one_line(tmp_path, fmt):
    """--batch once took any number: 10**305 overflowed the report's float (OverflowError),
    4,299 nines its JSON integers (ValueError); now it has the cap of every size."""
    spec = tiny_spec(tmp_path)
    with Untouched(tmp_path):
        for batch, shown in [
            ("9" * 4299, "a number of 4,299 digits"),
            ("2147483648", "2147483648"),
        ]:
            done = archdsl("shapes", spec, "--batch", batch, "--format", fmt, cwd=tmp_path)
            one_line(done, 2, f"argument --batch: expected at most 2147483647, got {shown}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_largest_batch_reports_a_large_spec(fmt, capsys):
    assert main(["shapes", str(VGG16), "--batch", "2147483647", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "2147483647" in out or "2,147,483,647" in out


# ----------------------------------------------------------------------------- manifests


def test_a_manifest_that_is_a_fifo_is_refused_unread(tmp_path):
    spec, out = tiny_spec(tmp_path), compile_tiny(tmp_path / "out", "torch")
    (out / MANIFEST).unlink()
    os.mkfifo(out / MANIFEST)
    with Untouched(tmp_path):
        done = archdsl("compile", spec, "-o", out, cwd=tmp_path, timeout=CASE_SECONDS)
        one_line(done, 2, f"{out / MANIFEST}: not a regular file, not a manifest archdsl wrote")


def test_a_manifest_over_the_size_limit_is_refused_unread(tmp_path):
    spec, out = tiny_spec(tmp_path), compile_tiny(tmp_path / "out", "torch")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["padding"] = " " * (1 << 20)
    (out / MANIFEST).write_text(json.dumps(manifest))
    with Untouched(tmp_path):
        done = archdsl("compile", spec, "-o", out, cwd=tmp_path, timeout=CASE_SECONDS)
        one_line(done, 2, "larger than 1024 KiB, not a manifest archdsl wrote", "--force")


def test_train_with_an_unsafe_manifest_in_its_build_dir_runs_nothing(tmp_path):
    spec, out = tiny_spec(tmp_path), compile_tiny(tmp_path / "out", "torch")
    victim = tmp_path / "victim.py"
    victim.write_text("precious = 1\n")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"]["../victim.py"] = manifest["files"]["model.py"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    with Untouched(tmp_path):  # no runs/ either: the trainer never starts
        done = archdsl("train", spec, "--build-dir", out, *QUICK, cwd=tmp_path)
        one_line(done, 2, "unsafe or malformed entry '../victim.py'", "--force")


# ----------------------------------------------------------------------------- weights files


@pytest.mark.parametrize("make", [*NOT_FILES, a_folder], ids=lambda f: f.__name__)
def test_weights_refuses_a_file_that_is_not_regular_unread(tmp_path, make):
    spec = tiny_spec(tmp_path)
    path = make(tmp_path, "w.npz")
    with Untouched(tmp_path):
        done = archdsl("weights", spec, path, cwd=tmp_path, timeout=CASE_SECONDS)
        one_line(done, 2, f"error[usage]: {path}: not a regular file")


def test_a_weights_file_name_and_its_member_names_are_shown_escaped(tmp_path):
    spec = tiny_spec(tmp_path)
    name = b"w\xff\x1b[2J.npz"
    (tmp_path / os.fsdecode(name)).write_bytes(ESCAPE_NAMED)
    with Untouched(tmp_path):
        done = archdsl("weights", spec, name, cwd=tmp_path, timeout=CASE_SECONDS)
    assert done.returncode == 1 and lines(done) == []
    out = done.stdout.decode("utf-8").splitlines()
    assert all(line.isprintable() for line in out), out
    assert "extra     \\x1b[31mred (2 x 3): not in " in "\n".join(out)
    assert out[-1] == f"w\\udcff\\x1b[2J.npz does not match {spec}: 0 of 2 tensors fit"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_an_unreadable_weights_file_is_one_line(tmp_path):
    spec = tiny_spec(tmp_path)
    path = tmp_path / "locked.npz"
    path.write_bytes(ESCAPE_NAMED)
    path.chmod(stat.S_IWUSR)
    with Untouched(tmp_path):
        done = archdsl("weights", spec, path, cwd=tmp_path, timeout=CASE_SECONDS)
        one_line(done, 2, f"{path}: cannot be read (Permission denied)")
