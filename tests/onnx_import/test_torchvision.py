"""`archdsl import` of torchvision models exported by torch.onnx.export itself: ResNet-18 with
its batch norms kept (conv |> batchnorm |> relu statements) in the default run; SqueezeNet 1.1,
MobileNetV2, GoogLeNet (no auxiliary heads) and ResNet-18 with its batch norms folded into the
convs under `slow`. Each imported model computes onnxruntime's outputs."""

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torchvision = pytest.importorskip("torchvision")

import numpy as np  # noqa: E402
from import_helpers import (  # noqa: E402
    assert_round_trip,
    exported_module,
    imported_model,
    initialiser_values,
)

SLOW = pytest.mark.slow
CASES = {
    "resnet18_bn": (lambda: torchvision.models.resnet18(), {"do_constant_folding": False}),
    "resnet18": (lambda: torchvision.models.resnet18(), {}),
    "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(), {}),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(), {}),
    "googlenet": (lambda: torchvision.models.googlenet(aux_logits=False, init_weights=False), {}),
}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=() if n == "resnet18_bn" else (SLOW,)) for n in CASES]
)
def test_torchvision_model_computes_what_onnxruntime_does(name, tmp_path):
    build, options = CASES[name]
    path = exported_module(build(), (3, 224, 224), tmp_path, name, **options)
    text = assert_round_trip(path)
    if name == "resnet18_bn":  # the batch norms stay layers of their own, chained as written
        assert "conv(64, kernel=7, stride=2, pad=3, bias=false) |> batchnorm |> relu" in text
        assert "layer1_0 " in text and "= add(layer1_0_conv2, conv1) |> relu" in text


def test_the_weights_are_the_initialisers_unchanged(tmp_path):
    """Every imported tensor is an ONNX initialiser, value for value (a Gemm's as stored)."""
    path = exported_module(
        torchvision.models.resnet18(), (3, 64, 64), tmp_path, "r18", do_constant_folding=False
    )
    imported = imported_model(path)[0]
    stored = {a.tobytes(): a.shape for a in initialiser_values(path)}
    assert len(imported.arrays) == 102
    for name, array in imported.arrays.items():
        assert stored.get(np.ascontiguousarray(array).tobytes()) == array.shape, name
