"""Positions between the front end (1-based, code points) and LSP (0-based, client units)."""

from __future__ import annotations

from dataclasses import dataclass

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition, ServerTextRange

from archdsl.ir import Span
from archdsl.syntax import Pos


@dataclass(frozen=True)
class Place:
    """A place in a document: 0-based line and column in code points."""

    line: int
    column: int


def inside(place: Place, span: Span | Pos) -> bool:
    """Whether `place` falls on `span` (its end included: a cursor just after a name is on it)."""
    start = (span.line - 1, span.column - 1)
    end = (span.end_line - 1, span.end_column - 1)
    return start <= (place.line, place.column) <= end


def to_range(span: Span | Pos, lines: list[str], codec: PositionCodec) -> types.Range:
    """The LSP range of a front-end span (at least one character wide)."""
    end_column = (
        span.end_column
        if (span.end_line, span.end_column) > (span.line, span.column)
        else span.column + 1
    )
    server = ServerTextRange(
        ServerTextPosition(span.line - 1, span.column - 1),
        ServerTextPosition(span.end_line - 1, end_column - 1),
    )
    return codec.range_to_client_units(lines, server)


def to_place(position: types.Position, lines: list[str], codec: PositionCodec) -> Place:
    """A client position as a Place."""
    server = codec.position_from_client_units(lines, position)
    return Place(server.line, server.character)


def whole(lines: list[str], codec: PositionCodec) -> types.Range:
    """The range of a whole document."""
    end = ServerTextPosition(len(lines) - 1, len(lines[-1]))
    return codec.range_to_client_units(lines, ServerTextRange(ServerTextPosition(0, 0), end))
