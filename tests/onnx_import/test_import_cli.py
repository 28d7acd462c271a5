"""`archdsl import MODEL.onnx -o SPEC`: the files it writes, and every refusal (a file that is
not ONNX, an op the language lacks, hostile names, outputs that exist already)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_helpers import assert_close, run_onnx  # noqa: E402

from archdsl.cli import main  # noqa: E402
from archdsl.compiler import check_source  # noqa: E402
from archdsl.onnx_export import compiled_module  # noqa: E402


def run(capsys, *args):
    """`archdsl import ...` in this process: (exit code, stdout, stderr)."""
    code = main(["import", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def tiny(folder, nodes, name="tiny", input_name="x", doc="", out_dims=(4, 8, 8)):
    """A model file: input (N, 3, 8, 8) -> `nodes` -> the output `y`; the initialisers are
    a 4 x 3 x 3 x 3 conv weight `w`, its bias `b`, a condition `cond`."""
    gen = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(gen.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(gen.standard_normal(4).astype(np.float32), "b"),
        numpy_helper.from_array(np.array(True), "cond"),
    ]
    x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_dims])
    graph = helper.make_graph(nodes, "g", [x], [y], inits, doc_string=doc)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def conv(inp="x", out="c", name="conv"):
    """A Conv node reading the tiny model's weights, padded to keep 8 x 8."""
    return helper.make_node("Conv", [inp, "w", "b"], [out], name=name, pads=[1, 1, 1, 1])


def test_writes_a_spec_and_weights_that_compute_the_model(tmp_path, capsys):
    path = tiny(tmp_path, [conv(), helper.make_node("Relu", ["c"], ["y"], name="act")])
    code, out, err = run(capsys, path, "-o", tmp_path / "net.arch")
    assert code == 0, err
    assert "wrote" in out and "(1 statements, 2 layers)" in out and "2 tensors, 112 values" in out
    text = (tmp_path / "net.arch").read_text()
    # a node named after its op type gets the op's name and a number
    assert "\nconv1 = conv(4, kernel=3, pad=1) |> relu  expect 4 x 8 x 8\n" in text
    assert "input x: 3 x 8 x 8" in text and text.startswith("# Imported by `archdsl import`")
    assert main(["weights", str(tmp_path / "net.arch"), str(tmp_path / "net.npz")]) == 0
    checked = check_source(text, "net.arch")
    module = compiled_module(checked)
    model = module.build_model()
    module.load_weights(model, tmp_path / "net.npz")
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    import torch

    assert_close(
        module.predict(model, torch.from_numpy(x)).numpy(), run_onnx(path, torch.from_numpy(x))
    )


def test_weights_out_names_the_weight_file(tmp_path, capsys):
    path = tiny(tmp_path, [conv(out="y")])
    code, _, err = run(capsys, path, "-o", tmp_path / "a.arch", "-w", tmp_path / "w" / "b.npz")
    assert code == 0, err
    assert (tmp_path / "w" / "b.npz").is_file() and not (tmp_path / "a.npz").exists()
    assert "# Weights: b.npz" in (tmp_path / "a.arch").read_text()


@pytest.mark.parametrize("existing", ["net.arch", "net.npz"])
def test_existing_outputs_are_kept_unless_forced(tmp_path, capsys, existing):
    path = tiny(tmp_path, [conv(out="y")])
    (tmp_path / existing).write_text("mine")
    code, _, err = run(capsys, path, "-o", tmp_path / "net.arch")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{existing}: exists; refusing to overwrite it" in err
    assert (tmp_path / existing).read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"tiny.onnx", existing})
    assert run(capsys, path, "-o", tmp_path / "net.arch", "--force")[0] == 0
    assert (tmp_path / "net.arch").read_text().startswith("# Imported")
    assert main(["weights", str(tmp_path / "net.arch"), str(tmp_path / "net.npz")]) == 0


@pytest.mark.parametrize(
    "content, message",
    [
        (b"this is not a model\n", "not an ONNX model"),
        (b"\x08\x07\x12\x03abc", "not an ONNX model (no graph of nodes in it)"),
        (None, "no such file"),
    ],
)
def test_a_file_that_is_not_onnx_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "m.onnx"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run(capsys, path, "-o", tmp_path / "m.arch")
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert err.startswith("error[usage]: ") and "Traceback" not in err
    assert not (tmp_path / "m.arch").exists() and not (tmp_path / "m.npz").exists()


def test_a_directory_is_refused(tmp_path, capsys):
    code, _, err = run(capsys, tmp_path, "-o", tmp_path / "m.arch")
    assert code == 2 and "is a directory, expected an .onnx file" in err


