"""How the console says things to people, once, for the CLI and the UI alike.

An event (or the audit record it was written as) in words, a duration, a text fitted to a
width. No textual or rich here: the headless printer, the live table, `console audit
tail`, the audit pane and the step nodes all call these, so a step's failure reads the same
everywhere. What an event quotes (reasons, user names, errors, commands) is someone else's
text: every line returned is made `terminal_safe`.
"""

from __future__ import annotations

import json
import shlex
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from console.events import (
    ApprovalGiven,
    ApprovalRefused,
    AuditFailed,
    AuditRecoveredTail,
    CancelRequested,
    CleanupsSkipped,
    Event,
    GateClosed,
    GateEvaluated,
    GateOpened,
    GroupFinished,
    LockAcquired,
    LockReleased,
    OverrideGiven,
    RetryRequested,
    RunFinished,
    RunInterrupted,
    RunStarted,
    StepCancelled,
    StepDenied,
    StepFinished,
    StepOutput,
    StepReady,
    StepReused,
    StepSkipped,
    StepStarted,
    UnknownEventError,
    WaveStarted,
    event_from_json,
)
from console.textsafe import terminal_safe
from console.timestamps import parse_ts

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

# Events the headless printer does not give a line of their own (the audit pane and
# `audit tail` still describe them).
QUIET = (LockAcquired, LockReleased, StepReady, GateEvaluated, StepOutput, RetryRequested)

SHORT_VALUE = 40


# --- durations and widths ----------------------------------------------------------------


def duration(seconds: float) -> str:
    """"1.2s" under a minute (tenths matter there), "1m05s" under an hour, "2h03m" above."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def step_time(duration_s: float | None, started_ts: str | None, running: bool,
              now: datetime) -> str:
    """A step's time as every view gives it: how long it took, or while it runs how long
    it has been running; "" when neither is known."""
    if duration_s is not None:
        return duration(duration_s)
    if running and started_ts:
        try:
            return duration((now - parse_ts(started_ts)).total_seconds())
        except ValueError:
            return ""
    return ""


def countdown(seconds: float) -> str:
    """A time left, as coarse as a glance needs: "45s", "29m", "2h05m"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def fit(text: str, width: int, *, pad: bool = False) -> str:
    """`text` made safe and cut to `width` terminal cells, with "…" when cut (`pad`: filled
    to `width` cells with spaces). A character that takes no cell of its own (a zero-width
    space, a soft hyphen) is written as a space."""
    text = "".join(ch if ch.isprintable() else " " for ch in terminal_safe(text))
    text = cut(text, width)
    return pad_to(text, width) if pad else text


def cut(text: str, width: int) -> str:
    """`text` in at most `width` terminal cells; cut short, it ends in "…"."""
    if cells(text) <= width:
        return text
    if width <= 0:
        return ""
    out, used = [], 0
    for char in text:
        size = _char_cells(char)
        if used + size > width - 1:
            break
        out.append(char)
        used += size
    return "".join(out) + "…"


def pad_to(text: str, width: int) -> str:
    """`text` and spaces to fill `width` terminal cells."""
    return text + " " * max(0, width - cells(text))


def cells(text: str) -> int:
    """The terminal cells `text` takes: two for a wide (East Asian) character, none for a
    combining one."""
    return sum(_char_cells(char) for char in text)


