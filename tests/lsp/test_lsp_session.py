"""`archdsl lsp` end to end: a real client talks to `python -m archdsl lsp` over stdio.

The expectations are computed independently: diagnostics against `check_source` (what
`archdsl check` prints), hover counts against the shape report, definitions against the
source text.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")  # the dev extra installs it

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

from archdsl.compiler import check_source  # noqa: E402
from archdsl.lsp.hover import op_text  # noqa: E402
from archdsl.ops import REGISTRY  # noqa: E402
from archdsl.signatures import INITS, OPTIMIZERS, TRAIN_SETTINGS  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")
SPECS = Path(__file__).resolve().parents[2] / "specs"
SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "archdsl", "lsp"])

ALEXNET = (SPECS / "alexnet.arch").read_text()
ALEXNET_224 = ALEXNET.replace("3 x 227 x 227", "3 x 224 x 224").replace("crop(227", "crop(224")
RESNET18 = (SPECS / "zoo" / "resnet18.arch").read_text()
MERGING = """model Merging
input image: 3 x 32 x 32
left  = conv(8, kernel=3, pad=1) |> relu
right = conv(8, kernel=1) from image
both  = concat(left, right) |> global_avgpool |> flatten |> dense(10)
"""
SHARED = {"alexnet": ALEXNET, "resnet18": RESNET18, "merging": MERGING}  # open in every test
SEVERITY = {"error": 1, "warning": 2, "info": 3}


def doc(name: str) -> types.TextDocumentIdentifier:
    """The identifier of a test document."""
    return types.TextDocumentIdentifier(f"file:///lsp-test/{name}.arch")


@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient):
    """A client in a session with the server, the shared documents open (shut down after the
    module)."""
    capabilities = client_capabilities("visual-studio-code")
    await lsp_client.initialize_session(types.InitializeParams(capabilities=capabilities))
    for name, text in SHARED.items():
        await open_document(lsp_client, doc(name).uri, text)
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


async def test_good_spec_has_no_problems(client: LanguageClient):
    found = await open_document(client, doc("merging").uri, MERGING)
    assert list(found) == []


async def test_mismatch_reports_what_check_reports(client: LanguageClient):
    uri = doc("alexnet_224").uri
    found = await open_document(client, uri, ALEXNET_224)
    expected = check_source(ALEXNET_224, "x.arch").diagnostics
    assert [(d.code, d.severity) for d in found] == [
        (e.code, SEVERITY[e.severity]) for e in expected
    ]
    first = next(d for d in found if d.code == "E014")
    line = ALEXNET_224.split("\n")[first.range.start.line]
    assert line[first.range.start.character : first.range.end.character] == "expect 96 x 27 x 27"
    assert first.message.startswith("conv1: gives 96 x 26 x 26, but `expect` says 96 x 27 x 27")
    assert "\nhint: fix the layers above or write `expect 96 x 26 x 26`" in first.message
    assert first.severity == types.DiagnosticSeverity.Error


async def test_ranges_count_utf16_units(client: LanguageClient):
    text = MERGING.replace("concat(left, right)", "concat(left, \U0001d499\U0001d499)")
    (found,) = await open_document(client, doc("astral").uri, text)
    assert found.code == "E010"
    start = position(text, "\U0001d499")
    assert (found.range.start, found.range.end) == (
        start,
        types.Position(start.line, start.character + 4),
    )


async def test_fixing_and_closing_clear_diagnostics(client: LanguageClient):
    uri = doc("typing").uri
    broken = MERGING.replace("|> relu", "|> relu |>")
    found = await open_document(client, uri, broken)
    assert [d.code for d in found] == ["E001"]
    (error,) = found
    assert error.message.startswith("syntax error: unexpected `=`\nhint: expected `(`")
    assert error.range.start == position(broken, "right =", len("right "))
    assert error.range.end == position(broken, "right =", len("right ="))
    change = types.TextDocumentContentChangeWholeDocument(MERGING)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(types.VersionedTextDocumentIdentifier(2, uri), [change])
    )
    assert list(await diagnostics(client, uri)) == []
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(doc("closing").uri, "arch", 1, broken)
        )
    )
    assert len(await diagnostics(client, doc("closing").uri)) == 1
    client.text_document_did_close(types.DidCloseTextDocumentParams(doc("closing")))
    assert list(await diagnostics(client, doc("closing").uri)) == []


async def hover(client: LanguageClient, name: str, at: types.Position) -> str:
    """The Markdown the server shows at a position."""
    result = await client.text_document_hover_async(types.HoverParams(doc(name), at))
    assert result is not None
    return result.contents.value


async def test_hover_on_statement_shows_shape_params_and_macs(client: LanguageClient):
    await open_document(client, doc("alexnet").uri, ALEXNET)
    report = check_source(ALEXNET, "x.arch").report
    layers = report.by_statement()["conv2"]
    params, macs = sum(x.params for x in layers), sum(x.macs for x in layers)
    text = await hover(client, "alexnet", position(ALEXNET, "conv2 ="))
    assert text.startswith("**conv2** → `256 x 13 x 13`")
    assert f"{params:,} params · {macs:,} MACs" in text
    assert params == 307_456  # (48 * 5 * 5 * 256) weights + 256 biases


async def test_hover_on_reference_and_block_call_statement(client: LanguageClient):
    await open_document(client, doc("merging").uri, MERGING)
    at_reference = position(MERGING, "concat(left", len("concat("))
    assert (await hover(client, "merging", at_reference)).startswith("**left** → `8 x 32 x 32`")
    await open_document(client, doc("resnet18").uri, RESNET18)
    report = check_source(RESNET18, "x.arch").report
    layer2 = [x for x in report.layers if x.statement.startswith("layer2.")]
    text = await hover(client, "resnet18", position(RESNET18, "layer2 ="))
    assert text.startswith("**layer2** → `128 x 28 x 28` (`layer2.1.out`)")
    assert f"{sum(x.params for x in layer2):,} params" in text


async def test_hover_on_op_shows_signature_and_doc(client: LanguageClient):
    text = await hover(client, "alexnet", position(ALEXNET, "maxpool(3"))
    assert "maxpool(kernel: pair, stride?: pair, pad?: pad, ceil?: bool)" in text
    assert REGISTRY["maxpool"].doc in text


async def test_hover_on_block_call_shows_its_parameters(client: LanguageClient):
    text = await hover(client, "resnet18", position(RESNET18, "basic(128", 1))
    assert "block basic(planes: int, stride: int = 1, project: bool = false)" in text


async def complete(client: LanguageClient, name: str, at: types.Position) -> dict:
    """The completion items at a position, by label."""
    result = await client.text_document_completion_async(types.CompletionParams(doc(name), at))
    return {item.label: item for item in result.items}


async def test_completion_inside_an_op_call_offers_its_arguments(client: LanguageClient):
    items = await complete(client, "alexnet", position(ALEXNET, "conv(96, ", len("conv(96, ")))
    assert set(items) == {f"{p.name}=" for p in REGISTRY["conv"].params}


async def test_completion_at_a_pipeline_element_offers_ops_and_blocks(client: LanguageClient):
    at = position(RESNET18, "|> flatten", len("|> "))
    items = await complete(client, "resnet18", at)
    assert set(REGISTRY) | {"basic"} == set(items)
    assert items["conv"].detail.startswith("conv(filters: count, kernel: pair")


async def test_completion_of_merge_arguments_offers_names_defined_above(client: LanguageClient):
    items = await complete(client, "merging", position(MERGING, "concat(", len("concat(")))
    assert set(items) == {"image", "left", "right"}


async def test_completion_in_init_and_train(client: LanguageClient):
    at_init = position(ALEXNET, "init bias   = ", len("init bias   = "))
    assert set(await complete(client, "alexnet", at_init)) == set(INITS)
    at_optimizer = position(ALEXNET, "sgd(lr", len("sgd("))
    assert set(await complete(client, "alexnet", at_optimizer)) == {
        f"{p.name}=" for p in OPTIMIZERS["sgd"]
    }
    at_rule = position(ALEXNET, "rule=paper", len("rule="))
    (rule,) = [p for p in OPTIMIZERS["sgd"] if p.name == "rule"]
    assert rule.kind == "choice:paper|torch"
    assert set(await complete(client, "alexnet", at_rule)) == {"paper", "torch"}
    at_setting = position(ALEXNET, "  loss", 2)
    assert set(await complete(client, "alexnet", at_setting)) == set(TRAIN_SETTINGS)


async def test_definition_of_from_reference_and_block_call(client: LanguageClient):
    async def target(name: str, text: str, at: types.Position) -> types.Position:
        params = types.DefinitionParams(doc(name), at)
        location = await client.text_document_definition_async(params)
        return location.range.start

    from_image = position(MERGING, "from image", len("from "))
    assert await target("merging", MERGING, from_image) == position(MERGING, "image:")
    at_right = position(MERGING, "right)")
    assert await target("merging", MERGING, at_right) == position(MERGING, "right =")
    at_call = position(RESNET18, "basic(64)")
    assert await target("resnet18", RESNET18, at_call) == position(RESNET18, "basic(planes")


async def test_bad_input_gets_no_answer_and_no_crash(client: LanguageClient):
    hostile = "model \u202e\x00 = conv((((( |> \ud7ff from from\n  block b( {\n" + "[" * 300
    uri = doc("hostile").uri
    found = await open_document(client, uri, hostile)
    assert [d.code for d in found] == [e.code for e in check_source(hostile, "x").diagnostics]
    for line in range(3):
        for character in (0, 5, 9, 40):
            at = types.Position(line, character)
            assert (
                await client.text_document_hover_async(types.HoverParams(doc("hostile"), at))
                is None
            )
            await client.text_document_completion_async(types.CompletionParams(doc("hostile"), at))
            await client.text_document_definition_async(types.DefinitionParams(doc("hostile"), at))
    on_conv = types.HoverParams(doc("hostile"), types.Position(0, 12))  # unparsable, still an op
    assert (await client.text_document_hover_async(on_conv)).contents.value == op_text("conv")
    assert (await hover(client, "merging", position(MERGING, "concat"))).startswith(
        "```arch\nconcat("
    )


async def test_formatting_replaces_the_document_with_fmt_output(client: LanguageClient):
    formatter = pytest.importorskip("archdsl.formatter")
    messy = MERGING.replace("left  = conv(8, kernel=3, pad=1)", "left=conv( 8,kernel = 3 ,pad=1 )")
    expected = formatter.format_source(messy)
    assert expected != messy
    await open_document(client, doc("messy").uri, messy)
    options = types.FormattingOptions(tab_size=2, insert_spaces=True)
    params = types.DocumentFormattingParams(doc("messy"), options)
    (edit,) = await client.text_document_formatting_async(params)
    assert edit.new_text == expected
    assert edit.range.start == types.Position(0, 0)
    assert edit.range.end == types.Position(messy.count("\n"), 0)
    formatted = formatter.format_source(expected)
    await open_document(client, doc("formatted").uri, formatted)
    params = types.DocumentFormattingParams(doc("formatted"), options)
    assert list(await client.text_document_formatting_async(params)) == []
    await open_document(client, doc("unparsable").uri, "a = |> relu")
    params = types.DocumentFormattingParams(doc("unparsable"), options)
    assert list(await client.text_document_formatting_async(params)) == []


async def test_readme_hover_excerpt_is_the_servers_answer(client: LanguageClient):
    readme = (SPECS.parent / "README.md").read_text(encoding="utf-8")
    excerpt = readme.split("<!-- lsp hover: specs/alexnet.arch conv2 -->\n```markdown\n", 1)[1]
    excerpt = excerpt.split("\n```\n<!-- end -->", 1)[0]
    assert await hover(client, "alexnet", position(ALEXNET, "conv2 =")) == excerpt
