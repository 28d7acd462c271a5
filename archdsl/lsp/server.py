"""The pygls server: document sync with diagnostics, hover, completion, definition and
formatting, every handler guarded so that bad input never stops the server."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from archdsl import __version__
from archdsl.diagnostics import Diagnostic, visible
from archdsl.lsp.analysis import Analysis, Cache
from archdsl.lsp.completion import block_params, completions
from archdsl.lsp.context import context_at
from archdsl.lsp.hover import hover_text, op_text, op_under
from archdsl.lsp.ranges import Place, to_place, to_range, whole
from archdsl.syntax import SyntaxFailure

LOG = logging.getLogger("archdsl.lsp")
SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}
TRIGGERS = [">", "(", ",", "=", "["]


class ArchServer(LanguageServer):
    """The language server, with the analysis of each open document's latest version."""

    def __init__(self):
        super().__init__(
            "archdsl", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full
        )
        self.cache = Cache()

    def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current text."""
        doc = self.workspace.get_text_document(uri)
        return self.cache.get(uri, doc.version, doc.source, _file(uri))

    def place(self, analysis: Analysis, position: types.Position) -> Place:
        """A client position in the document as a Place."""
        return to_place(position, analysis.lines, self.workspace.position_codec)

    def lsp_range(self, analysis: Analysis, span) -> types.Range:
        """A front-end span as a client range."""
        return to_range(span, analysis.lines, self.workspace.position_codec)


def _file(uri: str) -> str:
    """The file name diagnostics print for a document (its path for a file: URI)."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def guarded(handler):
    """Run a handler; should it raise, log the error and answer nothing."""

    @functools.wraps(handler)
    def run(ls, params):
        try:
            return handler(ls, params)
        except Exception:
            LOG.exception("archdsl lsp: %s failed", handler.__name__)
            return None

    return run


server = ArchServer()


def publish(ls: ArchServer, uri: str) -> None:
    """Send the document's diagnostics, as `archdsl check` reports them."""
    analysis = ls.analysis(uri)
    found = [_diagnostic(ls, analysis, d) for d in analysis.checked.diagnostics]
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=found))


def _diagnostic(ls: ArchServer, analysis: Analysis, d: Diagnostic) -> types.Diagnostic:
    """One diagnostic, its hint on a line of its own."""
    where = (
        ls.lsp_range(analysis, d.span)
        if d.span
        else types.Range(types.Position(0, 0), types.Position(0, 0))
    )
    message = visible(d.message) + (f"\nhint: {visible(d.hint)}" if d.hint else "")
    return types.Diagnostic(where, message, SEVERITY[d.severity], d.code, source="archdsl")


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
@guarded
def did_open(ls: ArchServer, params: types.DidOpenTextDocumentParams):
    """Check a document when it opens."""
    publish(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
@guarded
def did_change(ls: ArchServer, params: types.DidChangeTextDocumentParams):
    """Check a document as it is typed."""
    publish(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
@guarded
def did_save(ls: ArchServer, params: types.DidSaveTextDocumentParams):
    """Check a document when it is saved."""
    publish(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
@guarded
def did_close(ls: ArchServer, params: types.DidCloseTextDocumentParams):
    """Clear a closed document's diagnostics and forget it."""
    uri = params.text_document.uri
    ls.cache.drop(uri)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(types.TEXT_DOCUMENT_HOVER)
@guarded
def hover(ls: ArchServer, params: types.HoverParams):
    """A statement's shape and counts, an op's signature, a block's parameters."""
    analysis = ls.analysis(params.text_document.uri)
    place = ls.place(analysis, params.position)
    if analysis.symbols is None:  # while the text does not parse, ops still have their hover
        op = op_under(analysis.lines[place.line], place.column)
        return _markdown(op_text(op), None) if op else None
    found = analysis.symbols.at(place)
    text = hover_text(analysis, found) if found else None
    return _markdown(text, ls.lsp_range(analysis, found.span)) if text else None


def _markdown(text: str, where: types.Range | None) -> types.Hover:
    """A hover showing Markdown."""
    content = types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)
    return types.Hover(contents=content, range=where)


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
@guarded
def definition(ls: ArchServer, params: types.DefinitionParams):
    """Where a statement, input or block that a name reads or calls is defined."""
    uri = params.text_document.uri
    analysis = ls.analysis(uri)
    if analysis.symbols is None:
        return None
    found = analysis.symbols.at(ls.place(analysis, params.position))
    target = analysis.symbols.definition(found) if found else None
    return types.Location(uri, ls.lsp_range(analysis, target)) if target else None


@server.feature(
    types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=TRIGGERS)
)
@guarded
def completion(ls: ArchServer, params: types.CompletionParams):
    """Ops, arguments, statement names, blocks, initialisers and settings at the cursor."""
    uri = params.text_document.uri
    analysis = ls.analysis(uri)
    place = ls.place(analysis, params.position)
    offset = sum(len(line) + 1 for line in analysis.lines[: place.line]) + place.column
    blocks = block_params(analysis.symbols or ls.cache.last_parsed(uri))
    items = completions(context_at(analysis.source, offset), blocks)
    return types.CompletionList(is_incomplete=False, items=items)


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
@guarded
def formatting(ls: ArchServer, params: types.DocumentFormattingParams):
    """The document as `archdsl fmt` writes it: one edit of the whole text, none when it is
    already formatted or does not parse (its diagnostics say why)."""
    from archdsl.formatter import format_source

    analysis = ls.analysis(params.text_document.uri)
    try:
        formatted = format_source(analysis.source, analysis.checked.file)
    except SyntaxFailure:
        return []
    if formatted == ls.workspace.get_text_document(params.text_document.uri).source:
        return []
    return [
        types.TextEdit(range=whole(analysis.lines, ls.workspace.position_codec), new_text=formatted)
    ]


def serve() -> None:
    """Serve over stdin and stdout until the client exits. The protocol writes to a copy of
    stdout (pygls closes it at exit); a stray print meanwhile goes to stderr, not into it."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    with contextlib.redirect_stdout(sys.stderr):
        server.start_io(sys.stdin.buffer, channel)
