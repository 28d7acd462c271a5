"""conv_transpose and upsample in PyTorch: the generated modules against NumPy references of
their definitions, torch's fan computation and FlopCounterMode's count, and the report."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "upsampling_common"))
import upsampling_reference as ref  # noqa: E402

from archdsl.initializers import fans  # noqa: E402

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


def spec(shape, op):
    return f"model T\ninput x: {shape}\ny = {op}\n"


def normal(seed, shape):
    """Gaussian test data that float32 represents exactly, as float64."""
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32).astype(np.float64)


def forward(model, x):
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32)).numpy().astype(np.float64)


@pytest.mark.parametrize(("shape", "op"), ref.CONV_TRANSPOSE_CASES)
def test_conv_transpose_is_the_scatter_of_its_definition(shape, op, compiled):
    """Output, parameters, fans and MACs of each stride / pad / output_pad / groups / dilation
    combination."""
    out = compiled(spec(shape, op))
    node = out.checked.graph.statements[0].ops[0]
    (layer,) = out.checked.report.layers
    model = out.module.build_model().eval()
    module = model.y.conv_transpose
    with torch.no_grad():
        for tensor in module.parameters():  # a bias that matters
            tensor.copy_(torch.from_numpy(normal(tensor.numel(), tensor.shape)))
    x = normal(1, (2, *layer.input_shape))
    with FlopCounterMode(display=False) as counter:
        y = forward(model, x)
    weight = module.weight.detach().numpy().astype(np.float64)
    bias = None if module.bias is None else module.bias.detach().numpy().astype(np.float64)
    expected = ref.conv_transpose(
        x, weight, bias, node.stride, node.pad, node.output_pad, node.dilation, node.groups
    )
    assert y.shape == expected.shape == (2, *layer.output_shape)
    np.testing.assert_allclose(y, expected, atol=1e-5 * np.abs(expected).max())
    assert layer.params == sum(p.numel() for p in model.parameters())
    assert counter.get_total_flops() == 2 * 2 * layer.macs  # batch 2, FLOPs = 2 x MACs
    assert fans(node, layer.input_shape) == torch.nn.init._calculate_fan_in_and_fan_out(
        module.weight
    )


@pytest.mark.parametrize(("shape", "op"), ref.UPSAMPLE_CASES)
def test_upsample_matches_its_definition(shape, op, compiled):
    """Nearest reads floor(i / scale) exactly; bilinear is torch's nn.Upsample."""
    out = compiled(spec(shape, op))
    node = out.checked.graph.statements[0].ops[0]
    (layer,) = out.checked.report.layers
    x = normal(2, (2, *layer.input_shape))
    y = forward(out.module.build_model().eval(), x)
    expected = ref.upsample(x, node.scale, node.mode, node.align_corners)
    assert y.shape == expected.shape == (2, *layer.output_shape)
    if node.mode == "nearest":
        np.testing.assert_array_equal(y, expected)
        return
    np.testing.assert_allclose(y, expected, atol=1e-6)
    options = {"align_corners": node.align_corners, "mode": "bilinear"}
    torch_own = torch.nn.Upsample(scale_factor=node.scale, **options)
    np.testing.assert_array_equal(y, forward(torch_own, x))


def test_counts_of_a_spec_equal_the_built_models(compiled):
    """Per layer, the report's parameters are the module's; the MACs are FlopCounterMode's."""
    out = compiled(ref.TINY_UNET)
    report = out.checked.report
    model = out.module.build_model().eval()
    for layer in report.layers:
        statement, label = layer.name.rsplit(".", 1)
        module = getattr(model, statement)._modules.get(label)
        held = 0 if module is None else sum(p.numel() for p in module.parameters())
        assert layer.params == held, layer.name
    assert report.total_params == sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter:
        forward(model, normal(3, (1, 3, 8, 8)))
    assert counter.get_total_flops() == 2 * report.total_macs
