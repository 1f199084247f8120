"""Layouts for the two graphs a learner sees, drawn on the server as SVG.

* the **term graph**: prerequisites on the left, the term, then the terms built on it on the
  right, with the related terms after them (dashed edges);
* the **knowledge map**: every term, in rows by prerequisite depth, edges from prerequisite to term.

Both are layered ("Sugiyama") drawings with grandalf: it ranks the terms into layers, gives
every edge that spans several layers a dummy vertex of its own in each layer it passes (a lane, so
that a long edge runs through a gap between the nodes of that layer instead of through them) and
orders each layer to reduce edge crossings; adjacent exchanges then remove more, and a compact
least-squares placement keeps that order. An edge is drawn straight along its lane through each
layer and as a smooth curve through the empty band between two layers, so no edge ever crosses a
node's box.

Both return plain data (nodes with positions, edges with the points they pass) for the SVG
template.
"""

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import pairwise

import networkx as nx
from grandalf.graphs import Edge as _GEdge
from grandalf.graphs import Vertex as _GVertex
from grandalf.graphs import graph_core
from grandalf.layouts import SugiyamaLayout

NODE_W, NODE_H = 168, 40
MARGIN = 12
# The knowledge map (rows top to bottom): gaps between nodes in a row, and between rows.
MAP_XSPACE, MAP_YSPACE = 24, 44
# The term graph (columns left to right): gaps between nodes in a column, and between columns.
TERM_XSPACE, TERM_YSPACE = 16, 70
# The width of a long edge's lane through a layer, the least gap beside a lane (to a node or to
# another lane), and how far apart the edges leave a node.
LANE_W = 4
LANE_SPACE = 10
PORT_GAP = 14
ORDERING_ROUNDS = 8

Point = tuple[float, float]


