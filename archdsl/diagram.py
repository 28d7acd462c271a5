"""`archdsl diagram`: a checked spec's graph as Graphviz DOT source.

Each statement is a node that shows its ops, parameters and MACs; each edge carries the shape of
the tensor it passes. Block calls (nested by their dotted names: `layer2` holds `layer2.0`) and
towers are clusters, the towers side by side. An edge that leaves its tower, for another tower or
for the join of all towers, is a crossing, drawn in red. Every text taken from the spec enters the
source HTML-escaped and as ASCII, so no name or file name can change the DOT syntax around it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import graphviz

from archdsl import ir
from archdsl.diagnostics import visible
from archdsl.ops.spec import fmt
from archdsl.shapes import Layer, Report

MARK = "archdsl diagram"  # the DOT source's first line (a comment), and a comment in its SVG
CROSSING = "#c0392b"  # the colour of the edges between towers
OPS_PER_LINE = 4
OUTPUT_ID = "output"
GRAPH_STYLE = {"rankdir": "TB", "labelloc": "t", "fontname": "Helvetica"}
NODE_STYLE = {"shape": "box", "style": "rounded", "fontname": "Helvetica", "fontsize": "11"}
EDGE_STYLE = {"fontname": "Helvetica", "fontsize": "9"}
BLOCK_STYLE = {"style": "rounded,dashed", "color": "#7f8c8d", "fontname": "Helvetica"}
TOWER_STYLE = {"style": "rounded,filled", "color": "#aac4dc", "fillcolor": "#f2f7fb"}


@dataclass
class Cluster:
    """A tower or a block call: the statements directly in it, and the clusters inside it."""

    id: str
    label: str
    tower: bool = False
    statements: list[ir.Statement] = field(default_factory=list)
    children: dict[tuple[str, str], Cluster] = field(default_factory=dict)


@dataclass(frozen=True)
class Drawing:
    """A diagram's DOT source, and what it draws."""

    source: str
    nodes: int
    edges: int
    clusters: int


@dataclass(frozen=True)
class Edge:
    """One tensor passed from a node to the next, labelled with its shape."""

    source: str
    target: str
    shape: tuple[int, ...]
    crossing: bool  # it leaves a tower for another tower, or for the join of all towers


def text(value: object) -> str:
    """Spec text for an HTML-like label: invisible characters shown, markup escaped, ASCII."""
    escaped = html.escape(visible(str(value)), quote=True)
    return escaped.encode("ascii", "xmlcharrefreplace").decode("ascii")


def html_label(lines: list[str]) -> str:
    """An HTML-like label of already escaped lines."""
    return "<" + "<br/>".join(lines) + ">"


def diagram(report: Report) -> Drawing:
    """The spec's graph: inputs, statements in their clusters, the output, shaped edges."""
    graph = report.graph
    dot = graphviz.Digraph(name="archdsl", comment=MARK, node_attr=NODE_STYLE, edge_attr=EDGE_STYLE)
    dot.attr("graph", comment=MARK, label=_title(report), **GRAPH_STYLE)
    ids = node_ids(graph)
    for source in graph.inputs:
        dot.node(ids[source.name], html_label([f"<b>{text(source.name)}</b>", "input"]))
    tree = clusters(graph)
    _draw(dot, tree, ids, report, report.by_statement())
    dot.node(OUTPUT_ID, "output", shape="oval")
    found = edges(report, ids)
    for edge in found:
        style = {"color": CROSSING, "fontcolor": CROSSING, "penwidth": "2"} if edge.crossing else {}
        dot.edge(edge.source, edge.target, html_label([text(fmt(edge.shape))]), **style)
    return Drawing(dot.source, len(ids) + 1, len(found), _count(tree) - 1)


def _count(cluster: Cluster) -> int:
    """How many clusters the tree holds, itself included."""
    return 1 + sum(_count(child) for child in cluster.children.values())


def node_ids(graph: ir.Graph) -> dict[str, str]:
    """A DOT identifier for every input and statement: `in0`..., `s0`... in source order."""
    ids = {source.name: f"in{i}" for i, source in enumerate(graph.inputs)}
    ids.update({stmt.name: f"s{i}" for i, stmt in enumerate(graph.statements)})
    return ids


