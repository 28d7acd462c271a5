"""`archdsl import` of ONNX ops other exporters write: graphs built with onnx.helper (a Pad
before a conv and a pool, LRN, BatchNormalization, hard-swish as x * HardSigmoid(x), nearest
Resize by scales, a mean over H and W dropping them, MatMul + Add, a vector input), each
compared with onnxruntime."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from import_helpers import assert_round_trip  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(0)


def _array(name, *shape, positive=False):
    """A random float32 initialiser."""
    values = RNG.random(shape) + 0.5 if positive else RNG.standard_normal(shape)
    return numpy_helper.from_array(np.asarray(values, np.float32), name)


def _save(folder, name, nodes, inits, in_dims, out_dims, opset=17):
    """The graph as a model file with a symbolic batch."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_dims])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_dims])
    graph = helper.make_graph(nodes, name, [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def test_a_map_network_of_plain_onnx_ops(tmp_path):
    ints = lambda name, *v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    floats = lambda name, *v: numpy_helper.from_array(np.array(v, np.float32), name)  # noqa: E731
    inits = [
        _array("w", 4, 3, 3, 3),
        _array("b", 4),
        _array("scale", 4, positive=True),
        _array("shift", 4),
        _array("mean", 4),
        _array("var", 4, positive=True),
        ints("pad1", 0, 0, 1, 1, 0, 0, 1, 1),
        floats("ninf", -np.inf),
        floats("up", 1, 1, 2, 2),
        _array("m", 4, 5),
        _array("mb", 5),
    ]
    node = helper.make_node
    nodes = [
        node("Pad", ["x", "pad1"], ["p"], name="/features/pad"),
        node("Conv", ["p", "w", "b"], ["c"], name="/features/conv1/Conv", kernel_shape=[3, 3]),
        node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["n"], epsilon=1e-3),
        node("LRN", ["n"], ["l"], size=3, alpha=3e-4, beta=0.75, bias=1.0),
        node("HardSigmoid", ["l"], ["g"], alpha=1 / 6, beta=0.5),
        node("Mul", ["l", "g"], ["h"]),
        node(
            "Resize",
            ["h", "", "up"],
            ["r"],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
        node("Pad", ["r", "pad1", "ninf"], ["rp"]),
        node("MaxPool", ["rp"], ["mp"], kernel_shape=[3, 3], strides=[2, 2]),
        node("AveragePool", ["mp"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        node("ReduceMean", ["ap"], ["f"], axes=[2, 3], keepdims=0),
        node("MatMul", ["f", "m"], ["mm"], name="/classifier/fc/MatMul"),
        node("Add", ["mm", "mb"], ["fc"]),
        node("Softmax", ["fc"], ["y"], axis=1),
    ]
    path = _save(tmp_path, "plain", nodes, inits, (3, 8, 8), (5,))
    text = assert_round_trip(path).text
    # the Pads become padding; LRN's alpha 3e-4 over size 3 is the paper's 1e-4, the default
    assert (
        "features_conv1  = conv(4, kernel=3, pad=1) |> batchnorm(eps=0.001) |> lrn(size=3, k=1.0) "
        "|> hardswish |> upsample |> maxpool(3, stride=2, pad=1) "
        "|> avgpool(2)  expect 4 x 4 x 4"
    ) in text
    assert "global_avgpool |> flatten |> dense(5) |> softmax  expect 5" in text


def test_a_vector_network(tmp_path):
    inits = [_array("w1", 6, 10), _array("b1", 6), _array("w2", 6, 3), _array("gamma", 3)]
    node = helper.make_node
    nodes = [
        node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        node("LeakyRelu", ["h"], ["a"], alpha=0.2),
        node("Gemm", ["a", "w2"], ["o"]),
        node("Mul", ["o", "gamma"], ["y"]),
    ]
    path = _save(tmp_path, "mlp", nodes, inits, (10,), (3,))
    text = assert_round_trip(path).text
    assert "input features: 10" in text or "input x: 10" in text
    assert "dense(6) |> leaky_relu(0.2)" in text and "dense(3, bias=false) |> layer_scale" in text
