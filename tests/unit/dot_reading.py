"""Reading back the DOT source `archdsl diagram` writes: nodes, edges and nested clusters."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

NODE = re.compile(r"^\s*(\w+) \[label=<(.*)>(.*)\]$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+) \[label=<([^<>]*)>(.*)\]$")
CLUSTER = re.compile(r"^\s*subgraph (cluster_\d+) \{$")
LABEL = re.compile(r"^\s*label=<(.*)>$")
NAME = re.compile(r"^<b>([^<]*)</b>")


@dataclass
class Cluster:
    """A cluster's label, the node names directly in it, and the clusters inside it."""

    label: str = ""
    nodes: list[str] = field(default_factory=list)
    children: list[Cluster] = field(default_factory=list)

    def find(self, label: str) -> Cluster:
        """The cluster with this label, anywhere in the tree."""
        for child in self.children:
            if child.label == label:
                return child
            try:
                return child.find(label)
            except KeyError:
                pass
        raise KeyError(label)

    def all_nodes(self) -> set[str]:
        """The node names in this cluster and every cluster inside it."""
        return set(self.nodes).union(*(child.all_nodes() for child in self.children))


@dataclass
class Dot:
    """What a DOT source draws, by statement name."""

    labels: dict[str, str]  # node name -> its label, HTML entities decoded
    edges: list[tuple[str, str, str, bool]]  # (source, target, shape label, drawn as a crossing)
    root: Cluster


def read_dot(source: str) -> Dot:
    """Parse the DOT that archdsl.diagram writes (one statement a line)."""
    names = {"output": "output"}
    labels, raw_edges, stack = {}, [], [Cluster()]
    for line in source.splitlines():
        if m := CLUSTER.match(line):
            child = Cluster()
            stack[-1].children.append(child)
            stack.append(child)
        elif line.strip() == "}" and len(stack) > 1:
            stack.pop()
        elif (m := LABEL.match(line)) and len(stack) > 1:
            stack[-1].label = html.unescape(m[1])
        elif m := EDGE.match(line):
            raw_edges.append((m[1], m[2], html.unescape(m[3]), "penwidth=2" in m[4]))
        elif (m := NODE.match(line)) and (name := NAME.match(m[2])):
            names[m[1]] = html.unescape(name[1])
            labels[names[m[1]]] = html.unescape(m[2])
            stack[-1].nodes.append(names[m[1]])
    edges = [(names[a], names[b], shape, crossing) for a, b, shape, crossing in raw_edges]
    return Dot(labels, edges, stack[0])
