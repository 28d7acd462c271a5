"""Diagnostics: what went wrong or looks wrong, where, and what to do about it."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from archdsl.ir import Span

Severity = Literal["error", "warning", "info"]

CATALOGUE: dict[str, str] = {
    "E001": "syntax error",
    "E002": "unknown op",
    "E003": "unknown argument",
    "E004": "wrong argument type or value",
    "E005": "missing argument",
    "E006": "zero, negative or too large size, or a limit of the compiler passed",
    "E007": "non-positive output size",
    "E008": "groups or chunks do not divide the channels",
    "E009": "duplicate name",
    "E010": "undefined name",
    "E011": "cycle between statements",
    "E012": "dense layer on a spatial tensor",
    "E013": "inputs of concat/add/mul do not fit together",
    "E014": "shape differs from `expect`",
    "E015": "reserved or unsafe identifier",
    "E016": "argument given twice or too many positional arguments",
    "E017": "missing or repeated declaration",
    "E018": "op applied to a tensor of the wrong rank",
    "E019": "invalid train setting",
    "W101": "window does not tile its input",
    "W102": "spatial size collapsed to 1x1 before a larger kernel",
    "W103": "unused statement",
    "W104": "maps collapsed to 1x1 by windows before flatten",
    "W105": "the output is a map, not class scores, in a spec that trains",
    "W106": "one layer past 2**31 - 1 elements",
    "I201": "softmax before a cross-entropy loss: trained on logits",
    "I202": "LRN after a grouped conv mixes the groups (the two-tower net would not)",
}


@dataclass(frozen=True)
class Diagnostic:
    """One finding, with a stable code, a severity, a source span, a message and a hint."""

    code: str
    severity: Severity
    span: Span | None
    message: str
    hint: str = ""

    def as_dict(self) -> dict:
        """The diagnostic as plain data, for `--format json`."""
        s = self.span
        return {
            "code": self.code,
            "severity": self.severity,
            "file": s.file if s else None,
            "line": s.line if s else None,
            "column": s.column if s else None,
            "end_line": s.end_line if s else None,
            "end_column": s.end_column if s else None,
            "message": self.message,
            "hint": self.hint,
        }


def located(d: Diagnostic, via: str | None) -> Diagnostic:
    """A diagnostic from inside a block, naming the call it came through (once: the innermost)."""
    if via is None or "(in block `" in d.message:
        return d
    return Diagnostic(d.code, d.severity, d.span, f"{d.message} ({via})", d.hint)


def error(code: str, span: Span | None, message: str, hint: str = "") -> Diagnostic:
    """An error-level diagnostic."""
    return Diagnostic(code, "error", span, message, hint)


def warning(code: str, span: Span | None, message: str, hint: str = "") -> Diagnostic:
    """A warning-level diagnostic."""
    return Diagnostic(code, "warning", span, message, hint)


def info(code: str, span: Span | None, message: str, hint: str = "") -> Diagnostic:
    """An info-level diagnostic."""
    return Diagnostic(code, "info", span, message, hint)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A 'did you mean X?' hint, or a list of the choices when nothing is close."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    return "expected one of: " + ", ".join(f"`{c}`" for c in choices)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """True when any diagnostic is an error."""
    return any(d.severity == "error" for d in diagnostics)


def sort_key(d: Diagnostic) -> tuple:
    """Source order, then code."""
    return (d.span.line, d.span.column, d.code) if d.span else (0, 0, d.code)


EXCERPT_CHARS = 1000  # a longer source line is shown cut to this many characters around the span
# control characters, DEL, C1, lone surrogates, and the invisible format characters that
# reorder or hide text in a terminal (bidirectional overrides and isolates, zero widths)
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def visible(text: str) -> str:
    """`text` with control and invisible format characters and lone surrogates shown as
    escapes like `\\x1b` or `\\u202e`."""
    return _INVISIBLE.sub(_escape, text)


def _escape(match: re.Match) -> str:
    """The printable escape of one invisible character."""
    char = match.group()
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def _cells(text: str) -> int:
    """How many terminal columns `text` takes (wide characters two, combining marks none)."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def source_lines(source: str) -> list[str]:
    """The lines of a source as lark counts them (a line ends at `\\n` only)."""
    return source.split("\n")


def render(d: Diagnostic, source: str | Sequence[str] | None, color: bool = False) -> str:
    """Render like a compiler: file:line:col, the source line, a caret, the hint.

    `source` is the text or, to render many diagnostics of one file, its `source_lines`.
    Everything taken from the input is passed through `visible`.
    """
    tint = {"error": "31", "warning": "33", "info": "36"}[d.severity]
    head = f"{d.severity}[{d.code}]"
    if color:
        head = f"\x1b[1;{tint}m{head}\x1b[0m"
    where = f"{visible(d.span.file)}:{d.span.line}:{d.span.column}: " if d.span else ""
    lines = [f"{where}{head}: {visible(d.message)}"]
    if d.span and source is not None:
        lines += _excerpt(d.span, source_lines(source) if isinstance(source, str) else source)
    if d.hint:
        lines.append(f"  = hint: {visible(d.hint)}")
    return "\n".join(lines)


def _excerpt(span: Span, text: Sequence[str]) -> list[str]:
    """The source line of a span, made visible and cut around it, with carets under the span."""
    if not 1 <= span.line <= len(text):
        return []
    line = text[span.line - 1].rstrip("\r").expandtabs(1)
    start = max(0, span.column - 1)
    end = span.end_column - 1 if span.end_line == span.line else len(line)
    first = max(0, min(start - EXCERPT_CHARS // 4, len(line) - EXCERPT_CHARS))  # shown from
    last = min(len(line), first + EXCERPT_CHARS)  # shown up to
    stop = max(start, min(end, last))  # the marked part ends
    before = ("..." if first else "") + visible(line[first:start])
    marked = visible(line[start:stop])
    after = visible(line[stop:last]) + ("..." if last < len(line) else "")
    gutter = str(span.line)
    pad = " " * len(gutter)
    return [
        f" {pad} |",
        f" {gutter} | {before}{marked}{after}",
        f" {pad} | {' ' * _cells(before)}{'^' * max(1, _cells(marked))}",
    ]
