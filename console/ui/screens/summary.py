"""After a run: its outcome, the counts, the audit head to keep, and a timeline of the steps.

The workflow's name and step ids are drawn through `terminal_safe`, as rich Text.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Size
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from console.present import cells, duration, fit
from console.run.state import RunState, StepState
from console.textsafe import terminal_safe
from console.timestamps import parse_ts
from console.ui.widgets.node_status import describe
from console.ui.widgets.notices import Notices

# Eighths of a cell, for the fractional end of a bar.
_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"
_OUTCOME_TONES = {
    "succeeded": "ok",
    "failed": "bad",
    "denied": "bad",
    "cancelled": "muted",
    "interrupted": "bad",
    "running": "running",
    "pending": "pending",
}
_TONES = ("ok", "bad", "gate", "running", "waiting", "pending", "muted")


def run_span(state: RunState) -> tuple[datetime | None, float]:
    """The run's start and its length in seconds (to its end, or to its last step's end)."""
    stamps = [parse_ts(ts) for ts in _all_stamps(state)]
    if not stamps:
        return None, 0.0
    start = parse_ts(state.started_ts) if state.started_ts else min(stamps)
    end = parse_ts(state.finished_ts) if state.finished_ts else max(stamps)
    return start, max(0.0, (end - start).total_seconds())


def _all_stamps(state: RunState) -> list[str]:
    stamps = [ts for ts in (state.started_ts, state.finished_ts) if ts]
    for step in state.steps.values():
        stamps.extend(ts for ts in (step.started_ts, step.finished_ts) if ts)
    return stamps


def bar(offset_s: float, length_s: float, total_s: float, width: int) -> str:
    """A bar from `offset_s` lasting `length_s`, in a track of `width` cells for `total_s`.

    Whole cells are full blocks and the end is drawn to an eighth of a cell; any step that
    ran shows at least a sliver.
    """
    if width <= 0:
        return ""
    if total_s <= 0:
        return _FULL
    scale = width / total_s
    start_cell = min(width - 1, round(offset_s * scale))
    end_eighths = round((offset_s + length_s) * scale * 8)
    eighths = min(max(1, end_eighths - start_cell * 8), (width - start_cell) * 8)
    whole, part = divmod(eighths, 8)
    return " " * start_cell + _FULL * whole + (_EIGHTHS[part] if part else "")


class Timeline(Widget):
    """One row per step: its name, a bar over the run's duration, its status word."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"timeline--{tone}" for tone in _TONES} | {
        "timeline--axis",
        "timeline--name",
    }

    DEFAULT_CSS = """
    Timeline { height: auto; }
    Timeline > .timeline--ok { color: $success; }
    Timeline > .timeline--bad { color: $error; text-style: bold; }
    Timeline > .timeline--gate { color: $warning; }
    Timeline > .timeline--running { color: $primary; }
    Timeline > .timeline--waiting { color: $secondary; }
    Timeline > .timeline--pending { color: $text-muted; }
    Timeline > .timeline--muted { color: $text-muted; }
    Timeline > .timeline--axis { color: $text-muted; }
    Timeline > .timeline--name { color: $foreground; }
    """

    def __init__(self, state: RunState, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.state.steps) + 1

    def render(self) -> Text:
        steps = list(self.state.steps.values())
        start, total = run_span(self.state)
        width = self.content_size.width
        names = {s.id: terminal_safe(s.id) for s in steps}
        name_w = min(max((cells(name) for name in names.values()), default=4), 18)
        end = _finished_at(self.state)
        words = {s.id: f"{describe(s, end).icon} {describe(s, end).word}" for s in steps}
        word_w = min(max((cells(w) for w in words.values()), default=6), 26)
        track_w = max(4, width - name_w - word_w - 4)
        out = Text(no_wrap=True, overflow="ellipsis")
        axis = self.get_component_rich_style("timeline--axis")
        out.append(" " * (name_w + 1) + "│", axis)
        out.append(_axis_label(total, track_w), axis)
        out.append("│\n", axis)
        for step in steps:
            tone = describe(step, end).tone
            style = self.get_component_rich_style(f"timeline--{tone}")
            out.append(fit(names[step.id], name_w, pad=True) + " ", self._name_style())
            out.append("│", axis)
            drawn = self._step_bar(step, start, total, track_w)
            out.append(drawn.ljust(track_w), style)
            out.append("│ ", axis)
            out.append(fit(words[step.id], word_w), style)
            out.append("\n")
        out.rstrip()
        return out

    def _name_style(self) -> Style:
        return self.get_component_rich_style("timeline--name")

    @staticmethod
    def _step_bar(step: StepState, start: datetime | None, total: float, width: int) -> str:
        if start is None or step.started_ts is None:
            return ""
        offset = (parse_ts(step.started_ts) - start).total_seconds()
        if step.duration_s is not None:
            length = step.duration_s
        elif step.finished_ts is not None:
            length = (parse_ts(step.finished_ts) - parse_ts(step.started_ts)).total_seconds()
        else:
            length = max(0.0, total - offset)
        return bar(max(0.0, offset), max(0.0, length), total, width)


