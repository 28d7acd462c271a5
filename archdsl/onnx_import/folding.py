"""Constant folding: every node computable from initialisers, constants and static shapes is
evaluated (onnx's reference evaluator), and an `If` on a constant condition is replaced by its
branch. What remains are the data nodes the importer translates."""

from __future__ import annotations

from archdsl.onnx_import.errors import Unsupported, first_line, unsupported
from archdsl.onnx_import.graph import Net, Node
from archdsl.onnx_import.loading import Loaded, static_shapes

NONDETERMINISTIC = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike"}
MADE_LIMIT = 2**26  # values a folded shape-building node may make (a hostile file asks more)
INLINE_SIZE = 64  # constants up to this many elements go into the re-inferred model's initialisers


def folded_net(loaded: Loaded) -> Net:
    """The data nodes of the model with every constant computed, and their static shapes."""
    from onnx import numpy_helper

    graph = loaded.proto.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    data = [_node(n, i) for i, n in enumerate(graph.node, 1)]
    while True:  # shapes inferred once constants are known may fold more (a Shape of a Reshape)
        shapes = _reinferred(loaded, data, constants)
        before, data = len(data), _fold(data, constants, shapes, loaded.opset)
        if len(data) == before:
            break
    if loaded.output in constants:
        raise Unsupported("the model's output is a constant: it does not depend on its input")
    data, output = _without_identities(data, loaded.output, constants)
    return Net(_live(data, output), constants, shapes, loaded.input, output, loaded.opset)


def _without_identities(nodes: list[Node], output: str, constants: dict):
    """The nodes without Identity and inference-mode Dropout (their readers read their input
    instead), and the value that is then the output."""
    same: dict[str, str] = {}
    kept, read = [], {v for n in nodes for v in n.inputs} | {output}
    for node in nodes:
        node.inputs = [same.get(v, v) for v in node.inputs]
        if node.op_type == "Identity" or (
            node.op_type == "Dropout" and _inference(node, constants)
        ):
            same[node.outputs[0]] = node.inputs[0]
            if any(v in read for v in node.outputs[1:] if v):
                raise unsupported(node, "its dropout mask is read: only inference is expressible")
        else:
            kept.append(node)
    return kept, same.get(output, output)


def _inference(node: Node, constants: dict) -> bool:
    """Whether a Dropout runs in inference mode (an identity)."""
    if node.attr("is_test", 1) == 0 and len(node.inputs) < 3:
        return False
    mode = node.inputs[2] if len(node.inputs) > 2 else ""
    return not mode or (mode in constants and not bool(constants[mode].reshape(-1)[0]))


def _live(nodes: list[Node], output: str) -> list[Node]:
    """The nodes the output depends on, in their order."""
    needed, live = {output}, []
    for node in reversed(nodes):
        if needed.intersection(node.outputs):
            live.append(node)
            needed.update(v for v in node.inputs if v)
    return live[::-1]


