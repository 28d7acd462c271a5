"""One document's front-end results, computed once per version of its text."""

from __future__ import annotations

from dataclasses import dataclass

from archdsl.compiler import Checked, check_source
from archdsl.diagnostics import source_lines
from archdsl.lsp.symbols import Symbols, index


@dataclass(frozen=True)
class Analysis:
    """What the front end learned about one version of a document, and its lines."""

    checked: Checked
    symbols: Symbols | None  # None: the text does not parse
    lines: list[str]

    @property
    def source(self) -> str:
        """The text as checked (newlines as lark counts them)."""
        return self.checked.source


def analyse(text: str, file: str) -> Analysis:
    """Check `text` (as `archdsl check` does) and index its names when it parses."""
    source = normalised(text)
    checked = check_source(source, file)
    lines = source_lines(checked.source)
    if checked.module is None:
        return Analysis(checked, None, lines)
    return Analysis(checked, index(checked.module, checked.source), lines)


def normalised(text: str) -> str:
    """The text with the newlines `archdsl check` reads (CR LF and CR become LF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class Cache:
    """The analysis of each open document's latest version."""

    def __init__(self):
        self._entries: dict[str, tuple[int | None, str, Analysis]] = {}
        self._parsed: dict[str, Symbols] = {}  # the last version of each document that parsed

    def get(self, uri: str, version: int | None, text: str, file: str) -> Analysis:
        """The analysis of this version of `uri`, computed only when the text changed."""
        entry = self._entries.get(uri)
        if entry is not None and entry[0] == version and entry[1] == text:
            return entry[2]
        result = analyse(text, file)
        self._entries[uri] = (version, text, result)
        if result.symbols is not None:
            self._parsed[uri] = result.symbols
        return result

    def last_parsed(self, uri: str) -> Symbols | None:
        """The names of the latest version of `uri` that parsed (for completion while typing)."""
        return self._parsed.get(uri)

    def drop(self, uri: str) -> None:
        """Forget a closed document."""
        self._entries.pop(uri, None)
        self._parsed.pop(uri, None)