@pytest.mark.parametrize(
    "node, said",
    [
        (helper.make_node("Where", ["cond", "c", "c"], ["y"], name="pick"), "'pick' (Where)"),
        (helper.make_node("Sub", ["c", "c"], ["y"]), "(unnamed) (Sub)"),
        (helper.make_node("Softmax", ["c"], ["y"], name="s", axis=2), "'s' (Softmax)"),
    ],
)
def test_an_op_the_language_lacks_names_the_node(tmp_path, capsys, node, said):
    path = tiny(tmp_path, [conv(), node])
    code, _, err = run(capsys, path, "-o", tmp_path / "m.arch")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"error[import]: {path}: node 2 {said}: " in err
    assert not (tmp_path / "m.arch").exists() and not (tmp_path / "m.npz").exists()


def test_an_lstm_is_refused(tmp_path, capsys):
    """A recurrent layer over a sequence: rank-3 input and an op the language lacks."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 1, 1, 2])
    inits = [
        numpy_helper.from_array(np.zeros((1, 8, 4), np.float32), "W"),
        numpy_helper.from_array(np.zeros((1, 8, 2), np.float32), "R"),
    ]
    lstm = helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="rnn", hidden_size=2)
    graph = helper.make_graph([lstm], "g", [x], [y], inits)
    path = tmp_path / "lstm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    code, _, err = run(capsys, path, "-o", tmp_path / "m.arch")
    assert code == 1 and "input 'x' has rank 3" in err and len(err.strip().splitlines()) == 1


HOSTILE = [
    'conv"\nmodel Evil\n#',
    "__import__('os').system('x')",
    "class",
    "input",
    "forward",
    "layer.1/../\u202erelu",
]


def test_hostile_text_is_escaped_in_the_header_and_names(tmp_path, capsys):
    nodes = [conv("in", name=HOSTILE[0]), helper.make_node("Relu", ["c"], ["y"], name="class")]
    doc = "line one\n\rmodel X\u2028input evil: 1 \x1b[31m"
    path = tiny(tmp_path, nodes, input_name="in", doc=doc)
    code, _, err = run(capsys, path, "-o", tmp_path / "h.arch")
    assert code == 0, err
    text = (tmp_path / "h.arch").read_text()
    lines = text.splitlines()
    assert all(line.isascii() and line.isprintable() for line in lines)
    assert [line.split()[0] for line in lines if line and not line.startswith("#")] == [
        "model",
        "input",
        "conv_model_Evil",
    ]
    assert "# Its description: line one\\n\\rmodel X\\u2028input evil: 1 \\x1b[31m" in text
    assert "input image: 3 x 8 x 8" in text  # `in` is a Python keyword
    assert check_source(text, "h.arch").ok


def test_hostile_names_of_many_layers(tmp_path, capsys):
    nodes, value = [], "x"
    for i, name in enumerate(HOSTILE):
        nodes.append(helper.make_node("Relu", [value], [f"r{i}"], name=name))
        value = f"r{i}"
    nodes.append(conv(inp=value, out="c"))
    for i, name in enumerate(HOSTILE):
        nodes.append(
            helper.make_node(
                "Add", ["c", "c"] if i == 0 else [f"a{i - 1}", "c"], [f"a{i}"], name=name
            )
        )
    nodes.append(helper.make_node("Relu", [f"a{len(HOSTILE) - 1}"], ["y"], name="model"))
    path = tiny(tmp_path, nodes)
    code, _, err = run(capsys, path, "-o", tmp_path / "h.arch")
    assert code == 0, err
    text = (tmp_path / "h.arch").read_text()
    names = [line.split()[0] for line in text.splitlines() if " = " in line]
    assert len(names) == len(set(names)) == 1 + len(HOSTILE), names  # relus |> conv, the adds
    assert {"import_os_system_x", "class_", "input_", "forward_"} <= set(names), names
    assert check_source(text, "h.arch").ok


def test_a_constant_too_large_to_make_is_refused(tmp_path, capsys):
    """A file asking constant folding for 10^18 values gets a line, not a memory error."""
    huge = numpy_helper.from_array(np.array([10**9, 10**9], np.int64), "huge")
    nodes = [
        helper.make_node("ConstantOfShape", ["huge"], ["big"], name="bomb"),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
        helper.make_node("Add", ["x", "total"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 8, 8])
    graph = helper.make_graph(nodes, "g", [x], [y], [huge])
    path = tmp_path / "bomb.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    code, _, err = run(capsys, path, "-o", tmp_path / "m.arch")
    assert code == 1 and "node 1 'bomb' (ConstantOfShape): it makes a constant of more" in err


def test_a_model_that_only_passes_its_input_on(tmp_path, capsys):
    path = tiny(tmp_path, [helper.make_node("Identity", ["x"], ["y"])], out_dims=(3, 8, 8))
    code, _, err = run(capsys, path, "-o", tmp_path / "m.arch")
    assert code == 1 and "the model computes nothing: its output is its input" in err
