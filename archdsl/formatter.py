"""`archdsl fmt` as a library: spec text in, the same spec in the canonical layout out."""

from __future__ import annotations

from archdsl.formatter_items import Writer
from archdsl.formatter_source import read


def format_source(text: str, path: str = "<stdin>") -> str:
    """The spec laid out canonically, every comment kept; raises syntax.SyntaxFailure (the front
    end's diagnostic) when the text does not parse."""
    source = read(text.removeprefix("\ufeff"), path)
    writer = Writer(source)
    lines = writer.container(list(source.tree.children), None, "")
    return "\n".join(lines) + "\n" if lines else ""
