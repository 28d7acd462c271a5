"""`archdsl fmt`: rewrite specs in place (atomically), check them (--check), or filter stdin."""

from __future__ import annotations

import difflib
import os
import sys
import tempfile

from archdsl.cli import EXIT_ERRORS, EXIT_OK, UsageError, _color, _read, _say
from archdsl.diagnostics import render, visible
from archdsl.formatter import format_source
from archdsl.syntax import SyntaxFailure


def cmd_fmt(args) -> int:
    """Format each FILE (or stdin); exit 1 when one does not parse or, with --check, would change."""
    if args.stdin == bool(args.files):
        raise UsageError("fmt: give spec files, or --stdin (not both)")
    if args.stdin:
        return _fmt_stdin(args.check)
    return max(_fmt_file(path, args.check) for path in args.files)


def _fmt_stdin(check: bool) -> int:
    """Format the spec on stdin to stdout (with --check: print its diff instead)."""
    text = sys.stdin.read()
    formatted = _formatted(text, "<stdin>")
    if formatted is None:
        return EXIT_ERRORS
    if check:
        return _report_diff(text, formatted, "<stdin>")
    sys.stdout.write(formatted)
    return EXIT_OK


def _fmt_file(path: str, check: bool) -> int:
    """Format one file in place when it changes (with --check: print its diff instead)."""
    text = _read(path)
    formatted = _formatted(text, visible(path))
    if formatted is None:
        return EXIT_ERRORS
    if check:
        return _report_diff(text, formatted, visible(path))
    if formatted != text:
        write_atomically(path, formatted)
        _say(f"{visible(path)}: reformatted", sys.stderr)
    return EXIT_OK


def _formatted(text: str, shown: str) -> str | None:
    """The formatted spec, or None after printing the syntax error that stops it."""
    try:
        return format_source(text, shown)
    except SyntaxFailure as exc:
        _say(render(exc.diagnostic, text, _color(sys.stderr)), sys.stderr)
        return None


def _report_diff(text: str, formatted: str, shown: str) -> int:
    """Print the unified diff from `text` to `formatted`; 1 when there is one."""
    if formatted == text:
        return EXIT_OK
    diff = difflib.unified_diff(
        text.splitlines(keepends=True),
        formatted.splitlines(keepends=True),
        fromfile=shown,
        tofile=f"{shown} (formatted)",
    )
    sys.stdout.write("".join(line if line.endswith("\n") else line + "\n" for line in diff))
    return EXIT_ERRORS


def write_atomically(path: str, text: str) -> None:
    """Replace the file (through a symlink, the file it names) with `text`: a temporary file in
    the same folder, flushed to disk, then renamed over it, keeping the file's permissions."""
    target = os.path.realpath(path)
    mode = os.stat(target).st_mode & 0o7777
    folder, name = os.path.split(target)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".fmt", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
