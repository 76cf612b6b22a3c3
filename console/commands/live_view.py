"""Headless output on a terminal: notable events scroll above a live rich table of steps.

Step ids, reasons and errors are someone else's text: they reach the table as `Text` made
`terminal_safe` (a plain str cell would be read as rich markup), the event lines likewise.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from console.events import (
    ApprovalGiven,
    ApprovalRefused,
    AuditFailed,
    CancelRequested,
    CleanupsSkipped,
    Event,
    GateClosed,
    GateOpened,
    OverrideGiven,
    RunInterrupted,
    RunStarted,
    StepCancelled,
    StepDenied,
    StepFinished,
)
from console.present import STATUS_WORDS, printed_line, step_time
from console.run.state import RunState, StepState
from console.textsafe import terminal_safe
from console.timestamps import parse_ts

STATUS_STYLES = {
    "succeeded": "green",
    "reused": "green",
    "failed": "red",
    "error": "red",
    "denied": "red",
    "awaiting_approval": "yellow",
    "running": "cyan",
    "retrying": "yellow",
    "skipped": "dim",
    "cancelled": "dim",
}


_NOTABLE = (
    GateOpened,
    StepDenied,
    StepCancelled,
    CancelRequested,
    CleanupsSkipped,
    AuditFailed,
    ApprovalGiven,
    ApprovalRefused,
    OverrideGiven,
    RunInterrupted,
    RunStarted,
    StepFinished,
)


class LivePrinter:
    """On a terminal: notable events scroll above a live table of the steps.

    A gate whoever started the run cannot pass themselves says so twice: the scrolled
    line names who may approve and how, and the step's note says whom it waits for.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.state = RunState()
        self.waiting: dict[str, str] = {}  # step -> "waiting for @sre (not you)"
        self.live = Live(self._table(), console=console, refresh_per_second=8, transient=True)

    def __enter__(self) -> LivePrinter:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def publish(self, event: Event) -> None:
        self.state.apply(event)
        if isinstance(event, GateOpened) and event.step and not event.initiator_may_approve:
            who = ", ".join(event.approvers) or "someone else"
            if event.approve_command.startswith("console override"):
                who = "an override"
            self.waiting[event.step] = f"waiting for {who} (not you)"
        elif isinstance(event, GateClosed) and event.step:
            self.waiting.pop(event.step, None)
        if isinstance(event, _NOTABLE) and not (
            isinstance(event, StepFinished) and event.outcome == "succeeded"
        ):
            line = printed_line(event)
            if line:
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self.live.update(self._table())

    def _table(self) -> Table:
        return steps_table(self.state, title=None, waiting=self.waiting)


def steps_table(
    state: RunState, title: str | None, waiting: Mapping[str, str] | None = None
) -> Table:
    """The steps, one row each; `waiting` holds the note of a step whose gate waits for
    someone other than whoever started the run."""
    table = Table(title=title, expand=False, show_edge=False, pad_edge=False)
    table.add_column("step")
    table.add_column("status")
    table.add_column("attempt", justify="right")
    table.add_column("time", justify="right")
    table.add_column("note", overflow="fold", max_width=50)
    for step in state.steps.values():
        table.add_row(Text(terminal_safe(step.id)), _status_text(step), _attempt(step),
                      _duration(step), Text(terminal_safe(_note(step, waiting or {}))))
    return table


def _status_text(step: StepState) -> Text:
    word = STATUS_WORDS.get(step.status, step.status)
    if step.status == "awaiting_approval":
        word += f" {len(step.approvals)}/{step.approvals_required}"
    return Text(word, style=STATUS_STYLES.get(step.status, ""))


def _attempt(step: StepState) -> str:
    return f"{step.attempt}/{step.max_attempts}" if step.attempt else ""


def _duration(step: StepState) -> str:
    now = datetime.now(parse_ts(step.started_ts).tzinfo) if step.started_ts else datetime.now()
    return step_time(step.duration_s, step.started_ts, step.status == "running", now)


def _note(step: StepState, waiting: Mapping[str, str]) -> str:
    if step.status == "awaiting_approval" and step.id in waiting:
        return waiting[step.id]
    if step.status in ("failed", "error") and step.error:
        return step.error
    if step.status == "failed" and step.exit_code is not None:
        return f"exit {step.exit_code}"
    return step.reason or ""