def _char_cells(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


# --- events ------------------------------------------------------------------------------


def event_lines(event: Event, *, with_step: bool = True) -> tuple[str, ...]:
    """An event in words: one line (a gate: three, the last the command to pass it), each
    safe for a terminal. `with_step`: start with "STEP: " (the audit pane has a column)."""
    lines = _lines(event)
    if with_step and event.step:
        lines = (f"{event.step}: {lines[0]}", *lines[1:])
    # Made safe line by line: a newline inside a field is shown as `\n`, not obeyed.
    return tuple(terminal_safe(line) for line in lines)


def printed_line(event: Event) -> str | None:
    """What the headless printer writes for an event (None: not worth a line)."""
    if isinstance(event, QUIET):
        return None
    return "\n".join(event_lines(event))


def _who(event: Event) -> str:
    return event.actor.user if event.actor else "?"


def _lines(event: Event) -> tuple[str, ...]:
    match event:
        case RunStarted():
            return (f"{event.workflow} started by {event.user}@{event.host}, "
                    f"{len(event.steps)} steps, run {event.run}"
                    + (f", resuming {event.resumed_from}" if event.resumed_from else ""),)
        case RunFinished():
            counts = ", ".join(
                f"{n} {STATUS_WORDS.get(k, k)}" for k, n in sorted(event.counts.items()))
            return (f"run {event.run} {event.outcome} in {duration(event.duration_s)}"
                    + (f" ({counts})" if counts else ""),)
        case RunInterrupted():
            return (f"run interrupted by {event.signal}; stopping the steps, then the cleanups "
                    "run (send it again to skip them)",)
        case LockAcquired():
            return (f"lock {event.name} taken",)
        case LockReleased():
            return (f"lock {event.name} released",)
        case StepReady():
            return ("ready",)
        case StepReused():
            return (f"reused (succeeded in run {event.from_run})",)
        case StepSkipped():
            return (f"skipped: {event.reason}",)
        case StepStarted():
            # pid 0: the process never started (a host that could not be reached).
            where = [event.host or "", f"pid {event.pid}" if event.pid else ""]
            at = " ".join(w for w in where if w)
            return (f"started, attempt {event.attempt}/{event.max_attempts}"
                    f"{', ' + at if at else ''}: {_command(event.command)}",)
        case WaveStarted():
            return (f"wave {event.wave}/{event.waves}: {', '.join(event.hosts)}",)
        case GroupFinished():
            return (f"{event.outcome}: {event.summary}",)
        case StepOutput():
            return (f"output, {event.log_size} bytes",)
        case StepFinished():
            return (_finished(event),)
        case StepDenied():
            return (f"denied: {event.reason}",)
        case StepCancelled():
            return (f"cancelled: {event.reason}",)
        case CleanupsSkipped():
            names = ", ".join(event.steps) or "none left"
            return (f"{event.signal} again: cleanups skipped ({names})",)
        case AuditFailed():
            return (f"audit file failed ({event.error}); stopping the run (fail closed)",)
        case GateEvaluated():
            return (_evaluated(event.decision),)
        case GateOpened():
            return _gate_opened(event)
        case ApprovalGiven():
            return (f"approved by {_who(event)} ({event.approvals}/{event.approvals_required})"
                    + (f": {event.reason}" if event.reason else ""),)
        case ApprovalRefused():
            times = f" ({event.count} times)" if event.count > 1 else ""
            return (f"{event.action} by {_who(event)} refused{times}: {event.why}",)
        case OverrideGiven():
            return (f"overridden by {_who(event)} ({', '.join(event.policies)}): "
                    f"{event.reason}",)
        case GateClosed():
            return (f"gate {event.outcome.replace('_', ' ')}"
                    + (f": {event.reason}" if event.reason else ""),)
        case CancelRequested():
            if event.target == "run":
                return (f"run cancelled by {_who(event)}; stopping the steps, then the "
                        "cleanups run",)
            return (f"cancel requested by {_who(event)}",)
        case RetryRequested():
            return (f"retry of {', '.join(event.steps)} asked by {_who(event)}",)
        case AuditRecoveredTail():
            return (f"{event.torn_bytes} torn bytes moved to {event.moved_to}",)
    return (event.type,)


def _command(command: tuple[str, ...] | str) -> str:
    """A step's command on one line, as it runs: an argv quoted as a shell would need it
    (`sh -c 'echo "$1"' x`, not `sh -c echo "$1" x`), a script's line breaks shown as ↵."""
    if isinstance(command, tuple):
        return shlex.join(command)
    lines = (" ".join(line.split()) for line in command.strip().splitlines())
    return " ↵ ".join(line for line in lines if line)


def _finished(event: StepFinished) -> str:
    took = f"after {duration(event.duration_s)}"
    if event.error:
        # The error ends in its fix ("… — check `identity`"): the duration goes before it.
        line = f"{event.outcome} {took}: {event.error}; log {event.log_path}"
    elif event.outcome == "failed" and event.exit_code not in (None, 0):
        line = f"failed (exit {event.exit_code}) {took}, log {event.log_path}"
    else:
        line = f"{event.outcome} {took}, log {event.log_path}"
    if event.retry_in_s is not None:
        line += f" — retrying in {event.retry_in_s:g}s"
    return line


def _evaluated(decision: Mapping[str, Any]) -> str:
    effect = str(decision.get("effect") or "")
    rules = [str(r.get("name", "?")) for r in decision.get("rules") or () if isinstance(r, dict)]
    return (f"policy: {effect}" if effect else "policy evaluated") + (
        f" ({', '.join(rules)})" if rules else "")


def _gate_opened(event: GateOpened) -> tuple[str, ...]:
    if not event.initiator_may_approve:
        return waiting_for_others(event, with_step=False)
    need = f"needs {event.approvals_required} approval(s)" + (
        f" from {', '.join(event.approvers)}" if event.approvers else "")
    if "override" in event.approve_command:
        need = "denied by a soft policy; an override is possible"
    deadline = f", deadline {event.deadline}" if event.deadline else ""
    verb = "override" if event.approve_command.startswith("console override") else "approve"
    return (f"awaiting approval: {need}{deadline}",
            f"  to {verb}{_with_reason(event)}, run:",
            f"  {event.approve_command}")


def waiting_for_others(event: GateOpened, *, with_step: bool = True) -> tuple[str, ...]:
    """A gate whoever started the run cannot pass themselves (separation of duties, or not
    an approver): who may, and the command they run — said as the gate opens, so nobody
    waits for a keypress of their own that would be refused.

    A command stands alone on its line, after two spaces and nothing else, so that copying
    the line from an 80-column terminal copies the whole command (it was once cut at the
    reason's quotes)."""
    step = f"{event.step}: " if event.step and with_step else ""
    deadline = f", deadline {event.deadline}" if event.deadline else ""
    why = short_why(event.initiator_why_not)
    if event.approve_command.startswith("console override"):
        return (
            f"{step}waiting for an override by someone else (not you: {why}){deadline}",
            f"  they override in `console attach {event.run}`, or with:",
            f"  {event.approve_command}",
        )
    who = ", ".join(event.approvers) if event.approvers else "someone else"
    count = event.approvals_required
    return (
        f"{step}waiting for {who} (not you: {why}), {count} approval{'s' if count != 1 else ''}"
        f" needed{deadline}",
        f"  they approve in `console attach {event.run}`, or with:",
        f"  {event.approve_command}",
    )


def _with_reason(event: GateOpened) -> str:
    return " (a reason is required)" if "--reason" in event.approve_command else ""


def short_why(why: object) -> str:
    """The first clause of a refusal: "you started this run; policy 'x' requires someone
    else" -> "you started this run"."""
    text = str(why or "the run did not say why")
    return text.split(";", 1)[0].strip()


# --- audit records (events as written) ---------------------------------------------------


def record_summary(record: Mapping[str, Any]) -> str:
    """What a record says, on one line, without its time, actor, type or step (the audit
    pane shows those in columns). A record of a type this version does not know, or with
    fields it cannot read, is shown as its data's `key=value` pairs."""
    try:
        lines = event_lines(event_from_json(record), with_step=False)
    except (UnknownEventError, TypeError, ValueError, KeyError):
        data = record.get("data")
        return terminal_safe(_generic(data) if isinstance(data, Mapping) else _value(data))
    return " ".join(" ".join(line.split()) for line in lines)


def record_line(record: Mapping[str, Any], *, with_run: bool = True) -> str:
    """A record on one line for `console audit tail`: UTC time, run, actor, type, step and
    what it says; safe for a terminal."""
    ts = str(record.get("ts", ""))
    when = f"{ts[:10]} {ts[11:23]}" if len(ts) >= 23 else ts
    actor = record.get("actor")
    who = f"{actor.get('user')}({actor.get('via')})" if isinstance(actor, Mapping) else "-"
    columns = [when]
    if with_run:
        columns.append(f"{record.get('run') or '-':<22}")
    columns += [
        f"{who:<16}",
        f"{record.get('type', '?'):<18}",
        f"{record.get('step') or '-':<14}",
        record_summary(record),
    ]
    return terminal_safe(" ".join(columns).rstrip())


def _generic(data: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={_value(value)}" for key, value in sorted(data.items())
                     if value not in (None, ""))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value if value and " " not in value else json.dumps(value, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= SHORT_VALUE else text[: SHORT_VALUE - 1] + "…"
