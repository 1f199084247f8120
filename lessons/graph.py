"""Layouts for the two graphs a learner sees, drawn on the server as SVG.

* the **term graph**: prerequisites on the left, the term in the centre, the terms built on it on
  the right, related terms below it with dashed edges;
* the **knowledge map**: every term, in rows by prerequisite depth, edges from prerequisite to term.

Both return plain data (nodes with positions, edges with end points) for the SVG templates.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

NODE_W, NODE_H = 168, 40


@dataclass
class Node:
    slug: str
    title: str
    url: str
    x: float  # centre
    y: float
    kind: str  # "current" | "prerequisite" | "child" | "related" | "term"
    mastery: str  # the learner's level, as given by the caller (lessons knows no quiz)

    @property
    def label(self) -> str:
        """The title without a trailing gloss in parentheses: "自己注意 (Self-Attention)" shows
        as 自己注意 in a node; the full title stays in the node's tooltip."""
        return re.sub(r"\s*[(（][^()（）]*[)）]$", "", self.title) or self.title

    @property
    def too_wide(self) -> bool:
        """Whether the label needs squeezing into the node (wide CJK glyphs count double)."""
        units = sum(2 if ord(ch) > 0x2E80 else 1 for ch in self.label[:22])
        return units * 6.6 > NODE_W - 12

    @property
    def left(self) -> float:
        return self.x - NODE_W / 2

    @property
    def top(self) -> float:
        return self.y - NODE_H / 2

    @property
    def svg(self) -> dict[str, str]:
        """Coordinates as SVG attribute text (formatting here is far cheaper than in templates)."""
        return {
            "x": f"{self.x:.1f}",
            "y": f"{self.y:.1f}",
            "left": f"{self.left:.1f}",
            "top": f"{self.top:.1f}",
        }


@dataclass
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float
    dashed: bool = False

    @property
    def path(self) -> str:
        """A smooth cubic curve between the two ends, horizontal or vertical by the larger gap."""
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        if abs(dx) >= abs(dy):
            c1, c2 = (self.x1 + dx / 2, self.y1), (self.x1 + dx / 2, self.y2)
        else:
            c1, c2 = (self.x1, self.y1 + dy / 2), (self.x2, self.y1 + dy / 2)
        return (
            f"M{self.x1:.1f},{self.y1:.1f} C{c1[0]:.1f},{c1[1]:.1f} "
            f"{c2[0]:.1f},{c2[1]:.1f} {self.x2:.1f},{self.y2:.1f}"
        )


@dataclass
class Layout:
    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float

    @property
    def size(self) -> dict[str, str]:
        return {"width": f"{self.width:.0f}", "height": f"{self.height:.0f}"}


def prerequisite_depths(graph: nx.DiGraph) -> dict[str, int]:
    """Depth of each term: 0 without prerequisites, else one more than its deepest one."""
    depth: dict[str, int] = {}
    for slug in nx.topological_sort(graph):
        parents = list(graph.predecessors(slug))
        depth[slug] = 1 + max(depth[p] for p in parents) if parents else 0
    return depth


def _column(count: int, *, centre: float, gap: float = NODE_H + 16) -> list[float]:
    start = centre - gap * (count - 1) / 2
    return [start + gap * i for i in range(count)]


def term_graph(
    *,
    current: tuple[str, str, str],
    prerequisites: list[tuple[str, str, str]],
    children: list[tuple[str, str, str]],
    related: list[tuple[str, str, str]],
    mastery: Mapping[str, str],
    default_mastery: str,
) -> Layout:
    """Each term is ``(slug, title, url)``. Columns: prerequisites | current | children.
    ``mastery`` maps a slug to the learner's level; other terms get ``default_mastery``."""
    rows = max(len(prerequisites), len(children), 1)
    column_h = rows * (NODE_H + 16)
    related_rows = (len(related) + 2) // 3
    height = max(column_h, NODE_H + 16) + related_rows * (NODE_H + 16) + 40
    width = 3 * NODE_W + 2 * 70 + 20
    centre_y = 20 + column_h / 2
    xs = (10 + NODE_W / 2, width / 2, width - 10 - NODE_W / 2)

    def node(item, x, y, kind):
        slug, title, url = item
        return Node(slug, title, url, x, y, kind, mastery.get(slug, default_mastery))

    me = node(current, xs[1], centre_y, "current")
    nodes, edges = [me], []
    for item, y in zip(prerequisites, _column(len(prerequisites), centre=centre_y), strict=True):
        nodes.append(node(item, xs[0], y, "prerequisite"))
        edges.append(Edge(xs[0] + NODE_W / 2, y, me.left, me.y))
    for item, y in zip(children, _column(len(children), centre=centre_y), strict=True):
        nodes.append(node(item, xs[2], y, "child"))
        edges.append(Edge(me.x + NODE_W / 2, me.y, xs[2] - NODE_W / 2, y))
    for index, item in enumerate(related):
        row, col = divmod(index, 3)
        x = xs[col]
        y = 20 + column_h + 24 + row * (NODE_H + 16) + NODE_H / 2
        nodes.append(node(item, x, y, "related"))
        edges.append(Edge(me.x, me.y + NODE_H / 2, x, y - NODE_H / 2, dashed=True))
    return Layout(nodes, edges, width, height)


def knowledge_map(
    *,
    terms: list[tuple[str, str, str]],
    prerequisite_edges: list[tuple[str, str]],
    mastery: Mapping[str, str],
    default_mastery: str,
) -> Layout:
    """All terms in rows by prerequisite depth (networkx's topological order), ordered within a
    row by the mean position of their prerequisites (the barycentre heuristic of layered graph
    drawing) so that edges cross less. ``mastery`` as for ``term_graph``."""
    graph = nx.DiGraph()
    graph.add_nodes_from(slug for slug, _title, _url in terms)
    graph.add_edges_from(prerequisite_edges)
    depth = prerequisite_depths(graph)
    rows: dict[int, list[str]] = {}
    for slug in sorted(graph, key=lambda s: (depth[s], s)):
        rows.setdefault(depth[slug], []).append(slug)
    order: dict[str, float] = {}
    for level in sorted(rows):
        members = rows[level]
        if level:
            members.sort(
                key=lambda s: (
                    sum(order[p] for p in graph.predecessors(s)) / max(1, graph.in_degree(s))
                )
            )
        for index, slug in enumerate(members):
            order[slug] = index - (len(members) - 1) / 2

    widest = max(len(members) for members in rows.values())
    width = widest * (NODE_W + 24) + 40
    height = len(rows) * (NODE_H + 36) + 24
    xs = {slug: width / 2 + order[slug] * (NODE_W + 24) for slug in graph}
    ys = {slug: 12 + NODE_H / 2 + depth[slug] * (NODE_H + 36) for slug in graph}
    info = {slug: (title, url) for slug, title, url in terms}
    nodes = [
        Node(
            slug,
            info[slug][0],
            info[slug][1],
            xs[slug],
            ys[slug],
            "term",
            mastery.get(slug, default_mastery),
        )
        for slug in sorted(graph, key=lambda s: (depth[s], order[s]))
    ]
    edges = [Edge(xs[a], ys[a] + NODE_H / 2, xs[b], ys[b] - NODE_H / 2) for a, b in graph.edges]
    return Layout(nodes, edges, width, height)
