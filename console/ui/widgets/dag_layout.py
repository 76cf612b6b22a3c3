"""Where each node of the DAG sits on the canvas, and where the edges run.

Layers come from console.workflow.graph.layers. An edge that skips layers passes through a
"lane" slot in each layer it crosses, so it never runs through a node. Within a layer,
slots follow the mean slot of their predecessors, which removes most crossings. This
ordering is worked out once per workflow (`order_steps`); `place` then puts it on a canvas
in one of a few geometries, and `choose_geometry` takes the richest one that fits the
window:

- "lr", boxed cards (3 rows: name, status, gate), layers left to right: wide windows;
- "tb", two-row cards (name; status and gate), layers top to bottom: narrow ones;
- "tb", one-row cards: when even that is too tall.

Top to bottom, cards are as wide as each other unless a layer is short of room for its
names: then each card of that layer gets what its name needs and the rest is shared out
(`card_widths`), so `integration-tests` beside `unit-tests` stays whole in a narrow view.

Edges are stored sparsely as direction masks per cell and drawn with box-drawing
characters, so merging and crossing lines join correctly. A node's width follows its
longest label (up to a limit), so a longer name (a group of instances) still reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from console.textsafe import terminal_safe
from console.workflow.graph import layers as step_layers

if TYPE_CHECKING:
    from console.workflow.spec import Step

Flow = Literal["lr", "tb"]

NODE_W = 26  # a boxed card's width, at least
NODE_W_MAX = 40
NODE_H = 3
GAP_X = 6
PORT = 1  # the row inside a boxed card where edges leave and arrive
LANE_BUDGET = 5000
LANE_W = 3  # top to bottom, a lane is a line, not a card
# The narrowest cards a top-to-bottom layout may use before it is said not to fit.
MIN_TB_W = {2: 16, 1: 14}

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
class Geometry:
    flow: Flow
    node_w: int
    node_h: int  # 3: a boxed card (left to right only); 2 or 1: an open card
    gap_x: int
    gap_y: int
    room: int = 0  # top to bottom: the columns a layer may fill (0: no limit)


LR_BOXED = Geometry("lr", NODE_W, NODE_H, GAP_X, 1)
PITCH_X = LR_BOXED.node_w + LR_BOXED.gap_x


@dataclass(frozen=True)
class Slot:
    layer: int
    index: int
    step_id: str | None  # None: a lane carrying a long edge through this layer
    x: int = 0
    y: int = 0


@dataclass
class Ordering:
    """The layers, each in the order that crosses the fewest edges; lanes included."""

    members: list[list[str]] = field(default_factory=list)  # step ids and lane keys
    preds: dict[str, list[str]] = field(default_factory=dict)
    steps: frozenset[str] = frozenset()
    needs: dict[str, list[str]] = field(default_factory=dict)
    dependents: dict[str, list[str]] = field(default_factory=dict)
    undrawn_edges: int = 0
    name_w: dict[str, int] = field(default_factory=dict)  # each step's name, as drawn

    @property
    def widest(self) -> int:
        return max((len(layer) for layer in self.members), default=0)

    def layer_width(self, layer: list[str], g: Geometry) -> int:
        """Top to bottom: the cells a layer takes (a lane takes LANE_W, not a card's)."""
        cards = card_widths(self, layer, g)
        lanes = len(layer) - len(cards)
        return sum(cards.values()) + lanes * LANE_W + (len(layer) - 1) * g.gap_x

    def name_need(self, sid: str, g: Geometry) -> int:
        """Top to bottom: the narrowest card that still shows `sid`'s icon and whole name
        (and of two rows, most of its status; a name past NODE_W_MAX is cut all the same)."""
        least = MIN_TB_W[2] if g.node_h == 2 else 0
        return min(NODE_W_MAX, max(least, self.name_w.get(sid, 0) + 3))

    def card_want(self, sid: str, g: Geometry) -> int:
        """The width at which `sid`'s card says all it has to say."""
        return want_for(self.name_w.get(sid, 0), g.node_h)

    def names_fit(self, layer: list[str], g: Geometry) -> bool:
        """Top to bottom, within `g.room`: every name of the layer shows whole."""
        steps = [node for node in layer if node in self.steps]
        lanes = len(layer) - len(steps)
        room = g.room - lanes * LANE_W - (len(layer) - 1) * g.gap_x
        return sum(self.name_need(sid, g) for sid in steps) <= room


def card_widths(order: Ordering, layer: list[str], g: Geometry) -> dict[str, int]:
    """The width of each card of a layer: `g.node_w`, unless top to bottom the layer is
    short of room for its names; then each card gets what its name needs first and the
    rest of the room is shared out, up to `g.node_w` each."""
    steps = [node for node in layer if node in order.steps]
    widths = {sid: g.node_w for sid in steps}
    if g.flow == "lr" or not g.room or not steps:
        return widths
    lanes = len(layer) - len(steps)
    room = g.room - lanes * LANE_W - (len(layer) - 1) * g.gap_x
    needs = {sid: order.name_need(sid, g) for sid in steps}
    if sum(widths.values()) <= room and all(needs[sid] <= g.node_w for sid in steps):
        return widths
    spare = room - sum(needs.values())
    if spare < 0:  # not even the names fit: equal shares (and the view scrolls or cuts)
        return {sid: max(1, room // len(steps)) for sid in steps}
    # The cards wanting least get their fill first; what they leave goes to the others.
    wants = {sid: max(needs[sid], order.card_want(sid, g)) for sid in steps}
    wanting = sorted(steps, key=lambda sid: wants[sid] - needs[sid])
    for i, sid in enumerate(wanting):
        give = min(wants[sid] - needs[sid], spare // (len(wanting) - i))
        needs[sid] += give
        spare -= give
    return needs


@dataclass
class DagLayout:
    geometry: Geometry = LR_BOXED
    slots: dict[str, Slot] = field(default_factory=dict)
    columns: list[list[str]] = field(default_factory=list)  # real step ids per layer, in order
    lanes: list[Slot] = field(default_factory=list)
    edges: dict[int, dict[int, int]] = field(default_factory=dict)  # row -> col -> mask
    rows: dict[int, list[str]] = field(default_factory=dict)  # row -> steps drawn on it
    widths: dict[str, int] = field(default_factory=dict)  # a card's width, if not node_w
    needs: dict[str, list[str]] = field(default_factory=dict)
    dependents: dict[str, list[str]] = field(default_factory=dict)
    width: int = 0
    height: int = 0
    undrawn_edges: int = 0

    @property
    def node_w(self) -> int:
        return self.geometry.node_w

    @property
    def node_h(self) -> int:
        return self.geometry.node_h

    def width_of(self, step_id: str) -> int:
        """The width of `step_id`'s card."""
        return self.widths.get(step_id, self.geometry.node_w)

    @property
    def flow(self) -> Flow:
        return self.geometry.flow

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


def order_steps(steps: Mapping[str, Step]) -> Ordering:
    order = Ordering(steps=frozenset(steps),
                     name_w={sid: len(terminal_safe(sid)) for sid in steps})
    order.needs = {sid: [n for n in step.needs if n in steps] for sid, step in steps.items()}
    order.dependents = {sid: [] for sid in steps}
    for sid, needs in order.needs.items():
        for need in needs:
            order.dependents[need].append(sid)
    if not steps:
        return order
    by_layer = step_layers(steps)
    layer_of = {sid: i for i, layer in enumerate(by_layer) for sid in layer}

    # Lanes: an edge u -> v spanning several layers gets one node per crossed layer.
    # A node in the ordering is a step id or a lane key "u>v#k". Past LANE_BUDGET lanes
    # (huge, dense graphs) long edges are left undrawn; the node's port and the step
    # detail's `needs` still show them.
    members: list[list[str]] = [list(layer) for layer in by_layer]
    preds: dict[str, list[str]] = {sid: [] for sid in steps}
    spans = sum(max(0, layer_of[v] - layer_of[u] - 1)
                for v, needs in order.needs.items() for u in needs)
    draw_long = spans <= LANE_BUDGET
    for v, needs in order.needs.items():
        for u in needs:
            if not draw_long and layer_of[v] - layer_of[u] > 1:
                order.undrawn_edges += 1
                continue
            prev = u
            for k in range(layer_of[u] + 1, layer_of[v]):
                lane = f"{u}>{v}#{k}"
                members[k].append(lane)
                preds[lane] = [prev]
                prev = lane
            preds[v].append(prev)

    position: dict[str, float] = {sid: i for i, sid in enumerate(members[0])}
    for k in range(1, len(members)):
        def barycenter(node: str, index: int) -> tuple[float, int]:
            ps = [position[p] for p in preds.get(node, []) if p in position]
            return (sum(ps) / len(ps) if ps else float(index), index)

        ranked = sorted(enumerate(members[k]), key=lambda item: barycenter(item[1], item[0]))
        members[k] = [node for _, node in ranked]
        for i, node in enumerate(members[k]):
            position[node] = i
    order.members = members
    order.preds = preds
    return order


def build_layout(steps: Mapping[str, Step], geometry: Geometry = LR_BOXED) -> DagLayout:
    return place(order_steps(steps), geometry)


# What a card wants besides the name: a boxed one its border and icon; an open one of two
# rows "   awaiting 1/2, denied in 29m"; of one row its icon and a short status.
_WANT = {3: 6, 2: 4, 1: 20}
_WANT_AT_LEAST = {3: NODE_W, 2: 30, 1: 0}


def want_for(name_w: int, rows: int) -> int:
    """How wide a card of `rows` rows wants to be for a name of `name_w` cells."""
    return min(NODE_W_MAX, max(_WANT_AT_LEAST[rows], name_w + _WANT[rows]))


def choose_geometry(order: Ordering, width: int, height: int, name_w: int) -> Geometry:
    """The richest geometry whose canvas fits `width` x `height` cells; when none does, the
    one that scrolls least (one direction only, if it can). `name_w`: the longest name."""
    candidates = _candidates(order, width, name_w)
    for geometry in candidates:
        w, h = canvas_size(order, geometry)
        if w <= width and h <= height:
            return geometry
    return candidates[-1]


def fits_across(order: Ordering, width: int) -> bool:
    """Whether some layout shows every card, names whole, within `width` columns (it may
    still scroll down)."""
    name_w = max(order.name_w.values(), default=0)
    return any(canvas_size(order, g)[0] <= width for g in _candidates(order, width, name_w))


def _candidates(order: Ordering, width: int, name_w: int) -> list[Geometry]:
    """The geometries to try, richest first: boxed cards left to right; top to bottom, two
    rows and one, each only where every name shows whole."""
    candidates = [Geometry("lr", want_for(name_w, 3), NODE_H, GAP_X, 1)]
    gap = 2
    rooms = []
    for layer in order.members:
        steps = sum(1 for node in layer if node in order.steps) or 1
        lanes = len(layer) - steps
        rooms.append((width - lanes * LANE_W - (len(layer) - 1) * gap) // steps)
    room = min(rooms, default=width)
    for rows in (2, 1):
        # Cards as wide as each other, as far as the most crowded layer allows; a layer
        # whose names would not show whole at that width shares its room by name.
        geometry = Geometry("tb", max(1, min(want_for(name_w, rows), room)), rows, gap, 1,
                            width)
        if all(order.names_fit(layer, geometry) for layer in order.members):
            candidates.append(geometry)
    return candidates


def canvas_size(order: Ordering, g: Geometry) -> tuple[int, int]:
    layers = len(order.members)
    if not layers:
        return 0, 0
    if g.flow == "lr":
        return layers * (g.node_w + g.gap_x) - g.gap_x + 1, order.widest * (g.node_h + g.gap_y)
    width = max(order.layer_width(layer, g) for layer in order.members)
    return width, layers * (g.node_h + g.gap_y) - g.gap_y


def place(order: Ordering, g: Geometry) -> DagLayout:
    layout = DagLayout(geometry=g, needs=order.needs, dependents=order.dependents,
                       undrawn_edges=order.undrawn_edges)
    if not order.members:
        return layout
    pitch_x, pitch_y = g.node_w + g.gap_x, g.node_h + g.gap_y
    canvas_w = canvas_size(order, g)[0]
    place_of: dict[str, Slot] = {}
    for k, layer in enumerate(order.members):
        column: list[str] = []
        # Top to bottom, a layer narrower than the widest sits in the middle.
        x = (canvas_w - order.layer_width(layer, g)) // 2
        widths = card_widths(order, layer, g)
        for i, node in enumerate(layer):
            step_id = node if node in order.steps else None
            if g.flow == "lr":
                slot = Slot(k, i, step_id, k * pitch_x, i * pitch_y)
            else:
                slot = Slot(k, i, step_id, x, k * pitch_y)
                x += (widths[node] if step_id is not None else LANE_W) + g.gap_x
            place_of[node] = slot
            if step_id is not None:
                if g.flow == "tb" and g.room and len(layer) == 1:
                    # A card alone on its layer may say more (a gate's deadline), to the
                    # right: its left edge, where the edges meet it, stays in line.
                    widths[node] = max(widths[node],
                                       min(order.card_want(node, g), g.room - slot.x))
                if widths[node] != g.node_w:
                    layout.widths[node] = widths[node]
                layout.slots[node] = slot
                column.append(node)
                for row in range(slot.y, slot.y + g.node_h):
                    layout.rows.setdefault(row, []).append(node)
            else:
                layout.lanes.append(slot)
                _draw_lane(layout, slot)
        layout.columns.append(column)

    for node, sources in order.preds.items():
        target = place_of[node]
        for source in sources:
            if g.flow == "lr":
                _route_lr(layout, place_of[source], target)
            else:
                _route_tb(layout, place_of[source], target)
    layout.width, layout.height = canvas_size(order, g)
    layout.width = max([layout.width] + [slot.x + layout.width_of(sid)
                                         for sid, slot in layout.slots.items()])
    return layout


def port_x(slot: Slot) -> int:
    """Top to bottom: the column where edges meet an open card (under its status icon)."""
    return slot.x + 1


def _draw_lane(layout: DagLayout, lane: Slot) -> None:
    g = layout.geometry
    if g.flow == "lr":
        layout._line((lane.x, lane.y + PORT), (lane.x + g.node_w - 1, lane.y + PORT))
        return
    for row in range(lane.y, lane.y + g.node_h):
        layout._mark(port_x(lane), row, UP | DOWN)


def _route_lr(layout: DagLayout, source: Slot, target: Slot) -> None:
    """Right from the source, down or up in the source's own bus column, right into the target."""
    g = layout.geometry
    start = source.x + g.node_w
    end = target.x - 1
    bus = start + 1 + source.index % (g.gap_x - 2)
    y1, y2 = source.y + PORT, target.y + PORT
    layout._line((start, y1), (bus, y1))
    layout._line((bus, y1), (bus, y2))
    layout._line((bus, y2), (end, y2))
    layout._mark(start, y1, LEFT)
    layout._mark(end, y2, RIGHT)


def _route_tb(layout: DagLayout, source: Slot, target: Slot) -> None:
    """Down from the source into the row between the layers, along it, down into the target."""
    row = source.y + layout.geometry.node_h
    x1, x2 = port_x(source), port_x(target)
    layout._line((x1, row), (x2, row))
    layout._mark(x1, row, UP)
    layout._mark(x2, row, DOWN)
