"""Headless output: one plain line per event, or a live rich table on a terminal."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import IO, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from console.run.events import (
    ApprovalGiven,
    ApprovalRefused,
    Event,
    GateClosed,
    GateOpened,
    OverrideGiven,
    RunFinished,
    RunInterrupted,
    RunStarted,
    StepDenied,
    StepFinished,
    StepReused,
    StepSkipped,
    StepStarted,
    parse_ts,
)
from console.run.state import RunState, StepState

STATUS_WORDS = {
    "pending": "pending",
    "ready": "ready",
    "awaiting_approval": "awaiting approval",
    "running": "running",
    "retrying": "retrying",
    "succeeded": "succeeded",
    "failed": "failed",
    "error": "error",
    "denied": "denied",
    "skipped": "skipped",
    "cancelled": "cancelled",
    "reused": "reused",
}
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


def describe(event: Event) -> str | None:
    """The one-line, human form of an event; None for events not worth a line."""
    step = f"{event.step}: " if event.step else ""
    match event:
        case RunStarted():
            return (
                f"run {event.run} started: {event.workflow} ({len(event.steps)} steps) "
                f"by {event.user}"
                + (f", resuming {event.resumed_from}" if event.resumed_from else "")
            )
        case StepReused():
            return f"{step}reused (succeeded in run {event.from_run})"
        case StepStarted():
            return f"{step}started, attempt {event.attempt}/{event.max_attempts}, pid {event.pid}"
        case StepFinished():
            what = (
                event.outcome
                if event.exit_code in (None, 0) or event.outcome != "failed"
                else f"failed (exit {event.exit_code})"
            )
            if event.error:
                what = f"{event.outcome}: {event.error}"
            line = f"{step}{what} after {event.duration_s:.1f}s, log {event.log_path}"
            if event.retry_in_s is not None:
                line += f" — retrying in {event.retry_in_s:g}s"
            return line
        case StepSkipped():
            return f"{step}skipped: {event.reason}"
        case StepDenied():
            return f"{step}denied: {event.reason}"
        case GateOpened():
            need = f"needs {event.approvals_required} approval(s)" + (
                f" from {', '.join(event.approvers)}" if event.approvers else ""
            )
            if "override" in event.approve_command:
                need = "denied by a soft policy; an override is possible"
            deadline = f", deadline {event.deadline}" if event.deadline else ""
            return (
                f"{step}awaiting approval: {need}{deadline}\n"
                f"    to approve, run: {event.approve_command}"
            )
        case ApprovalGiven():
            who = event.actor.user if event.actor else "?"
            return f"{step}approved by {who} ({event.approvals}/{event.approvals_required})"
        case ApprovalRefused():
            who = event.actor.user if event.actor else "?"
            return f"{step}{event.action} by {who} refused: {event.why}"
        case OverrideGiven():
            who = event.actor.user if event.actor else "?"
            return f"{step}overridden by {who}: {event.reason}"
        case GateClosed():
            return f"{step}gate {event.outcome.replace('_', ' ')}"
        case RunInterrupted():
            return f"run interrupted by {event.signal}; stopping the steps"
        case RunFinished():
            counts = ", ".join(
                f"{n} {STATUS_WORDS.get(k, k)}" for k, n in sorted(event.counts.items())
            )
            return f"run {event.run} {event.outcome} in {event.duration_s:.1f}s ({counts})"
    return None


class PlainPrinter:
    """One line per event, for logs and pipes."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout

    def publish(self, event: Event) -> None:
        line = describe(event)
        if line is None:
            return
        stamp = parse_ts(event.ts).astimezone().strftime("%H:%M:%S")
        self.out.write(f"{stamp} {line}\n")
        self.out.flush()


_NOTABLE = (
    GateOpened,
    StepDenied,
    ApprovalGiven,
    ApprovalRefused,
    OverrideGiven,
    RunInterrupted,
    RunStarted,
    StepFinished,
)


class LivePrinter:
    """On a terminal: notable events scroll above a live table of the steps."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.state = RunState()
        self.live = Live(self._table(), console=console, refresh_per_second=8, transient=True)

    def __enter__(self) -> LivePrinter:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def publish(self, event: Event) -> None:
        self.state.apply(event)
        if isinstance(event, _NOTABLE) and not (
            isinstance(event, StepFinished) and event.outcome == "succeeded"
        ):
            line = describe(event)
            if line:
                self.console.print(line, markup=False, highlight=False)
        self.live.update(self._table())

    def _table(self) -> Table:
        return steps_table(self.state, title=None)


def steps_table(state: RunState, title: str | None) -> Table:
    table = Table(title=title, expand=False, show_edge=False, pad_edge=False)
    table.add_column("step")
    table.add_column("status")
    table.add_column("attempt", justify="right")
    table.add_column("time", justify="right")
    table.add_column("note", overflow="fold", max_width=50)
    for step in state.steps.values():
        table.add_row(step.id, _status_text(step), _attempt(step), _duration(step), _note(step))
    return table


def _status_text(step: StepState) -> Text:
    word = STATUS_WORDS.get(step.status, step.status)
    if step.status == "awaiting_approval":
        word += f" {len(step.approvals)}/{step.approvals_required}"
    return Text(word, style=STATUS_STYLES.get(step.status, ""))


def _attempt(step: StepState) -> str:
    return f"{step.attempt}/{step.max_attempts}" if step.attempt else ""


def _duration(step: StepState) -> str:
    if step.duration_s is not None:
        return f"{step.duration_s:.1f}s"
    if step.started_ts and step.status == "running":
        elapsed = datetime.now(parse_ts(step.started_ts).tzinfo) - parse_ts(step.started_ts)
        return f"{elapsed.total_seconds():.0f}s"
    return ""


def _note(step: StepState) -> str:
    if step.status in ("failed", "error") and step.error:
        return step.error
    if step.status == "failed" and step.exit_code is not None:
        return f"exit {step.exit_code}"
    return step.reason or ""
