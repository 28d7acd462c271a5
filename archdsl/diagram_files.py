"""Writing a diagram: the DOT source as it is, SVG and PNG drawn by Graphviz's `dot` program.

Every file written carries a mark (the DOT source's first line, a comment in the SVG, a tEXt
chunk in the PNG), so that a later `archdsl diagram` may replace it; any other file it replaces
only with --force.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import graphviz

from archdsl import targets
from archdsl.backends.common.metrics_log import atomic_write
from archdsl.diagram import MARK, Drawing

FORMATS = {".dot": "dot", ".svg": "svg", ".png": "png"}
INSTALL = "apt install graphviz / brew install graphviz"
HEAD = 4096  # bytes read to recognise a diagram archdsl wrote
DOT_MARK = f"// {MARK}\n".encode()
SVG_MARK = f"<!-- {MARK} -->".encode()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_HEADER_END = 33  # the signature and the IHDR chunk (13 bytes of data)
PNG_TEXT = b"Software\x00" + MARK.encode()


class DiagramError(Exception):
    """The diagram cannot be drawn or written (a one-line message)."""


def output_format(out: Path) -> str:
    """Graphviz's name of the format the file name asks for: dot, svg or png."""
    if out.suffix.lower() not in FORMATS:
        raise DiagramError(
            f"{out}: cannot tell the diagram's format from this name; "
            "end the file name in .svg, .png or .dot"
        )
    return FORMATS[out.suffix.lower()]


def write_diagram(drawing: Drawing, out: Path, force: bool) -> str:
    """Write the drawing in the format `out` names; the line that reports it."""
    fmt = output_format(out)
    try:
        targets.check_target(out, force, written_by_archdsl, f"{out.suffix} file", "draw")
    except targets.TargetError as exc:
        raise DiagramError(str(exc)) from None
    data = drawing.source.encode() if fmt == "dot" else render(drawing.source, fmt, out)
    try:
        atomic_write(out, lambda f: f.write(data))
    except OSError as exc:
        raise DiagramError(f"{out}: cannot write the diagram here: {exc.strerror or exc}") from None
    counts = f"{drawing.nodes} nodes, {drawing.edges} edges, {drawing.clusters} clusters"
    if fmt != "dot":
        return f"wrote {out} ({counts})"
    svg = out.with_suffix(".svg")
    return f"wrote {out} ({counts}); draw it with `dot -Tsvg {out} -o {svg}` (Graphviz: {INSTALL})"


def render(source: str, fmt: str, out: Path) -> bytes:
    """The DOT source drawn by Graphviz's `dot` as SVG or PNG, with archdsl's mark."""
    try:
        data = graphviz.pipe("dot", fmt, source.encode(), quiet=True)
    except graphviz.ExecutableNotFound:
        raise DiagramError(
            f"{out}: drawing {fmt.upper()} needs Graphviz's `dot` program, which is not "
            f"installed ({INSTALL}); `-o {out.with_suffix('.dot')}` writes the DOT source alone"
        ) from None
    except graphviz.CalledProcessError as exc:
        reason = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise DiagramError(
            f"{out}: Graphviz's dot failed: {reason[0] if reason else exc}"
        ) from None
    return marked_png(data) if fmt == "png" else data


def marked_png(png: bytes) -> bytes:
    """The PNG with a tEXt chunk `Software: archdsl diagram` right after its header chunk."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise DiagramError("Graphviz's dot wrote no PNG (is its PNG renderer installed?)")
    chunk = b"tEXt" + PNG_TEXT
    text = struct.pack(">I", len(PNG_TEXT)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return png[:PNG_HEADER_END] + text + png[PNG_HEADER_END:]


def written_by_archdsl(path: Path) -> bool:
    """True for a DOT, SVG or PNG file that carries archdsl's mark."""
    with open(path, "rb") as f:
        head = f.read(HEAD)
    if head.startswith(PNG_SIGNATURE):
        return head[PNG_HEADER_END + 4 :].startswith(b"tEXt" + PNG_TEXT)
    if head.startswith(b"<?xml"):
        return SVG_MARK in head
    return head.startswith(DOT_MARK)
