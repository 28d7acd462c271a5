"""`archdsl import` of torchvision models exported by torch.onnx.export itself: ResNet-18 with
its batch norms kept (conv |> batchnorm |> relu statements) at 64 x 64 in the default run;
ResNet-18 with its batch norms folded into the convs, SqueezeNet 1.1, MobileNetV2, GoogLeNet
(no auxiliary heads) and ViT-B/16 at 224 x 224 under `slow`. Each imported model computes onnxruntime's
outputs."""

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torchvision = pytest.importorskip("torchvision")

import numpy as np  # noqa: E402
from import_helpers import (  # noqa: E402
    assert_round_trip,
    exported_module,
    initialiser_values,
)

CASES = {
    "resnet18": lambda: torchvision.models.resnet18(),
    "squeezenet1_1": lambda: torchvision.models.squeezenet1_1(),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(),
    "googlenet": lambda: torchvision.models.googlenet(aux_logits=False, init_weights=False),
    "vit_b_16": lambda: torchvision.models.vit_b_16(),
}


def test_resnet18_with_its_batch_norms(tmp_path):
    """Exported without constant folding, the batch norms stay nodes of their own: each
    becomes `conv |> batchnorm |> relu`, and every tensor is an initialiser, value for value."""
    net = torchvision.models.resnet18()
    path = exported_module(net, (3, 64, 64), tmp_path, "r18", do_constant_folding=False)
    imported = assert_round_trip(path)
    text = imported.text
    assert "conv(64, kernel=7, stride=2, pad=3, bias=false) |> batchnorm |> relu" in text
    assert "layer1_0 " in text and "= add(layer1_0_conv2, conv1) |> relu" in text
    stored = {a.tobytes(): a.shape for a in initialiser_values(path)}
    assert len(imported.arrays) == 102  # 20 convs, 20 batch norms of 4, fc weight and bias
    for name, array in imported.arrays.items():
        assert stored.get(np.ascontiguousarray(array).tobytes()) == array.shape, name


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_torchvision_model_computes_what_onnxruntime_does(name, tmp_path):
    """As torch.onnx.export writes them by default (the batch norms folded into the convs)."""
    path = exported_module(CASES[name](), (3, 224, 224), tmp_path, name)
    assert_round_trip(path)


@pytest.mark.slow
def test_the_dynamo_exporter(tmp_path):
    """torch.onnx.export's default (torch.export-based) exporter writes other nodes (ReduceMean
    for the pool, a Reshape that flattens, generated node names): the import computes them."""
    import torch

    net = torchvision.models.mobilenet_v2().eval()
    path = tmp_path / "mobilenet_v2.onnx"
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        net, (torch.zeros(1, 3, 96, 96),), str(path), dynamo=True, dynamic_shapes=({0: batch},)
    )
    text = assert_round_trip(path).text
    # torch.export's node names (node_Conv_811, n4) give way to the ops' names
    assert (
        "\nconv1 " in text and "\nglobal_avgpool1 = global_avgpool |> flatten |> dense(1000" in text
    )