def _axis_label(total: float, width: int) -> str:
    right = duration(total)
    left = "0s"
    if width < len(left) + len(right) + 2:
        return "─" * width
    return left + "─" * (width - len(left) - len(right)) + right


def _finished_at(state: RunState) -> datetime:
    stamps = _all_stamps(state)
    if state.finished_ts:
        return parse_ts(state.finished_ts)
    return max(parse_ts(ts) for ts in stamps) if stamps else datetime.fromtimestamp(0)


def outcome_line(state: RunState) -> str:
    _, total = run_span(state)
    name = state.workflow or "workflow"
    run = state.run_id or "?"
    return terminal_safe(f"{name} · run {run} · {state.status} in {duration(total)}")


def counts_line(state: RunState) -> str:
    counts = state.counts()
    order = ("succeeded", "reused", "failed", "error", "denied", "skipped", "cancelled")
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    parts += [terminal_safe(f"{n} {s}") for s, n in sorted(counts.items()) if s not in order]
    done, total = state.progress
    return f"{done}/{total} steps finished: " + (", ".join(parts) if parts else "none")


class SummaryScreen(Screen[None]):
    """The run's summary. `escape` closes it (dismisses with None); `q` quits the app."""

    DEFAULT_CSS = """
    SummaryScreen {
        background: $background;
    }
    SummaryScreen > #summary-top {
        height: auto;
        padding: 0 1;
    }
    SummaryScreen > VerticalScroll {
        padding: 0 1;
    }
    SummaryScreen #summary-outcome {
        text-style: bold;
        margin-top: 1;
    }
    SummaryScreen #summary-outcome.-ok { color: $success; }
    SummaryScreen #summary-outcome.-bad { color: $error; }
    SummaryScreen #summary-outcome.-muted { color: $text-muted; }
    SummaryScreen #summary-counts { color: $foreground; margin-bottom: 1; }
    SummaryScreen #summary-head-label { color: $text-muted; }
    SummaryScreen #summary-head { color: $accent; text-style: bold; margin-bottom: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, state: RunState, audit_head: str) -> None:
        super().__init__()
        self.state = state
        self.audit_head = audit_head

    def compose(self) -> ComposeResult:
        tone = _OUTCOME_TONES.get(self.state.status, "muted")
        # The head above the timeline, outside its scroll: however many steps the run had,
        # the head stays in view, whole (wrapped on a narrow screen).
        with Vertical(id="summary-top"):
            yield Static(Text(outcome_line(self.state)), id="summary-outcome",
                         classes=f"-{tone}")
            yield Static(Text(counts_line(self.state)), id="summary-counts")
            yield Static("audit head (keep it to prove the trail later):", id="summary-head-label")
            yield Static(Text(terminal_safe(self.audit_head)), id="summary-head")
        with VerticalScroll():
            yield Timeline(self.state, id="summary-timeline")
        yield Notices(id="notices")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
