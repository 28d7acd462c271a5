"""`archdsl fmt` on the command line: in-place rewrites (atomic, only when something changes),
--check with a unified diff, --stdin, syntax errors that leave the file alone, usage errors."""

from __future__ import annotations

import io
import os
import stat

import pytest
from core_helpers import run_inprocess

from archdsl import formatter_cli
from archdsl.formatter import format_source

MESSY = "model M\ninput image : 3x8x8\nconv1=conv(4,kernel=3)|>relu   # features\nhead = flatten\n"
TIDY = "model M\ninput image: 3 x 8 x 8\nconv1 = conv(4, kernel=3) |> relu  # features\nhead  = flatten\n"
BROKEN = "model M\ninput image: 3 x 8 x 8\nconv1 = conv(4,, kernel=3)\n"


def _spec(tmp_path, text: str, name: str = "spec.arch"):
    """A spec file holding `text`."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_tidy_text_is_what_the_library_gives():
    """The file the CLI tests expect is format_source's output (and a fixed point)."""
    assert format_source(MESSY) == TIDY == format_source(TIDY)


def test_check_prints_a_diff_and_exits_1_without_writing(tmp_path, capsys):
    """--check: a unified diff of each file that would change, exit 1, the file untouched."""
    messy, tidy = _spec(tmp_path, MESSY), _spec(tmp_path, TIDY, "tidy.arch")
    code, out, err = run_inprocess(capsys, "fmt", "--check", str(messy), str(tidy))
    assert code == 1 and err == ""
    assert messy.read_text() == MESSY
    lines = out.splitlines()
    assert lines[:2] == [f"--- {messy}", f"+++ {messy} (formatted)"]
    assert "-conv1=conv(4,kernel=3)|>relu   # features" in lines
    assert "+conv1 = conv(4, kernel=3) |> relu  # features" in lines
    assert "+head  = flatten" in lines and "-head = flatten" in lines
    assert str(tidy) not in out
    assert run_inprocess(capsys, "fmt", "--check", str(tidy)) == (0, "", "")


def test_fmt_rewrites_a_file_once_keeping_its_mode(tmp_path, capsys):
    """The file is replaced by its formatted text (mode kept, no temporary left); a formatted
    file is not written at all."""
    path = _spec(tmp_path, MESSY)
    os.chmod(path, 0o640)
    code, out, err = run_inprocess(capsys, "fmt", str(path))
    assert (code, out, err) == (0, "", f"{path}: reformatted\n")
    assert path.read_text() == TIDY
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.arch"]
    before = path.stat()
    assert run_inprocess(capsys, "fmt", str(path)) == (0, "", "")
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_fmt_through_a_symlink_rewrites_the_target(tmp_path, capsys):
    """A spec reached through a symlink: the link stays, the file it names is formatted."""
    target = _spec(tmp_path, MESSY)
    link = tmp_path / "link.arch"
    link.symlink_to(target.name)
    assert run_inprocess(capsys, "fmt", str(link))[0] == 0
    assert link.is_symlink() and target.read_text() == TIDY


def test_a_syntax_error_leaves_the_file_byte_identical(tmp_path, capsys):
    """A spec that does not parse: the diagnostic `archdsl check` prints, exit 1, the file and
    the folder unchanged, and the other files still formatted."""
    bad, messy = _spec(tmp_path, BROKEN), _spec(tmp_path, MESSY, "other.arch")
    raw = bad.read_bytes()
    code, out, err = run_inprocess(capsys, "fmt", str(bad), str(messy))
    assert code == 1 and out == ""
    assert err.splitlines()[0] == f"{bad}:3:16: error[E001]: syntax error: unexpected `,`"
    _, _, checked = run_inprocess(capsys, "check", str(bad))
    assert err.splitlines()[:4] == checked.splitlines()[:4]
    assert bad.read_bytes() == raw and messy.read_text() == TIDY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.arch", "spec.arch"]


def test_a_failed_write_keeps_the_original(tmp_path, capsys, monkeypatch):
    """When the rename fails (a full disk, a read-only folder) the spec keeps its text, the
    temporary file is removed, and the error is one line with exit 2."""
    path = _spec(tmp_path, MESSY)

    def refuse(source, target):
        raise OSError(28, "No space left on device", target)

    monkeypatch.setattr(formatter_cli.os, "replace", refuse)
    code, out, err = run_inprocess(capsys, "fmt", str(path))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "No space left on device" in err
    assert path.read_text() == MESSY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.arch"]


def test_stdin_is_formatted_to_stdout(capsys, monkeypatch):
    """--stdin: the formatted spec on stdout; --check with it: the diff and exit 1."""
    monkeypatch.setattr("sys.stdin", io.StringIO(MESSY))
    assert run_inprocess(capsys, "fmt", "--stdin") == (0, TIDY, "")
    monkeypatch.setattr("sys.stdin", io.StringIO(MESSY))
    code, out, _ = run_inprocess(capsys, "fmt", "--stdin", "--check")
    assert code == 1 and out.startswith("--- <stdin>\n+++ <stdin> (formatted)\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(BROKEN))
    code, out, err = run_inprocess(capsys, "fmt", "--stdin")
    assert (code, out) == (1, "") and err.startswith("<stdin>:3:16: error[E001]")


@pytest.mark.parametrize(
    "argv",
    [("fmt",), ("fmt", "--stdin", "spec.arch"), ("fmt", "missing.arch"), ("fmt", "--colour")],
)
def test_bad_usage_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv):
    """No file, a file and --stdin, a missing file, an unknown flag: one line, exit 2."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_inprocess(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "error" in err
