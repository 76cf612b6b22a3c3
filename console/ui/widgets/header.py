"""The one-line header: workflow, run id, user@host, elapsed time and progress x/y.

The workflow's name (and a run id read back from a file) are someone else's text: they are
drawn through `terminal_safe`, so a name cannot retitle the window or clear the screen.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from console.textsafe import terminal_safe

# The header paints in the first frame, before the run domain has loaded.
if TYPE_CHECKING:
    from console.run.state import RunState

_RUN_WORDS = {
    "pending": "idle",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "denied": "denied",
    "cancelled": "cancelled",
    "interrupted": "interrupted",
}


class RunHeader(Static):
    DEFAULT_CSS = """
    RunHeader {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, *, user: str, host: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.user = terminal_safe(user)
        self.host = terminal_safe(host)
        self._shown: Text | None = None

    def show_file(self, name: str) -> None:
        """Before the workflow has loaded: its file and who is at the keyboard."""
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(terminal_safe(name), style="bold")
        text.append(f"  {self.user}@{self.host}")
        self._draw(text)

    def show(self, workflow: str, state: RunState, now: datetime, total_steps: int) -> None:
        """Workflow, run state, progress, what waits (a gate's deadline, failures), run id
        and user@host: on a narrow terminal the last ones give way first."""
        from console.present import duration
        from console.timestamps import parse_ts
        from console.ui.widgets.node_status import time_left

        done, total = state.progress
        if state.run_id is None:
            total = total_steps
        elapsed = ""
        if state.started_ts is not None:
            end = parse_ts(state.finished_ts) if state.finished_ts else now
            elapsed = " " + duration(max(0.0, (end - parse_ts(state.started_ts)).total_seconds()))
        # (text, style, rank): rank 0 always shows; higher ranks go first when short of room.
        parts: list[tuple[str, str, int]] = [
            (terminal_safe(workflow), "bold", 0),
            (f"{_RUN_WORDS.get(state.status, state.status)}{elapsed}", "", 0),
            (f"{done}/{total}", "bold", 0),
        ]
        left: str | None = None
        gates = sorted((s.gate_deadline or "~", s.id) for s in state.steps.values()
                       if s.status == "awaiting_approval")
        if gates:
            deadline, sid = gates[0]
            left = time_left(deadline if deadline != "~" else None, now)
            left = f"denied in {left}" if left else None
            more = f" +{len(gates) - 1}" if len(gates) > 1 else ""
            said = f"◆ {terminal_safe(sid)}{more} " + (left or "waits")
            parts.append((said, "bold", 0))
        failed = sum(1 for s in state.steps.values() if s.status in ("failed", "error"))
        if failed:
            parts.append((f"✗ {failed} failed", "bold", 1))
        parts.append((terminal_safe(f"run {state.run_id or '—'}"), "", 2))
        parts.append((f"{self.user}@{self.host}", "", 3))
        room = (self.size.width or self.app.size.width - 2)
        while sum(len(t) + 2 for t, _, _ in parts) - 2 > room and max(r for *_, r in parts):
            worst = max(r for *_, r in parts)
            parts = [part for part in parts if part[2] != worst]
        if sum(len(t) + 2 for t, _, _ in parts) - 2 > room and gates:
            # Still too long: the gate says only its deadline (the DAG selects the step).
            parts = [(f"◆ {left}" if t.startswith("◆") and left else t, st, r)
                     for t, st, r in parts]
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (shown, style, _) in enumerate(parts):
            text.append(("  " if i else "") + shown, style=style)
        self._draw(text)

    def _draw(self, text: Text) -> None:
        # Called on every batch of events: redraw only when the line reads differently,
        # and never re-lay out the screen for it (the header is always one row).
        if text != self._shown:
            self._shown = text
            self.update(text, layout=False)
