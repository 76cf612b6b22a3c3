"""Where each node of the DAG sits on the canvas, and where the edges run.

Layers go left to right (console.workflow.graph.layers). An edge that skips layers passes
through a "lane" slot in each layer it crosses, so it never runs through a node. Within a
layer, slots follow the mean slot of their predecessors, which removes most crossings. Edges
are stored sparsely as direction masks per cell and drawn with box-drawing characters, so
merging and crossing lines join correctly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from console.workflow.graph import layers as step_layers

if TYPE_CHECKING:
    from console.workflow.model import Step

NODE_W = 26
NODE_H = 3
GAP_X = 6
GAP_Y = 1
PITCH_X = NODE_W + GAP_X
PITCH_Y = NODE_H + GAP_Y
PORT = 1  # the row inside a node where edges leave and arrive
LANE_BUDGET = 5000

UP, DOWN, LEFT, RIGHT = 1, 2, 4, 8
LINE_CHARS = {
    LEFT | RIGHT: "─",
    LEFT: "─",
    RIGHT: "─",
    UP | DOWN: "│",
    UP: "│",
    DOWN: "│",
    DOWN | RIGHT: "╭",
    DOWN | LEFT: "╮",
    UP | RIGHT: "╰",
    UP | LEFT: "╯",
    LEFT | RIGHT | DOWN: "┬",
    LEFT | RIGHT | UP: "┴",
    UP | DOWN | RIGHT: "├",
    UP | DOWN | LEFT: "┤",
    UP | DOWN | LEFT | RIGHT: "┼",
}


@dataclass(frozen=True)
class Slot:
    layer: int
    index: int
    step_id: str | None  # None: a lane carrying a long edge through this layer

    @property
    def x(self) -> int:
        return self.layer * PITCH_X

    @property
    def y(self) -> int:
        return self.index * PITCH_Y


@dataclass
class DagLayout:
    slots: dict[str, Slot] = field(default_factory=dict)
    columns: list[list[str]] = field(default_factory=list)  # real step ids per layer, top down
    lanes: list[Slot] = field(default_factory=list)
    edges: dict[int, dict[int, int]] = field(default_factory=dict)  # row -> col -> mask
    rows: dict[int, list[str]] = field(default_factory=dict)  # row -> steps drawn on it
    lane_rows: dict[int, list[Slot]] = field(default_factory=dict)
    needs: dict[str, list[str]] = field(default_factory=dict)
    dependents: dict[str, list[str]] = field(default_factory=dict)
    width: int = 0
    height: int = 0
    undrawn_edges: int = 0

    def layer_of(self, step_id: str) -> int:
        return self.slots[step_id].layer

    def _mark(self, col: int, row: int, mask: int) -> None:
        cells = self.edges.setdefault(row, {})
        cells[col] = cells.get(col, 0) | mask

    def _line(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        (x1, y1), (x2, y2) = a, b
        if y1 == y2:
            lo, hi = min(x1, x2), max(x1, x2)
            for x in range(lo, hi + 1):
                self._mark(x, y1, (RIGHT if x < hi else 0) | (LEFT if x > lo else 0))
        else:
            lo, hi = min(y1, y2), max(y1, y2)
            for y in range(lo, hi + 1):
                self._mark(x1, y, (DOWN if y < hi else 0) | (UP if y > lo else 0))


def build_layout(steps: Mapping[str, Step]) -> DagLayout:
    layout = DagLayout()
    layout.needs = {sid: [n for n in step.needs if n in steps] for sid, step in steps.items()}
    layout.dependents = {sid: [] for sid in steps}
    for sid, needs in layout.needs.items():
        for need in needs:
            layout.dependents[need].append(sid)
    if not steps:
        return layout
    by_layer = step_layers(steps)
    layer_of = {sid: i for i, layer in enumerate(by_layer) for sid in layer}

    # Lanes: an edge u -> v spanning several layers gets one node per crossed layer.
    # A node in the ordering is a step id or a lane key "u>v#k". Past LANE_BUDGET lanes
    # (huge, dense graphs) long edges are left undrawn; the node's "┤" and the step
    # detail's `needs` still show them.
    members: list[list[str]] = [list(layer) for layer in by_layer]
    preds: dict[str, list[str]] = {sid: [] for sid in steps}
    spans = sum(max(0, layer_of[v] - layer_of[u] - 1)
                for v, needs in layout.needs.items() for u in needs)
    draw_long = spans <= LANE_BUDGET
    for v, needs in layout.needs.items():
        for u in needs:
            if not draw_long and layer_of[v] - layer_of[u] > 1:
                layout.undrawn_edges += 1
                continue
            prev = u
            for k in range(layer_of[u] + 1, layer_of[v]):
                lane = f"{u}>{v}#{k}"
                members[k].append(lane)
                preds[lane] = [prev]
                prev = lane
            preds[v].append(prev)

    position: dict[str, float] = {}
    for i, sid in enumerate(members[0]):
        position[sid] = i
    for k in range(1, len(members)):
        def barycenter(node: str, order: int) -> tuple[float, int]:
            ps = [position[p] for p in preds.get(node, []) if p in position]
            return (sum(ps) / len(ps) if ps else float(order), order)

        ranked = sorted(enumerate(members[k]), key=lambda item: barycenter(item[1], item[0]))
        members[k] = [node for _, node in ranked]
        for i, node in enumerate(members[k]):
            position[node] = i

    place: dict[str, Slot] = {}
    for k, layer in enumerate(members):
        column: list[str] = []
        for i, node in enumerate(layer):
            slot = Slot(k, i, node if node in steps else None)
            place[node] = slot
            if slot.step_id is not None:
                layout.slots[node] = slot
                column.append(node)
                for row in range(slot.y, slot.y + NODE_H):
                    layout.rows.setdefault(row, []).append(node)
            else:
                layout.lanes.append(slot)
                layout.lane_rows.setdefault(slot.y + PORT, []).append(slot)
        layout.columns.append(column)

    for node, sources in preds.items():
        target = place[node]
        for source_key in sources:
            _route(layout, place[source_key], target)

    layout.width = len(members) * PITCH_X - GAP_X + 1
    layout.height = max(len(layer) for layer in members) * PITCH_Y
    return layout


def _route(layout: DagLayout, source: Slot, target: Slot) -> None:
    """Right from the source, down or up in the source's own bus column, right into the target."""
    start = source.x + NODE_W
    end = target.x - 1
    bus = start + 1 + source.index % (GAP_X - 2)
    y1, y2 = source.y + PORT, target.y + PORT
    layout._line((start, y1), (bus, y1))
    layout._line((bus, y1), (bus, y2))
    layout._line((bus, y2), (end, y2))
    layout._mark(start, y1, LEFT)
    layout._mark(end, y2, RIGHT)