@dataclass
class Node:
    slug: str
    title: str
    url: str
    x: float  # centre
    y: float
    kind: str  # "current" | "prerequisite" | "child" | "related" | "term"
    mastery: str  # the learner's level, as given by the caller (lessons knows no quiz)
    also_related: bool = False  # a child (or prerequisite) that is also one of the related terms

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
    def box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom)."""
        return self.left, self.top, self.left + NODE_W, self.top + NODE_H

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
    """An edge from ``source`` to ``target`` through the routed ``points``: the first and last lie
    on the two nodes' sides, the others two by two at the ends of the edge's lane through each
    layer it passes. ``horizontal``: the layers are columns (left to right) rather than rows."""

    source: str
    target: str
    points: list[Point]
    dashed: bool = False
    horizontal: bool = False

    def _pieces(self) -> Iterable[tuple[Point, Point, Point | None, Point | None]]:
        """Each step between two points: straight along a lane, else a curve whose tangents
        follow the main axis at both ends, with its control points inside the band between the
        two layers (so the curve stays in that band)."""
        for a, b in pairwise(self.points):
            across_a, across_b = (a[1], b[1]) if self.horizontal else (a[0], b[0])
            if abs(across_a - across_b) < 0.05:
                yield a, b, None, None
            elif self.horizontal:
                mid = (a[0] + b[0]) / 2
                yield a, b, (mid, a[1]), (mid, b[1])
            else:
                mid = (a[1] + b[1]) / 2
                yield a, b, (a[0], mid), (b[0], mid)

    @property
    def path(self) -> str:
        """The SVG path: M, then L for a straight step and C for a curved one."""
        x0, y0 = self.points[0]
        parts = [f"M{x0:.1f},{y0:.1f}"]
        for _a, b, c1, c2 in self._pieces():
            if c1 is None:
                parts.append(f"L{b[0]:.1f},{b[1]:.1f}")
            else:
                parts.append(
                    f"C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {b[0]:.1f},{b[1]:.1f}"
                )
        return " ".join(parts)

    def polyline(self, steps: int = 16) -> list[Point]:
        """The drawn curve as a fine polyline (to measure crossings)."""
        out = [self.points[0]]
        for a, b, c1, c2 in self._pieces():
            if c1 is None:
                out.append(b)
                continue
            for i in range(1, steps + 1):
                t = i / steps
                u = 1 - t
                out.append(
                    tuple(
                        u**3 * a[k] + 3 * u * u * t * c1[k] + 3 * u * t * t * c2[k] + t**3 * b[k]
                        for k in (0, 1)
                    )
                )
        return out


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


# --- the layered drawing ------------------------------------------------------------------------


class _View:
    """What grandalf reads and writes for a vertex: its size and, after drawing, its centre."""

    def __init__(self, w: float, h: float):
        self.w, self.h = w, h
        self.xy: Point = (0.0, 0.0)


@dataclass
class _Drawn:
    centres: dict[str, Point]  # in the layout's own frame: layers are rows, y grows downwards
    lanes: dict[tuple[str, str], list[Point]]  # the dummy centres of each long edge, in order


def _crossings(orders: list[list], chains: Iterable[list]) -> int:
    """Edge crossings between adjacent layers: two segments cross when their ends are in
    opposite orders in the two layers (the curves between two layers are monotone, and the
    ports on a node follow the order of the other ends, so this is exact)."""
    position = {v: i for order in orders for i, v in enumerate(order)}
    rank = {v: r for r, order in enumerate(orders) for v in order}
    bands: dict[int, list[tuple[int, int]]] = {}
    for chain in chains:
        for u, v in pairwise(chain):
            bands.setdefault(rank[u], []).append((position[u], position[v]))
    count = 0
    for segments in bands.values():
        for i, (a1, b1) in enumerate(segments):
            for a2, b2 in segments[i + 1 :]:
                if (a1 - a2) * (b1 - b2) < 0:
                    count += 1
    return count


def _exchange(orders: list[list], chains: Iterable[list]) -> list[list]:
    """Improve an order by exchanging neighbours in a layer while that removes crossings (the
    adjacent-exchange step of layered drawing, measured on both bands around the layer)."""
    orders = [list(order) for order in orders]
    position = {v: i for order in orders for i, v in enumerate(order)}
    up: dict = {v: [] for order in orders for v in order}
    down: dict = {v: [] for order in orders for v in order}
    for chain in chains:
        for u, v in pairwise(chain):
            down[u].append(v)
            up[v].append(u)

    def gain(a, b) -> int:  # crossings removed by putting b before a
        change = 0
        for near in (up, down):
            for u in near[a]:
                for w in near[b]:
                    if position[u] > position[w]:
                        change += 1
                    elif position[u] < position[w]:
                        change -= 1
        return change

    improved = True
    while improved:
        improved = False
        for order in orders:
            for i in range(len(order) - 1):
                a, b = order[i], order[i + 1]
                if gain(a, b) > 0:
                    order[i], order[i + 1] = b, a
                    position[a], position[b] = i + 1, i
                    improved = True
    return orders


def _monotone_fit(targets: list[float], weights: list[float]) -> list[float]:
    """The nondecreasing sequence closest to ``targets`` in weighted least squares (pool
    adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for target, weight in zip(targets, weights, strict=True):
        blocks.append([target, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for mean, _weight, count in blocks:
        out += [mean] * count
    return out


def _place(
    orders: list[list], chains: Iterable[list], *, real: set, across: float, xspace: float
) -> dict:
    """Positions along each layer, keeping grandalf's order: each vertex as near as it may be to
    the mean of its neighbours in the layer above (then below), never closer to the next one
    than the half sizes plus ``xspace`` between two nodes, ``LANE_SPACE`` beside a lane. Lanes
    weigh more than nodes, so long edges run straight.
    A least-squares placement, solved exactly per layer (``_monotone_fit``), swept down and up.
    ``real`` are the graph's own vertices, ``across`` wide; the others are lanes."""

    def size(v) -> float:
        return across if v in real else LANE_W

    def gap(u, v) -> float:
        return (size(u) + size(v)) / 2 + (xspace if u in real and v in real else LANE_SPACE)

    up: dict = {v: [] for order in orders for v in order}
    down: dict = {v: [] for order in orders for v in order}
    for chain in chains:
        for u, v in pairwise(chain):
            down[u].append(v)
            up[v].append(u)
    x: dict = {}
    for order in orders:
        at = 0.0
        for i, v in enumerate(order):
            at += gap(order[i - 1], v) if i else 0.0
            x[v] = at
        for v in order:
            x[v] -= at / 2

    def sweep(layer_orders, neighbours):
        for order in layer_orders:
            offsets, at = [], 0.0
            for i, v in enumerate(order):
                at += gap(order[i - 1], v) if i else 0.0
                offsets.append(at)
            targets, weights = [], []
            for v, offset in zip(order, offsets, strict=True):
                near = neighbours[v]
                wanted = sum(x[n] for n in near) / len(near) if near else x[v]
                targets.append(wanted - offset)
                weights.append((1.0 if v in real else 4.0) * (1 if near else 0.25))
            for v, y, offset in zip(order, _monotone_fit(targets, weights), offsets, strict=True):
                x[v] = y + offset

    for _ in range(6):
        sweep(orders[1:], up)
        sweep(orders[-2::-1], down)
    sweep(orders[1:], up)
    return x


def _sugiyama(
    slugs: list[str],
    edges: list[tuple[str, str]],
    *,
    across: float,
    along: float,
    xspace: float,
    yspace: float,
) -> _Drawn:
    """Lay out a DAG in layers, one connected component after the other, side by side: the
    layers and each long edge's dummy vertices are grandalf's, and so is the ordering within
    the layers (the barycentre heuristic with adjacent exchanges, swept down and up); of its
    rounds, the order with the fewest crossings is kept. ``across`` is a node's size along a
    layer, ``along`` its size across the layers. The order of ``slugs`` and ``edges`` decides
    ties, so the same input gives the same drawing."""
    graph = nx.DiGraph()
    graph.add_nodes_from(slugs)
    graph.add_edges_from(edges)
    position = {slug: index for index, slug in enumerate(slugs)}
    components = sorted(
        (sorted(c, key=position.__getitem__) for c in nx.weakly_connected_components(graph)),
        key=lambda c: position[c[0]],
    )
    centres: dict[str, Point] = {}
    lanes: dict[tuple[str, str], list[Point]] = {}
    offset = 0.0
    for members in components:
        vertices = {slug: _GVertex(slug) for slug in members}
        for vertex in vertices.values():
            vertex.view = _View(across, along)
        g_edges = {(a, b): _GEdge(vertices[a], vertices[b]) for a, b in edges if a in vertices}
        core = graph_core(list(vertices.values()), list(g_edges.values()))
        sugiyama = SugiyamaLayout(core)
        sugiyama.dw, sugiyama.dh = LANE_W, along  # a long edge's lane in each layer it passes
        sugiyama.init_all(roots=[vertices[s] for s in members if graph.in_degree(s) == 0])
        chains = {}
        for key, edge in g_edges.items():
            ctrl = sugiyama.ctrls.get(edge, {})
            a, b = edge.v
            chains[key] = [a, *(ctrl[r] for r in sorted(ctrl) if ctrl[r] not in (a, b)), b]
        best = None
        for _round in range(ORDERING_ROUNDS + 1):
            orders = [list(layer) for layer in sugiyama.layers]
            count = _crossings(orders, chains.values())
            if best is None or count < best[0]:
                best = (count, orders)
            deque(sugiyama.ordering_step(), maxlen=0)  # run one round (it yields per layer)
        orders = _exchange(best[1], chains.values())
        real = set(vertices.values())
        x = _place(orders, chains.values(), real=real, across=across, xspace=xspace)
        shift = offset - min(x[v] - (across if v in real else LANE_W) / 2 for v in x)
        rank = {v: r for r, order in enumerate(orders) for v in order}

        def centre(v, shift=shift, rank=rank, x=x):
            return (x[v] + shift, rank[v] * (along + yspace) + along / 2)

        for slug, vertex in vertices.items():
            centres[slug] = centre(vertex)
        for key, chain in chains.items():
            lanes[key] = [centre(v) for v in chain[1:-1]]
        offset = max(centre(v)[0] for v in x) + across / 2 + 2 * xspace
    return _Drawn(centres, lanes)


def _ports(
    drawn: _Drawn, edges: list[tuple[str, str]], *, across: float, along: float
) -> dict[tuple[str, str], list[Point]]:
    """Route every edge: from the bottom side of its source, straight down each lane it passes,
    to the top side of its target (all in the layout's own frame). The edges leaving (or
    entering) one node are spread along its side in the order of where they go next, so they do
    not cross at the node and their arrowheads do not pile up."""
    inner: dict[tuple[str, str], list[Point]] = {}
    for key in edges:
        points: list[Point] = []
        for x, y in drawn.lanes.get(key, []):
            points += [(x, y - along / 2), (x, y + along / 2)]
        inner[key] = points
    out_x: dict[tuple[str, str], float] = {}
    in_x: dict[tuple[str, str], float] = {}
    for side, table, pick in (("out", out_x, 0), ("in", in_x, 1)):
        by_node: dict[str, list[tuple[str, str]]] = {}
        for key in edges:
            by_node.setdefault(key[pick], []).append(key)
        for slug, keys in by_node.items():

            def toward(key, side=side):
                points = inner[key]
                if points:
                    return points[0 if side == "out" else -1][0]
                return drawn.centres[key[1] if side == "out" else key[0]][0]

            keys.sort(key=lambda k: (toward(k), k))
            gap = min(PORT_GAP, (across - 24) / max(1, len(keys) - 1))
            centre = drawn.centres[slug][0]
            for index, key in enumerate(keys):
                table[key] = centre + (index - (len(keys) - 1) / 2) * gap
    routes = {}
    for key in edges:
        a, b = drawn.centres[key[0]], drawn.centres[key[1]]
        routes[key] = [(out_x[key], a[1] + along / 2), *inner[key], (in_x[key], b[1] - along / 2)]
    return routes


def _fit(nodes: list[Node], edges: list[Edge]) -> tuple[float, float]:
    """Move everything so that it starts at the margin; return the width and height."""
    xs = [n.left for n in nodes] + [p[0] for e in edges for p in e.points]
    ys = [n.top for n in nodes] + [p[1] for e in edges for p in e.points]
    dx, dy = MARGIN - min(xs), MARGIN - min(ys)
    for node in nodes:
        node.x += dx
        node.y += dy
    for edge in edges:
        edge.points = [(x + dx, y + dy) for x, y in edge.points]
    width = max([n.left + NODE_W for n in nodes] + [p[0] for e in edges for p in e.points])
    height = max([n.top + NODE_H for n in nodes] + [p[1] for e in edges for p in e.points])
    return width + MARGIN, height + MARGIN


# --- the two graphs -----------------------------------------------------------------------------


def term_graph(
    *,
    current: tuple[str, str, str],
    prerequisites: list[tuple[str, str, str]],
    children: list[tuple[str, str, str]],
    related: list[tuple[str, str, str]],
    mastery: Mapping[str, str],
    default_mastery: str,
) -> Layout:
    """Each term is ``(slug, title, url)``. Three columns, left to right: prerequisites | the
    term | the terms built on it, then its related terms (dashed). A term appears once: one that
    is a prerequisite or a child and also related is drawn where it first belongs, marked
    ``also_related``. ``mastery`` maps a slug to the learner's level; other terms get
    ``default_mastery``."""
    me = current[0]
    placed: dict[str, tuple[tuple[str, str, str], str]] = {me: (current, "current")}
    for kind, items in (("prerequisite", prerequisites), ("child", children)):
        for item in items:
            placed.setdefault(item[0], (item, kind))
    related_slugs = {slug for slug, _title, _url in related}
    for item in related:
        placed.setdefault(item[0], (item, "related"))

    edges: list[tuple[str, str]] = []
    dashed: set[tuple[str, str]] = set()
    for slug, (_item, kind) in placed.items():
        if kind == "prerequisite":
            edges.append((slug, me))
        elif kind in ("child", "related"):
            edges.append((me, slug))
            if kind == "related":
                dashed.add((me, slug))
    # Transposed: grandalf lays rows top to bottom; these rows become columns left to right.
    drawn = _sugiyama(
        list(placed), edges, across=NODE_H, along=NODE_W, xspace=TERM_XSPACE, yspace=TERM_YSPACE
    )
    routes = _ports(drawn, edges, across=NODE_H, along=NODE_W)
    nodes = []
    for slug, ((_s, title, url), kind) in placed.items():
        across, along = drawn.centres[slug]
        nodes.append(
            Node(
                slug,
                title,
                url,
                along,
                across,
                kind,
                mastery.get(slug, default_mastery),
                also_related=kind in ("prerequisite", "child") and slug in related_slugs,
            )
        )
    drawn_edges = [
        Edge(a, b, [(y, x) for x, y in routes[(a, b)]], dashed=(a, b) in dashed, horizontal=True)
        for a, b in edges
    ]
    width, height = _fit(nodes, drawn_edges)
    return Layout(nodes, drawn_edges, width, height)


@lru_cache(maxsize=8)
def _map_geometry(slugs: tuple[str, ...], prerequisite_edges: tuple[tuple[str, str], ...]):
    """Where the map's nodes and edges go: it depends only on the terms and their edges, not on
    titles, language or the learner, so it is computed once per glossary and kept (the layout
    takes about 19 ms). The caller must not change what it returns."""
    graph = nx.DiGraph()
    graph.add_nodes_from(slugs)
    graph.add_edges_from(prerequisite_edges)
    depth = prerequisite_depths(graph)
    ordered = sorted(graph, key=lambda s: (depth[s], s))
    edges = sorted(graph.edges, key=lambda e: (depth[e[0]], e[0], depth[e[1]], e[1]))
    drawn = _sugiyama(
        ordered, edges, across=NODE_W, along=NODE_H, xspace=MAP_XSPACE, yspace=MAP_YSPACE
    )
    routes = _ports(drawn, edges, across=NODE_W, along=NODE_H)
    return ordered, edges, depth, drawn, routes


def knowledge_map(
    *,
    terms: list[tuple[str, str, str]],
    prerequisite_edges: list[tuple[str, str]],
    mastery: Mapping[str, str],
    default_mastery: str,
) -> Layout:
    """All terms in rows by prerequisite depth, each row ordered by grandalf to reduce edge
    crossings, edges from prerequisite to term routed around the nodes. ``mastery`` as for
    ``term_graph``."""
    slugs, edges, depth, drawn, routes = _map_geometry(
        tuple(slug for slug, _title, _url in terms), tuple(sorted(prerequisite_edges))
    )
    info = {slug: (title, url) for slug, title, url in terms}
    nodes = [
        Node(
            slug,
            info[slug][0],
            info[slug][1],
            *drawn.centres[slug],
            "term",
            mastery.get(slug, default_mastery),
        )
        for slug in sorted(slugs, key=lambda s: (depth[s], drawn.centres[s][0]))
    ]
    drawn_edges = [Edge(a, b, routes[(a, b)]) for a, b in edges]
    width, height = _fit(nodes, drawn_edges)
    return Layout(nodes, drawn_edges, width, height)


def with_mastery(layout: Layout, *, mastery: Mapping[str, str], default_mastery: str) -> Layout:
    """The same drawing with the nodes coloured by ``mastery`` (as for ``term_graph``). Nodes
    are copied, the rest shared: a layout kept for every learner is never changed."""
    if not mastery:
        return layout
    nodes = [
        replace(node, mastery=mastery.get(node.slug, default_mastery)) for node in layout.nodes
    ]
    return Layout(nodes, layout.edges, layout.width, layout.height)