def _node(proto, position: int, prefix: str = "") -> Node:
    """A Node from an onnx.NodeProto (attribute values decoded)."""
    from onnx import helper

    attrs = {}
    for a in proto.attribute:
        value = helper.get_attribute_value(a)
        attrs[a.name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return Node(
        proto.op_type,
        prefix + proto.name,
        list(proto.input),
        list(proto.output),
        attrs,
        position,
        proto.domain if proto.domain != "ai.onnx" else "",
        proto,
    )


def _fold(nodes: list[Node], constants: dict, shapes: dict, opset: int) -> list[Node]:
    """The nodes that depend on the input; the others' outputs are added to `constants`."""
    pending, data = list(reversed(nodes)), []
    while pending:
        node = pending.pop()
        if node.op_type == "If" and node.domain == "" and node.inputs[0] in constants:
            pending.extend(reversed(_branch(node, constants)))
        elif node.op_type == "Shape" and node.domain == "" and node.inputs[0] in shapes:
            constants[node.outputs[0]] = _shape_of(node, shapes[node.inputs[0]])
        elif _foldable(node, constants):
            constants.update(_evaluate(node, constants, opset))
        else:
            data.append(node)
    return data


def _foldable(node: Node, constants: dict) -> bool:
    """Whether the node's outputs follow from constants alone."""
    if node.domain != "" or node.op_type in NONDETERMINISTIC or node.op_type == "If":
        return False
    return all(not v or v in constants for v in node.inputs)


def _shape_of(node: Node, dims: tuple[int, ...]):
    """What a Shape node gives for a value of static shape `dims` (start and end attributes)."""
    import numpy as np

    return np.array(dims[node.attr("start", 0) : node.attr("end", len(dims))], dtype=np.int64)


def _evaluate(node: Node, constants: dict, opset: int) -> dict:
    """{output: array} of a node run on constants by onnx's reference evaluator."""
    from onnx.reference import ReferenceEvaluator

    if _elements_made(node, constants) > MADE_LIMIT:
        raise unsupported(node, f"it makes a constant of more than {MADE_LIMIT:,} values")
    try:
        evaluator = ReferenceEvaluator(node.proto, opsets={"": opset})
        feeds = {v: constants[v] for v in node.inputs if v}
        results = evaluator.run(None, feeds)
    except Exception as exc:  # the evaluator raises many kinds; each becomes one line
        raise unsupported(node, f"cannot evaluate it on constants: {first_line(exc)}") from None
    return dict(zip(node.outputs, results, strict=False))


def _elements_made(node: Node, constants: dict) -> int:
    """How many values a node that builds a tensor from sizes (ConstantOfShape, Expand, Tile,
    Range) would make: a file may ask for more than memory holds."""
    import numpy as np

    values = [constants[v] for v in node.inputs if v]
    if node.op_type == "ConstantOfShape" and values:
        return int(np.prod(np.maximum(values[0].astype(np.float64), 1)))
    if node.op_type == "Expand" and len(values) == 2:
        return values[0].size * int(np.prod(np.maximum(values[1].astype(np.float64), 1)))
    if node.op_type == "Tile" and len(values) == 2:
        return values[0].size * int(np.prod(np.maximum(values[1].astype(np.float64), 1)))
    if node.op_type == "Range" and len(values) == 3:
        start, limit, delta = (float(v.reshape(-1)[0]) for v in values)
        return int(abs((limit - start) / delta)) if delta else 0
    return 0


def _branch(node: Node, constants: dict) -> list[Node]:
    """The nodes of the branch an `If` on a constant condition takes, renamed to compute the
    If's outputs (their own values get the If's output name as a prefix)."""
    from onnx import numpy_helper

    taken = "then_branch" if bool(constants[node.inputs[0]].reshape(-1)[0]) else "else_branch"
    graph = node.attrs[taken]
    prefix = f"{node.outputs[0]}/"
    renamed = {out.name: mine for out, mine in zip(graph.output, node.outputs, strict=True)}
    for tensor in graph.initializer:
        renamed.setdefault(tensor.name, prefix + tensor.name)
        constants[renamed[tensor.name]] = numpy_helper.to_array(tensor)
    nodes = []
    for proto in graph.node:
        for value in proto.output:
            renamed.setdefault(value, prefix + value)
        inner = _node(proto, node.position, f"{node.name}/")
        inner.inputs = [renamed.get(v, v) if v else v for v in inner.inputs]
        inner.outputs = [renamed[v] for v in inner.outputs]
        inner.proto = _renamed_proto(proto, inner)
        nodes.append(inner)
    return nodes


def _renamed_proto(proto, node: Node):
    """A copy of `proto` reading and writing the renamed values of `node`."""
    copy = type(proto)()
    copy.CopyFrom(proto)
    del copy.input[:]
    del copy.output[:]
    copy.input.extend(node.inputs)
    copy.output.extend(node.outputs)
    return copy


def _reinferred(loaded: Loaded, data: list[Node], constants: dict) -> dict:
    """Static shapes of every value of the folded graph (its constants as typed inputs, the
    small ones with their values, which shape inference reads for Reshape targets and such)."""
    import onnx
    from onnx import helper, numpy_helper

    used = dict.fromkeys(v for n in data for v in n.inputs if v in constants)
    small = [
        numpy_helper.from_array(constants[v], v) for v in used if constants[v].size <= INLINE_SIZE
    ]
    typed = [
        helper.make_tensor_value_info(
            v, helper.np_dtype_to_tensor_dtype(constants[v].dtype), constants[v].shape
        )
        for v in used
        if constants[v].size > INLINE_SIZE
    ]
    source = loaded.proto.graph
    inputs = [v for v in source.input if v.name == loaded.input]
    graph = helper.make_graph(
        [n.proto for n in data], "folded", [*inputs, *typed], list(source.output), small
    )
    model = helper.make_model(graph, opset_imports=list(loaded.proto.opset_import))
    model.ir_version = loaded.proto.ir_version
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # InferenceError, or an op onnx does not know
        raise Unsupported(f"onnx's shape inference fails: {first_line(exc)}") from None
    return static_shapes(inferred)
