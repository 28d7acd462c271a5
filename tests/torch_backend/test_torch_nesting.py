"""A block call's statements nest in the PyTorch model as in the spec: `b.0.x` is `model.b[0].x`."""

import torch
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


def test_calls_nest_as_module_lists_and_keys_are_the_portable_names(compiled):
    out = compiled(NESTED)
    model = out.module.build_model()
    assert isinstance(model.b, torch.nn.ModuleList) and len(model.b) == 2
    assert isinstance(model.p.inner, torch.nn.ModuleList) and len(model.p.inner) == 2
    assert model.b[1].x.conv.out_channels == 4
    keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert keys == set(expected_tensors(out.checked.report))
    assert {"b_0_x.conv.weight", "b.0.x.conv.weight", "p.inner.1.first.conv.weight"} <= keys


def test_a_nested_model_computes_its_statements_in_order(compiled):
    """The output equals the same layers applied by hand through the nested modules."""
    model = compiled(NESTED).module.build_model().eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        h = model.b_0_x(x)
        for call in (*model.b, *model.p.inner):
            h = call.x(call.first(h))
        h = h + model.b[1].x(model.b[1].first(model.b[0].x(model.b[0].first(model.b_0_x(x)))))
        expected = model.head(h)
        assert torch.allclose(model(x), expected, atol=1e-6)


def test_zoo_resnet18_keeps_torchvisions_nesting(compiled_file):
    """layer2's first call projects: its downsample sits beside conv1/conv2, as torchvision's."""
    model = compiled_file(ROOT / "specs/zoo/resnet18.arch").module.build_model()
    assert [type(m).__name__ for m in model.layer2] == ["Module", "Module"]
    assert set(dict(model.layer2[0].named_children())) == {"conv1", "conv2", "downsample", "out"}
    assert not hasattr(model.layer2[1], "downsample")
