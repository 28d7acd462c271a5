"""Completion items for a cursor's context: ops, arguments, statement names, blocks,
initialisers and train settings."""

from __future__ import annotations

from lsprotocol import types

from archdsl.lsp import context as ctx
from archdsl.lsp.context import Context
from archdsl.lsp.hover import signature
from archdsl.lsp.symbols import Symbols
from archdsl.ops import LEARNED, MERGES, REGISTRY
from archdsl.params import Param
from archdsl.signatures import (
    AUGMENTS,
    AVERAGES,
    INITS,
    LOSSES,
    OPS,
    OPTIMIZERS,
    SCHEDULES,
    TRAIN_SETTINGS,
)

Kind = types.CompletionItemKind
# what a train setting's value names, and the argument lists of those names
RECIPE = {
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "loss": LOSSES,
    "augment": AUGMENTS,
    "ema": AVERAGES,
}
INIT_KINDS = ("init", "bias")  # arguments that take an initialiser


def completions(
    context: Context, blocks: dict[str, tuple[Param, ...]]
) -> list[types.CompletionItem]:
    """The items to offer in `context`; `blocks` holds each block's parameters."""
    kind = context.kind
    if kind == ctx.OP:
        return _ops() + _blocks(blocks)
    if kind == ctx.SOURCE or kind == ctx.ARGUMENT and context.call in MERGES:
        return _statements(context)
    if kind == ctx.ARGUMENT:
        return _arguments(_signature(context, blocks))
    if kind == ctx.VALUE:
        return _values(context, blocks)
    if kind == ctx.SETTING:
        return [_item(name, Kind.Property, "train setting") for name in TRAIN_SETTINGS]
    if kind == ctx.SETTING_VALUE:
        return _named(RECIPE.get(context.setting, {}), Kind.Function)
    if kind == ctx.INIT_VALUE:
        return _named(INITS, Kind.Function)
    if kind == ctx.INIT_TARGET:
        targets = ["weight", "bias", *(f"{op}.{t}" for op in LEARNED for t in ("weight", "bias"))]
        return [_item(t, Kind.Field, "what the initialiser applies to") for t in targets]
    return []


def block_params(symbols: Symbols | None) -> dict[str, tuple[Param, ...]]:
    """Each parsed block's parameters (as Params: name, declared type, required)."""
    if symbols is None:
        return {}
    return {
        name: tuple(Param(p.name, p.type or "any", p.default is None) for p in block.params)
        for name, block in symbols.blocks.items()
    }


def _item(
    label: str, kind: Kind, detail: str, doc: str = "", insert: str = ""
) -> types.CompletionItem:
    """One completion item."""
    return types.CompletionItem(
        label=label,
        kind=kind,
        detail=detail,
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc)
        if doc
        else None,
        insert_text=insert or None,
    )


def _ops() -> list[types.CompletionItem]:
    """Every op, its signature as detail and its doc line as documentation."""
    return [
        _item(name, Kind.Function, signature(name), spec.doc) for name, spec in REGISTRY.items()
    ]


def _blocks(blocks: dict[str, tuple[Param, ...]]) -> list[types.CompletionItem]:
    """The spec's blocks."""
    return [
        _item(name, Kind.Class, f"block {name}({', '.join(p.name for p in params)})")
        for name, params in blocks.items()
    ]


def _statements(context: Context) -> list[types.CompletionItem]:
    """Statement and input names defined above the cursor (not the one being written)."""
    names = dict.fromkeys(n for n in context.names if n != context.current)
    return [_item(name, Kind.Variable, "defined above") for name in names]


def _signature(context: Context, blocks: dict[str, tuple[Param, ...]]) -> tuple[Param, ...]:
    """The parameters of the op, block, initialiser or recipe item being called."""
    call = context.call
    if context.area == ctx.TRAIN:
        return next((table[call] for table in RECIPE.values() if call in table), ())
    for table in (OPS, blocks, INITS):
        if call in table:
            return table[call]
    return ()


def _arguments(params: tuple[Param, ...]) -> list[types.CompletionItem]:
    """`name=` items for the arguments of a call."""
    return [
        _item(
            f"{p.name}=",
            Kind.Field,
            p.kind + (" (required)" if p.required else ""),
            insert=f"{p.name}=",
        )
        for p in params
    ]


def _values(context: Context, blocks: dict[str, tuple[Param, ...]]) -> list[types.CompletionItem]:
    """What an argument may be: the choices of a `choice` argument, or initialisers."""
    param = next((p for p in _signature(context, blocks) if p.name == context.key), None)
    if param is None:
        return []
    if param.kind.startswith("choice:"):
        choices = param.kind.split(":", 1)[1].split("|")
        return [_item(c, Kind.EnumMember, param.name) for c in choices]
    truths = [_item(b, Kind.Keyword, param.kind) for b in ("true", "false")]
    if param.kind == "bool":
        return truths
    if param.kind in INIT_KINDS:
        return _named(INITS, Kind.Function) + (truths if param.kind == "bias" else [])
    return []


def _named(table: dict[str, tuple[Param, ...]], kind: Kind) -> list[types.CompletionItem]:
    """Items for the names of a signature table (initialisers, optimizers, ...)."""
    return [
        _item(name, kind, f"{name}({', '.join(p.name for p in params)})")
        for name, params in table.items()
    ]
