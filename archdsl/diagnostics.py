"""Diagnostics: what went wrong or looks wrong, where, and what to do about it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
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
    "E006": "zero or negative size",
    "E007": "non-positive output size",
    "E008": "groups do not divide the channels",
    "E009": "duplicate name",
    "E010": "undefined name",
    "E011": "cycle between statements",
    "E012": "dense layer on a spatial tensor",
    "E013": "inputs of concat/add do not fit together",
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


def render(d: Diagnostic, source: str | None, color: bool = False) -> str:
    """Render like a compiler: file:line:col, the source line, a caret, the hint."""
    tint = {"error": "31", "warning": "33", "info": "36"}[d.severity]
    head = f"{d.severity}[{d.code}]"
    if color:
        head = f"\x1b[1;{tint}m{head}\x1b[0m"
    where = f"{d.span.file}:{d.span.line}:{d.span.column}: " if d.span else ""
    lines = [f"{where}{head}: {d.message}"]
    if d.span and source is not None:
        lines += _excerpt(d.span, source)
    if d.hint:
        lines.append(f"  = hint: {d.hint}")
    return "\n".join(lines)


def _excerpt(span: Span, source: str) -> list[str]:
    """The source line of a span with carets under it."""
    text = source.split("\n")  # lark counts lines at \n only
    if not 1 <= span.line <= len(text):
        return []
    line = text[span.line - 1].rstrip("\r").expandtabs(1)
    end = span.end_column if span.end_line == span.line else len(line) + 1
    width = max(1, end - span.column)
    gutter = str(span.line)
    pad = " " * len(gutter)
    return [
        f" {pad} |",
        f" {gutter} | {line}",
        f" {pad} | {' ' * (span.column - 1)}{'^' * width}",
    ]
