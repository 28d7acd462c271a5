"""One `archdsl lsp` server per test module, driven over stdio by pytest-lsp's client."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SPECS = Path(__file__).resolve().parents[2] / "specs"
SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "archdsl", "lsp"])


@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient):
    """A client in an initialised session with the server (shut down after the module)."""
    capabilities = client_capabilities("visual-studio-code")
    await lsp_client.initialize_session(types.InitializeParams(capabilities=capabilities))
    yield
    await lsp_client.shutdown_session()


async def open_document(client: LanguageClient, uri: str, text: str) -> list[types.Diagnostic]:
    """Open a document and return the diagnostics the server publishes for it."""
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "arch", 1, text))
    )
    return await diagnostics(client, uri)


async def diagnostics(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    """The next diagnostics published for `uri`."""
    while True:
        params = await asyncio.wait_for(
            client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 20
        )
        if params.uri == uri:
            return params.diagnostics


def position(text: str, marker: str, offset: int = 0) -> types.Position:
    """The position of `marker` (plus `offset` characters) in `text`."""
    index = text.index(marker) + offset
    line = text.count("\n", 0, index)
    return types.Position(line, index - (text.rfind("\n", 0, index) + 1))
