"""Headless output without rich: the one-line form of each event, printed one per line.

Events carry what others wrote (the workflow's name, reasons, user names, errors quoting a
command): each line of `describe` goes through `terminal_safe`, so a field cannot retitle
the terminal, clear it, or forge a line of its own.
"""

from __future__ import annotations

import sys
from typing import IO

from console.events import (
    ApprovalGiven,
    ApprovalRefused,
    AuditFailed,
    CancelRequested,
    CleanupsSkipped,
    Event,
    GateClosed,
    GateOpened,
    GroupFinished,
    OverrideGiven,
    RunFinished,
    RunInterrupted,
    RunStarted,
    StepCancelled,
    StepDenied,
    StepFinished,
    StepReused,
    StepSkipped,
    StepStarted,
    WaveStarted,
    parse_ts,
)
from console.textsafe import terminal_safe

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


def describe(event: Event) -> str | None:
    """The one-line, human form of an event (a gate: two lines); None for events not worth
    a line. Safe for a terminal whatever the event holds."""
    found = _describe(event)
    if found is None:
        return None
    lines = (found,) if isinstance(found, str) else found
    # Made safe line by line: a newline inside a field is shown as `\n`, not obeyed.
    return "\n".join(terminal_safe(line) for line in lines)


def _describe(event: Event) -> str | tuple[str, ...] | None:
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
            where = f"{event.host} pid {event.pid}" if event.host else f"pid {event.pid}"
            return f"{step}started, attempt {event.attempt}/{event.max_attempts}, {where}"
        case WaveStarted():
            return f"{step}wave {event.wave}/{event.waves}: {', '.join(event.hosts)}"
        case GroupFinished():
            return f"{step}{event.outcome}: {event.summary}"
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
            if not event.initiator_may_approve:
                return waiting_for_others(event)
            need = f"needs {event.approvals_required} approval(s)" + (
                f" from {', '.join(event.approvers)}" if event.approvers else ""
            )
            if "override" in event.approve_command:
                need = "denied by a soft policy; an override is possible"
            deadline = f", deadline {event.deadline}" if event.deadline else ""
            return (
                f"{step}awaiting approval: {need}{deadline}",
                f"    to approve, run: {event.approve_command}",
            )
        case ApprovalGiven():
            who = event.actor.user if event.actor else "?"
            return f"{step}approved by {who} ({event.approvals}/{event.approvals_required})"
        case ApprovalRefused():
            who = event.actor.user if event.actor else "?"
            times = f" ({event.count} times)" if event.count > 1 else ""
            return f"{step}{event.action} by {who} refused{times}: {event.why}"
        case StepCancelled():
            return f"{step}cancelled: {event.reason}"
        case CancelRequested():
            who = event.actor.user if event.actor else "?"
            if event.target == "run":
                return f"run cancelled by {who}; stopping the steps, then the cleanups run"
            return f"{step}cancel requested by {who}"
        case CleanupsSkipped():
            names = ", ".join(event.steps) or "none left"
            return f"{event.signal} again: cleanups skipped ({names})"
        case AuditFailed():
            return f"audit file failed ({event.error}); stopping the run (fail closed)"
        case OverrideGiven():
            who = event.actor.user if event.actor else "?"
            return f"{step}overridden by {who}: {event.reason}"
        case GateClosed():
            return f"{step}gate {event.outcome.replace('_', ' ')}"
        case RunInterrupted():
            return (
                f"run interrupted by {event.signal}; stopping the steps, then the cleanups run"
                " (send it again to skip them)"
            )
        case RunFinished():
            counts = ", ".join(
                f"{n} {STATUS_WORDS.get(k, k)}" for k, n in sorted(event.counts.items())
            )
            return f"run {event.run} {event.outcome} in {event.duration_s:.1f}s ({counts})"
    return None


def waiting_for_others(event: GateOpened) -> tuple[str, str]:
    """A gate whoever started the run cannot pass themselves (separation of duties, or not
    an approver): who may, and the command they run — said as the gate opens, so nobody
    waits for a keypress of their own that would be refused."""
    step = f"{event.step}: " if event.step else ""
    deadline = f", deadline {event.deadline}" if event.deadline else ""
    why = short_why(event.initiator_why_not)
    if event.approve_command.startswith("console override"):
        return (
            f"{step}waiting for an override by someone else (not you: {why}){deadline}",
            f"    they override with: console attach {event.run}  (or {event.approve_command})",
        )
    who = ", ".join(event.approvers) if event.approvers else "someone else"
    count = event.approvals_required
    return (
        f"{step}waiting for {who} (not you: {why}), {count} approval{'s' if count != 1 else ''}"
        f" needed{deadline}",
        f"    they approve with: console attach {event.run}  (or {event.approve_command})",
    )


def short_why(why: object) -> str:
    """The first clause of a refusal: "you started this run; policy 'x' requires someone
    else" -> "you started this run"."""
    text = str(why or "the run did not say why")
    return text.split(";", 1)[0].strip()


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