def _title(report: Report) -> str:
    """The model's name, file and totals, drawn above the graph."""
    graph = report.graph
    totals = f"{report.total_params:,} params, {report.total_macs:,} MACs per example"
    return html_label([f"<b>{text(graph.name)}</b> ({text(graph.file)})", totals])


def clusters(graph: ir.Graph) -> Cluster:
    """The tree of towers and block calls, each statement in its innermost cluster."""
    blocks = {call.path: call.block for call in graph.calls}
    root = Cluster("root", "")
    count = 0
    for stmt in graph.statements:
        where = root
        for key, label in _cluster_path(stmt, blocks):
            if key not in where.children:
                where.children[key] = Cluster(f"cluster_{count}", label, key[0] == "tower")
                count += 1
            where = where.children[key]
        where.statements.append(stmt)
    return root


def _cluster_path(stmt: ir.Statement, blocks: dict[str, str]) -> list[tuple[tuple, str]]:
    """(key, label) of each cluster around a statement, outermost first: its tower, then the
    block calls its dotted name passes through (`layer2`, `layer2.0` for `layer2.0.conv1`)."""
    path = [] if stmt.tower is None else [(("tower", str(stmt.tower)), f"tower {stmt.tower}")]
    parts = stmt.name.split(".")[:-1]
    for depth in range(1, len(parts) + 1):
        call = ".".join(parts[:depth])
        label = f"{call} ({blocks[call]})" if call in blocks else call
        path.append((("block", call), label))
    return path


def _draw(dot, cluster: Cluster, ids: dict, report: Report, layers: dict) -> None:
    """Draw a cluster's statements, then the clusters inside it as DOT subgraphs."""
    for stmt in cluster.statements:
        live = stmt.name in report.live
        label = statement_label(stmt, layers.get(stmt.name, []), live)
        dot.node(ids[stmt.name], label, **({} if live else {"style": "rounded,dashed"}))
    for child in cluster.children.values():
        with dot.subgraph(name=child.id) as sub:
            sub.attr(label=html_label([text(child.label)]))
            sub.attr(**(TOWER_STYLE if child.tower else BLOCK_STYLE))
            _draw(sub, child, ids, report, layers)


def statement_label(stmt: ir.Statement, layers: list[Layer], live: bool) -> str:
    """A statement's name, its ops as the spec chains them, and its parameters and MACs."""
    ops = [text(op_text(op)) for op in stmt.ops]
    chain = [" |&gt; ".join(ops[i : i + OPS_PER_LINE]) for i in range(0, len(ops), OPS_PER_LINE)]
    params, macs = sum(layer.params for layer in layers), sum(layer.macs for layer in layers)
    counts = [f"{params:,} params"] * bool(params) + [f"{macs:,} MACs"] * bool(macs)
    lines = [f"<b>{text(stmt.name)}</b>", *chain]
    if counts:
        lines.append(f'<font point-size="9">{", ".join(counts)}</font>')
    if not live:
        lines.append("<i>unused: not built</i>")
    return html_label(lines)


def op_text(op) -> str:
    """An op with its width, window and stride, as figures draw them: `conv 48 11x11/4`."""
    parts = [op.op]
    width = getattr(op, "filters", None) or getattr(op, "units", None)
    if width:
        parts.append(str(width))
    window = "x".join(map(str, getattr(op, "kernel", ())))
    stride = getattr(op, "stride", (1, 1))
    if stride != (1, 1):
        window += "/" + (str(stride[0]) if stride[0] == stride[1] else "x".join(map(str, stride)))
    if window:
        parts.append(window)
    if getattr(op, "groups", 1) > 1:
        parts.append(f"groups {op.groups}")
    return " ".join(parts)


def edges(report: Report, ids: dict[str, str]) -> list[Edge]:
    """Every input a statement reads, and the output, as edges labelled with shapes."""
    graph = report.graph
    shapes = {source.name: source.shape for source in graph.inputs} | report.outputs
    towers = {stmt.name: stmt.tower for stmt in graph.statements}
    found = []
    for stmt in graph.statements:
        for name in stmt.inputs:
            crossing = towers.get(name) is not None and towers[name] != stmt.tower
            found.append(Edge(ids[name], ids[stmt.name], shapes[name], crossing))
    found.append(Edge(ids[graph.output], OUTPUT_ID, shapes[graph.output], False))
    return found
