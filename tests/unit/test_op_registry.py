"""Every op is declared once (archdsl/ops) and every reader of op facts covers every op."""

from __future__ import annotations

import typing

import pytest
from archdsl.backends.keras import emitter as keras_emitter
from archdsl.backends.torch import emitter as torch_emitter

from archdsl import ir, signatures
from archdsl.binding import CONVERTERS
from archdsl.compiler import check_source
from archdsl.ops import REGISTRY
from archdsl.ops.spec import ShapeError, need

OPS = sorted(REGISTRY)
# ops on token ids or sequences: the statements that test them, on `input x: tokens 6 of 10`
SEQUENCE_OPS = {
    "embedding": "y = embedding(10, 4, padding=0)",
    "lstm": "e = embedding(10, 4, padding=0)\ny = lstm(3, layers=2, bidirectional=true)",
    "gru": "e = embedding(10, 4)\ny = gru(3, sequences=true)",
}


def test_every_backend_emits_every_op():
    """Adding an op to the language fails here until each backend has an entry for it."""
    assert set(torch_emitter.EMIT) | set(torch_emitter.MERGED) == set(REGISTRY)
    assert not set(torch_emitter.EMIT) & set(torch_emitter.MERGED)
    assert set(keras_emitter.LAYERS) == set(REGISTRY)


def test_the_old_tables_are_views_of_the_registry():
    assert signatures.OPS == {name: spec.params for name, spec in REGISTRY.items()}
    (union, _) = typing.get_args(ir.Op)
    assert set(typing.get_args(union)) == {spec.node for spec in REGISTRY.values()}


@pytest.mark.parametrize("name", OPS)
def test_each_spec_is_complete(name):
    """A node whose `op` field admits the name, a one-line doc, a signature of known kinds."""
    spec = REGISTRY[name]
    assert name in typing.get_args(spec.node.model_fields["op"].annotation)
    assert spec.doc and "\n" not in spec.doc and spec.doc == spec.doc.strip()
    assert len({p.name for p in spec.params}) == len(spec.params)
    for p in spec.params:
        assert p.kind in CONVERTERS or p.kind.startswith("choice:"), (name, p)
    assert spec.merge == (name in ("concat", "add", "mul"))


@pytest.mark.parametrize("name", OPS)
def test_each_op_compiles_alone_and_counts_what_its_tensors_hold(name):
    """Each op in a minimal spec: checked, counted from its tensors, emitted by both backends."""
    arguments = {"conv": "(4, kernel=3)", "maxpool": "(2)", "avgpool": "(2)", "dense": "(3)"}
    arguments |= {"adaptive_avgpool": "(2 x 2)", "resize": "(5 x 5)", "stochastic_depth": "(0.1)"}
    arguments |= {"conv_transpose": "(4, kernel=3, stride=2, groups=2)"}
    arguments |= {"chunk": "(2, part=1)", "channel_shuffle": "(2)"}
    arguments |= {"window_attention": "(2, window=4, shift=2)"}
    arguments |= {"to_map": "(6, 6)", "token": "(3)", "attention": "(2)"}
    arguments |= {"reshape": "(-1, 9)", "permute": "(1, 2, 0)"}
    on_tokens = ("to_map", "token", "mean_tokens", "class_token", "position_embedding", "attention")
    source = "2 x 6 x 6"
    if REGISTRY[name].merge:
        body = f"a = relu\nb = tanh from x\ny = {name}(a, b)"
    elif name in SEQUENCE_OPS:
        source, body = "tokens 6 of 10", SEQUENCE_OPS[name]
    else:
        shape_first = "y = flatten |> " if name == "dense" else "y = "
        if name in on_tokens:
            shape_first = "y = to_tokens |> "
        body = shape_first + name + arguments.get(name, "")
    checked = check_source(f"model T\ninput x: {source}\n{body}\n", "t.arch")
    assert checked.ok, checked.diagnostics
    layer = next(layer for layer in checked.report.layers if layer.op == name)
    held = REGISTRY[name].tensors(
        next(op for s in checked.graph.statements for op in s.ops if op.op == name),
        list(layer.input_shapes),
    )
    assert layer.params == sum(t.size for t in held.values())
    assert torch_emitter.render_model(checked.graph, checked.report, "t.arch")
    assert keras_emitter.render_model(checked.graph, checked.report, "t.arch")


def test_layouts_name_the_conversion():
    with pytest.raises(ShapeError) as err:
        need((12,), "map", "conv")
    assert (err.value.code, err.value.message) == ("E018", "conv needs a C x H x W map, got 12")
    assert "move it before `flatten`" in err.value.hint
    need((3, 4, 4), "map", "conv")
