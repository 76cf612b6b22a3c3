"""The DAG view: nodes left to right with box-drawing edges, or a compact list.

A Line API widget: `render_line` draws only the rows and columns on screen, so a workflow
with a thousand steps costs what fits in the terminal. The screen hands down the workflow,
the run state, the clock and the filter; the view posts the selection up. Step ids and
what a status quotes are drawn through `terminal_safe`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, Literal

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.present import fit
from console.run.state import RunState, StepState
from console.textsafe import terminal_safe
from console.ui.widgets.dag_layout import (
    LINE_CHARS,
    PORT,
    DagLayout,
    Geometry,
    Ordering,
    choose_geometry,
    fits_across,
    order_steps,
    place,
)
from console.ui.widgets.node_status import StatusLook, describe, gate_text, matches_filter

if TYPE_CHECKING:
    from console.workflow.spec import Step

ViewMode = Literal["graph", "list"]
AUTO_LIST_ABOVE = 300  # steps: past this the compact list opens first (`g` switches back)
_TONES = ("pending", "waiting", "running", "ok", "bad", "gate", "muted")


class DagView(ScrollView, can_focus=True):
    """Steps as a layered graph (or a list), navigable by arrows and hjkl."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move('up')", "Up", show=False),
        Binding("down,j", "move('down')", "Down", show=False),
        Binding("left,h", "move('left')", "Back a layer", show=False),
        Binding("right,l", "move('right')", "Forward a layer", show=False),
        Binding("home", "edge('first')", "First step", show=False),
        Binding("end", "edge('last')", "Last step", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("enter", "open", "Details", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "dag--edge",
        "dag--name",
        "dag--selected",
        "dag--dim",
        *(f"dag--{tone}" for tone in _TONES),
    }

    DEFAULT_CSS = """
    DagView { background: $surface; }
    DagView > .dag--edge { color: $text-muted; }
    DagView > .dag--name { color: $text; text-style: bold; }
    DagView > .dag--selected { text-style: reverse bold; }
    DagView > .dag--dim { color: $text-disabled; }
    DagView > .dag--pending { color: $text-muted; }
    DagView > .dag--waiting { color: $text; }
    DagView > .dag--running { color: $text-primary; text-style: bold; }
    DagView > .dag--ok { color: $text-success; }
    DagView > .dag--bad { color: $text-error; text-style: bold; }
    DagView > .dag--gate { color: $text-warning; text-style: bold; }
    DagView > .dag--muted { color: $text-muted; text-style: italic; }
    """

    @dataclass
    class StepSelected(Message):
        """The selection moved (by keys, mouse, or the screen)."""

        step_id: str
        by_person: bool

    @dataclass
    class StepOpened(Message):
        """`enter` on a step: show its detail."""

        step_id: str

    mode: reactive[ViewMode] = reactive[ViewMode]("graph")
    selected: reactive[str | None] = reactive[str | None](None)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.steps: Mapping[str, Step] = {}
        self.state = RunState()
        self.now = datetime.now(UTC)
        self.filter_text = ""
        self.layout_data = DagLayout()
        self._ordering = Ordering()
        self._order: list[str] = []  # layer by layer, top down: the list view's rows
        self._longest_id = 10  # the list view's name column
        self._visible: list[str] = []
        self._base_style: Style | None = None

    # --- attributes down -----------------------------------------------------------------

    def set_workflow(self, steps: Mapping[str, Step]) -> None:
        self.steps = steps
        self._ordering = order_steps(steps)
        self._order = [sid for layer in self._ordering.members for sid in layer if sid in steps]
        self._longest_id = max((len(terminal_safe(sid)) for sid in self._order), default=10)
        self.layout_data = place(self._ordering, self._geometry())
        if len(steps) > AUTO_LIST_ABOVE:
            self.mode = "list"
        self._refilter()
        if self.selected not in self.steps:
            self.set_selected(self._order[0] if self._order else None, by_person=False)
        self._resize_canvas()
        self.refresh()

    def _geometry(self) -> Geometry:
        """The richest layout that fits the view (dag_layout.choose_geometry)."""
        width, height = self.size
        if width <= 0 or height <= 0:
            width, height = self.app.size.width, max(1, self.app.size.height - 2)
        return choose_geometry(self._ordering, width, height, self._longest_id)

    def on_resize(self) -> None:
        geometry = self._geometry()
        if geometry != self.layout_data.geometry:
            self.layout_data = place(self._ordering, geometry)
            self._resize_canvas()
            self.scroll_to(0, 0, animate=False, immediate=True)
            self._scroll_to_selected()
            self.refresh()

    def set_state(
        self, state: RunState, now: datetime, changed: Collection[str] | None = None
    ) -> None:
        """The run moved on. `changed`: the only steps whose state changed (None: any may
        have); then only those on screen, and running ones (their clocks), are redrawn."""
        self.state = state
        self.now = now
        if self.filter_text:
            self._refilter()
            self._resize_canvas()
            changed = None
        if changed is None:
            self.refresh()
            return
        for sid, region in self._on_screen():
            if sid in changed or self.step_state(sid).status == "running":
                self.refresh(region)

    def _on_screen(self) -> list[tuple[str, Region]]:
        """The steps in view, each with its area in the widget (what `refresh` takes)."""
        scroll_x, scroll_y = self.scroll_offset
        width, height = self.size
        if self.mode == "list":
            rows = self._visible[scroll_y : scroll_y + height]
            return [(sid, Region(0, y, width, 1)) for y, sid in enumerate(rows)]
        seen: dict[str, Region] = {}
        for row in range(scroll_y, scroll_y + height):
            for sid in self.layout_data.rows.get(row, ()):
                slot = self.layout_data.slots[sid]
                node_w, node_h = self.layout_data.width_of(sid), self.layout_data.node_h
                if sid not in seen and slot.x < scroll_x + width and slot.x + node_w > scroll_x:
                    seen[sid] = Region(slot.x - scroll_x, slot.y - scroll_y, node_w, node_h)
        return list(seen.items())

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._refilter()
        if self.mode == "list" and self._visible and self.selected not in self._visible:
            self.set_selected(self._visible[0], by_person=False)
        self._resize_canvas()
        self.refresh()

    def set_selected(self, step_id: str | None, *, by_person: bool) -> None:
        if step_id is None or step_id == self.selected:
            return
        self.selected = step_id
        self.post_message(self.StepSelected(step_id, by_person))
        self._scroll_to_selected()

    def toggle_mode(self) -> ViewMode:
        self.mode = "list" if self.mode == "graph" else "graph"
        return self.mode

    def fits_across(self, width: int) -> bool:
        """Whether `width` columns show every card with its name whole."""
        return fits_across(self._ordering, width)

    @property
    def order(self) -> list[str]:
        """Every step, layer by layer, in the order drawn."""
        return list(self._order)

    @property
    def shown_steps(self) -> list[str]:
        """Step ids the filter lets through, in display order."""
        return list(self._visible)

    def step_state(self, step_id: str) -> StepState:
        return self.state.steps.get(step_id) or StepState(id=step_id)

    def _refilter(self) -> None:
        self._visible = [
            sid
            for sid in self._order
            if matches_filter(
                self.filter_text, sid, self.steps.get(sid), self.step_state(sid), self.now
            )
        ]

    def watch_mode(self) -> None:
        self._resize_canvas()
        self.scroll_to(0, 0, animate=False)
        self._scroll_to_selected()
        self.refresh()

    def _resize_canvas(self) -> None:
        if self.mode == "list":
            self.virtual_size = Size(self._list_width(), len(self._visible))
        else:
            self.virtual_size = Size(self.layout_data.width, self.layout_data.height)

    def _list_width(self) -> int:
        return self._longest_id + 48

    def _selected_region(self) -> Region | None:
        sid = self.selected
        if sid is None:
            return None
        if self.mode == "list":
            if sid not in self._visible:
                return None
            return Region(0, self._visible.index(sid), 1, 1)
        slot = self.layout_data.slots.get(sid)
        if slot is None:
            return None
        return Region(slot.x, slot.y, self.layout_data.width_of(sid), self.layout_data.node_h)

    def _scroll_to_selected(self) -> None:
        region = self._selected_region()
        if region is not None and self.is_mounted:
            self.scroll_to_region(region, animate=False, immediate=True, force=True)

    # --- navigation ----------------------------------------------------------------------

    def action_move(self, direction: str) -> None:
        target = self._neighbour(direction)
        if target is not None:
            self.set_selected(target, by_person=True)
        self._scroll_to_selected()

    def action_edge(self, which: str) -> None:
        rows = self._visible if self.mode == "list" else self._order
        if rows:
            self.set_selected(rows[0] if which == "first" else rows[-1], by_person=True)

    def action_open(self) -> None:
        if self.selected is not None:
            self.post_message(self.StepOpened(self.selected))

    def _neighbour(self, direction: str) -> str | None:
        sid = self.selected
        if sid is None:
            return self._order[0] if self._order else None
        if self.mode == "list":
            rows = self._visible
            if not rows:
                return None
            if sid not in rows:
                return rows[0]
            i = rows.index(sid) + (-1 if direction in ("up", "left") else 1)
            return rows[i] if 0 <= i < len(rows) else None
        layout = self.layout_data
        if layout.flow == "tb":  # the keys follow the screen: layers are rows there
            direction = {"up": "left", "down": "right", "left": "up", "right": "down"}[direction]
        slot = layout.slots[sid]
        column = layout.columns[slot.layer]
        i = column.index(sid)
        if direction in ("up", "down"):
            j = i + (-1 if direction == "up" else 1)
            return column[j] if 0 <= j < len(column) else None
        step = -1 if direction == "left" else 1
        k = slot.layer + step
        if not 0 <= k < len(layout.columns):
            return None
        linked = layout.needs[sid] if direction == "left" else layout.dependents[sid]
        near = [s for s in linked if layout.slots[s].layer == k] or linked or layout.columns[k]
        def distance(s: str) -> tuple[int, int]:
            there = layout.slots[s]
            across = there.y - slot.y if layout.flow == "lr" else there.x - slot.x
            return (abs(across), there.layer)

        return min(near, key=distance)

    def on_click(self, event: events.Click) -> None:
        x = event.x + int(self.scroll_x)
        y = event.y + int(self.scroll_y)
        if self.mode == "list":
            if 0 <= y < len(self._visible):
                self.set_selected(self._visible[y], by_person=True)
            return
        for sid in self.layout_data.rows.get(y, []):
            slot = self.layout_data.slots[sid]
            if slot.x <= x < slot.x + self.layout_data.width_of(sid):
                self.set_selected(sid, by_person=True)
                if event.chain == 2:
                    self.post_message(self.StepOpened(sid))

    # --- drawing -------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"dag--{name}")

    def notify_style_update(self) -> None:
        self._base_style = None
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        row = scroll_y + y
        # Textual works `rich_style` out afresh on each call; it changes only with styles.
        base = self._base_style
        if base is None:
            base = self._base_style = self.rich_style
        if self.mode == "list":
            return self._list_line(row, scroll_x, width, base)
        chars = [" "] * width
        styles = [base] * width

        def put(col: int, text: str, style: Style) -> None:
            for offset, ch in enumerate(text):
                x = col + offset - scroll_x
                if 0 <= x < width:
                    chars[x] = ch
                    styles[x] = style

        edge = self._style("edge")
        for col, mask in self.layout_data.edges.get(row, {}).items():
            if scroll_x <= col < scroll_x + width:
                put(col, LINE_CHARS[mask], edge)
        for sid in self.layout_data.rows.get(row, []):
            slot = self.layout_data.slots[sid]
            if slot.x >= scroll_x + width or slot.x + self.layout_data.width_of(sid) <= scroll_x:
                continue
            col = slot.x
            for text, style in self._node_row(sid, row - slot.y):
                put(col, text, style)
                col += len(text)
        return Strip(_segments(chars, styles), width)

    def _node_row(self, sid: str, line: int) -> list[tuple[str, Style]]:
        state = self.step_state(sid)
        look = describe(state, self.now)
        tone = self._style(look.tone)
        border = tone
        name_style = gate_style = self._style("name")
        if sid in self._visible:
            gate_style = self._style("gate")
        else:
            border = tone = name_style = gate_style = self._style("dim")
        if sid == self.selected:
            selected = self._style("selected")
            border, tone = border + selected, tone + selected
            name_style, gate_style = name_style + selected, gate_style + selected
        gate = gate_text(state, self.steps.get(sid), self.now)
        geometry = self.layout_data.geometry
        if geometry.flow == "tb":
            return _open_card(self.layout_data.width_of(sid), geometry.node_h, sid, look, gate,
                              line, (tone, name_style, gate_style))
        inner = geometry.node_w - 2
        if line == 0:
            name = fit(sid, inner - 3)
            fill = "─" * (inner - 2 - len(name))
            return [("╭ ", border), (name, name_style), (" " + fill + "╮", border)]
        if line == PORT:
            left = "┤" if self.layout_data.needs.get(sid) else "│"
            right = "├" if self.layout_data.dependents.get(sid) else "│"
            # A space always stays before the right border: the word never runs into it.
            body = fit(f" {look.icon} {look.word}", inner - 1, pad=True) + " "
            return [(left, border), (body, tone), (right, border)]
        if gate:
            gate = fit(gate, inner - 4)
            fill = "─" * (inner - 3 - len(gate))
            return [("╰─ ", border), (gate, gate_style if sid in self._visible else tone),
                    (" " + fill + "╯", border)]
        return [("╰" + "─" * inner + "╯", border)]

    def _list_line(self, row: int, scroll_x: int, width: int, base: Style) -> Strip:
        if not 0 <= row < len(self._visible):
            return Strip.blank(width, base)
        sid = self._visible[row]
        state = self.step_state(sid)
        look = describe(state, self.now)
        longest = self._longest_id
        layer = self.layout_data.slots[sid].layer + 1 if sid in self.layout_data.slots else 0
        gate = gate_text(state, self.steps.get(sid), self.now)
        name = terminal_safe(sid).ljust(longest)
        text = f" {look.icon} {name}  L{layer:<3} {fit(look.word, 28, pad=True)} {gate}"
        style = self._style(look.tone)
        if sid == self.selected:
            style += self._style("selected")
        text = text[scroll_x : scroll_x + width].ljust(width)
        return Strip([Segment(text, style)], width)


def _segments(chars: list[str], styles: list[Style]) -> list[Segment]:
    out: list[Segment] = []
    start = 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or styles[i] is not styles[start]:
            out.append(Segment("".join(chars[start:i]), styles[start]))
            start = i
    return out


def _open_card(width: int, rows: int, sid: str, look: StatusLook, gate: str, line: int,
               styles: tuple[Style, Style, Style]) -> list[tuple[str, Style]]:
    """A card without a box, for layers that flow top to bottom: two rows (the name; the
    status and the gate) or, when space is short, one (name and a short status)."""
    tone, name_style, gate_style = styles
    if rows == 1:
        # The name first; then the status as long as it fits; a gate's deadline before
        # its count.
        name = fit(sid, width - 3)
        room = width - 3 - len(name)
        options = ([f" {look.short} {look.left}", f" {look.left} left"] if look.left else [])
        options += [f" {look.short}", ""]
        # Short of room the name stays whole: the icon and colour still say the status.
        rest = next((o for o in options if o and len(o) <= room), "")
        return [(f" {look.icon} ", tone), (name, name_style),
                (rest.ljust(width - 3 - len(name)), tone)]
    if line == 0:
        return [(f" {look.icon} ", tone), (fit(sid, width - 3, pad=True), name_style)]
    if look.left is not None or look.wave:  # a waiting gate: how long, and for what
        count, left, wave = look.given, look.left, look.wave
        options = [f"   {look.word}, denied in {left}" if left else f"   {look.word}"]
        if wave:
            options += [f"   wave {wave}, awaiting {count}" + (f", {left} left" if left else "")]
        if left:
            options += [f"   awaiting approval {count}, denied in {left}",
                        f"   awaiting {count}, denied in {left}",
                        f"  awaiting {count} · {left} left",
                        f"  {count}, denied in {left}",
                        f"  {count} · {left} left",
                        f"  {left} left"]
        else:
            options += [f"   awaiting {count}"]
        said = next((o for o in options if len(o) <= width), options[-1])
        return [(fit(said, width, pad=True), gate_style)]
    word = fit(f"   {look.word}", width)
    if not gate or len(word) + 3 + len(gate) > width:  # the gate whole, or not at all
        return [(fit(word, width, pad=True), tone)]
    return [(word, tone), (fit(f" · {gate}", width - len(word), pad=True), gate_style)]
