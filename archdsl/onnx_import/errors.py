"""The importer's one-line errors: the file cannot be read, or a node cannot be expressed."""

from __future__ import annotations

from archdsl.diagnostics import visible

NAME_SHOWN = 80  # characters of a node's name an error message shows


class ImportFailure(Exception):
    """The ONNX file cannot be read or written from (a one-line message; exit code 2)."""


class Unsupported(Exception):
    """The model holds something the language cannot express (a one-line message; exit 1)."""


def unsupported(node, why: str) -> Unsupported:
    """The error for `node` (a graph.Node): its position, name and op type, then why."""
    shown = node.name if len(node.name) <= NAME_SHOWN else node.name[:NAME_SHOWN] + "..."
    name = f"'{visible(shown)}'" if node.name else "(unnamed)"
    return Unsupported(f"node {node.position} {name} ({visible(node.op_type)}): {why}")


def first_line(exc: Exception) -> str:
    """The first line of an exception's message (its type when it has none), cut and escaped."""
    text = str(exc).strip()
    return visible(text.splitlines()[0][:300] if text else type(exc).__name__)
