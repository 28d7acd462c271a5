"""Blocks run as classes: `b = unit(4) * 2` is `model.b = nn.Sequential(Unit(), Unit())`, its
statements' layers at `model.b[0].first`, and every tensor keyed by its portable name."""

import torch
from block_specs import CONDITIONAL
from ptgen import ROOT

from archdsl.weights import expected_tensors

NESTED = """model Nested
input image: 3 x 8 x 8
block unit(w: int) {
  first = conv(w, kernel=3, pad=1) |> relu
  x = conv(w, kernel=1)
}
block pair(w: int) {
  inner = unit(w) * 2
  merge = add(inner, in)
}
b_0_x = conv(4, kernel=1)
b = unit(4) * 2
p = pair(4)
head = global_avgpool |> flatten |> dense(3)
"""


def by_hand(model, x):
    """CONDITIONAL's output from its layers, each call's statements as the spec has them."""
    s = model.s
    h = s[0].body(s[0].wide(x))  # 3 -> 4: widened
    body = s[1].body(h)
    h = body * s[1].gate(body)  # gated
    h = s[3].body(s[2].body(s[2].wide(h)))  # 4 -> 6, then 6 -> 6
    inner = model.p.inner[1].body(model.p.inner[0].body(h))
    return model.head(inner + h)


def test_calls_nest_as_classes_and_keys_are_the_portable_names(compiled):
    out = compiled(NESTED)
    model = out.module.build_model()
    assert type(model.b).__name__ == "Sequential" and len(model.b) == 2
    assert [type(m).__name__ for m in model.b] == ["Unit", "Unit"]
    assert type(model.p).__name__ == "Pair" and len(model.p.inner) == 2
    keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert keys == set(expected_tensors(out.checked.report))
    assert {"b_0_x.conv.weight", "b.0.x.conv.weight", "p.inner.1.first.conv.weight"} <= keys


def test_a_nested_model_computes_its_statements_in_order(compiled):
    """The output equals the same layers applied by hand through the nested modules."""
    model = compiled(NESTED).module.build_model().eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        h = model.b_0_x(x)
        for call in model.b:
            h = call.x(call.first(h))
        inner = h
        for call in model.p.inner:
            inner = call.x(call.first(inner))
        assert torch.allclose(model(x), model.head(inner + h), atol=1e-6)


def test_calls_with_different_statements_run_as_the_spec_says(compiled):
    out = compiled(CONDITIONAL)
    model = out.module.build_model().eval()
    assert [type(m).__name__ for m in model.s] == ["Unit"] * 4
    assert [hasattr(m, "wide") for m in model.s] == [True, False, True, False]
    assert type(model.p).__name__ == "Pair" and type(model.p.inner).__name__ == "Sequential"
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), by_hand(model, x), atol=1e-6)


def test_a_condition_python_cannot_compute_alike_runs_statement_by_statement(compiled):
    """`flag == 1` with a bool flag is never true in archdsl (True == 1 in Python): no class."""
    source = CONDITIONAL.replace("if gated\n", "if gated or gated == 1\n")
    out = compiled(source)
    model = out.module.build_model().eval()
    assert type(model.s).__name__ == "ModuleList"
    assert "class Unit" not in (out.dir / "model.py").read_text()
    with torch.no_grad():
        x = torch.randn(2, 3, 8, 8)
        assert torch.allclose(model(x), by_hand(model, x), atol=1e-6)


def test_zoo_resnet18_reads_like_torchvisions(compiled_file):
    """One Basic class; layer2's first call projects, as torchvision's BasicBlock with a
    downsample; forward calls each stage once."""
    out = compiled_file(ROOT / "specs/zoo/resnet18.arch")
    model = out.module.build_model()
    assert [type(m).__name__ for m in model.layer2] == ["Basic", "Basic"]
    assert [m.project for m in model.layer2] == [True, False]
    assert set(dict(model.layer2[0].named_children())) == {"conv1", "conv2", "downsample", "out"}
    assert not hasattr(model.layer2[1], "downsample")
    text = (out.dir / "model.py").read_text()
    assert "x = self.layer2(x)" in text and text.count("class Basic(nn.Module)") == 1


def test_a_parameter_named_like_the_inputs_width_is_its_own(compiled):
    """`in_channels` the parameter and `in.channels` the input's width are different values."""
    out = compiled(
        """model Widths
input image: 3 x 4 x 4
block u(in_channels: int) {
  a = conv(4, kernel=1)  if in.channels != in_channels
  b = relu
}
s = u(3) |> u(5)
head = global_avgpool |> flatten |> dense(2)
"""
    )
    model = out.module.build_model().eval()
    assert [type(m).__name__ for m in model.s] == ["U", "U"]
    assert [(m.in_channels, m.in_channels_) for m in model.s] == [(3, 3), (3, 5)]
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        expected = model.head(model.s[1].b(model.s[1].a(model.s[0].b(x))))
        assert torch.allclose(model(x), expected, atol=1e-6)
