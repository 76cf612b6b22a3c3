"""How a step's status reads on screen: an icon, a word and a colour class, never colour alone.

Shared by the DAG nodes, the compact list and the step detail so that they always agree.
What a status quotes from others (an error, a denial, a user name) is made `terminal_safe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text

from console.present import countdown, duration, step_time
from console.run.state import StepState, held_wave
from console.textsafe import terminal_safe
from console.timestamps import parse_ts

if TYPE_CHECKING:
    from console.workflow.spec import Step


@dataclass(frozen=True)
class StatusLook:
    icon: str
    word: str  # "running 12s", "failed (exit 2)", "awaiting approval 1/2"
    tone: str  # a component class suffix: pending, waiting, running, ok, bad, gate, muted
    short: str = ""  # the word for a one-row card: "12.1s", "exit 2", "awaiting 1/2"
    left: str | None = None  # a waiting gate's time left before it is denied: "29m"
    given: str = ""  # a waiting gate's approvals, given of required: "1/2"
    wave: str = ""  # the wave a step on many hosts waits at its gate to start: "2/3"


_TONES = {
    "pending": "pending",
    "ready": "waiting",
    "awaiting_approval": "gate",
    "running": "running",
    "retrying": "waiting",
    "succeeded": "ok",
    "reused": "ok",
    "failed": "bad",
    "error": "bad",
    "denied": "bad",
    "skipped": "muted",
    "cancelled": "muted",
}

_ICONS = {
    "pending": "○",
    "ready": "◌",
    "awaiting_approval": "◆",
    "running": "▶",
    "retrying": "↻",
    "succeeded": "✓",
    "reused": "✓",
    "failed": "✗",
    "error": "✗",
    "denied": "⊘",
    "skipped": "↷",
    "cancelled": "■",
}


def describe(step: StepState, now: datetime) -> StatusLook:
    status = step.status
    icon, tone = _ICONS.get(status, "?"), _TONES.get(status, "pending")
    attempts = f" {step.attempt}/{step.max_attempts}" if step.max_attempts > 1 else ""
    short = ""
    if status == "pending":
        word = "pending"
    elif status == "ready":
        word = short = "waiting"
    elif status == "awaiting_approval":
        given = f"{len(step.approvals)}/{step.approvals_required}"
        word, short = f"awaiting approval {given}", f"awaiting {given}"
        held = held_wave(step.wave)
        wave = f"{held[0]}/{held[1]}" if held is not None else ""
        if wave:  # said, so that a passed gate and the next one never look alike
            word, short = f"{word} for wave {wave}", f"{short}, wave {wave}"
        return StatusLook(icon, word, tone, short, time_left(step.gate_deadline, now),
                          given, wave)
    elif status == "running":
        took = step_time(None, step.started_ts, True, now)
        word = "running" + (f" {took}" if took else "") + attempts
        short = took + attempts
    elif status == "retrying":
        after = f" in {duration(step.retry_in_s)}" if step.retry_in_s else ""
        word = short = f"retry {step.attempt + 1}/{step.max_attempts}{after}"
    elif status in ("succeeded", "reused"):
        took = duration(step.duration_s) if step.duration_s is not None else ""
        word = ("succeeded" if status == "succeeded" else "reused") + (f" {took}" if took else "")
        short = took or status
    elif status == "failed":
        word = f"failed (exit {step.exit_code})" if step.exit_code is not None else "failed"
        short = f"exit {step.exit_code}" if step.exit_code is not None else "failed"
    elif status == "error":
        word = f"error: {terminal_safe(step.error)}" if step.error else "error"
        short = "error"
    elif status == "denied":
        word = f"denied: {terminal_safe(step.denied_by)}" if step.denied_by else "denied"
        short = "denied"
    else:
        word = short = terminal_safe(status)
    if step.instance_counts is not None and status not in ("awaiting_approval", "denied"):
        # A group node: how its instances stand says more than the group's own word.
        counts = step.instance_counts
        if step.finished:
            ok = counts.get("succeeded", 0) + counts.get("reused", 0)
            bad = counts.get("failed", 0) + counts.get("error", 0)
            total = sum(counts.values())
            # The failures first: cut short at 80 columns, what went wrong still shows.
            word = (f"{status}: {ok} of {total} ok" if not bad
                    else f"{status}: {bad} failed, {ok} ok of {total}")
            short = f"{ok}/{sum(counts.values())} ok"
        else:
            word = instance_summary(counts)
            short = word.replace("  ", " ")
    return StatusLook(icon, word, tone, short)


_COUNTED = (("✓", ("succeeded", "reused")), ("▶", ("running", "retrying")),
            ("○", ("pending", "ready", "awaiting_approval")), ("✗", ("failed", "error")))


def instance_summary(counts: dict[str, int]) -> str:
    """"✓ 8  ▶ 2  ○ 2  ✗ 0" (and "↷ 3" when some never ran)."""
    parts = [f"{icon} {sum(counts.get(s, 0) for s in statuses)}" for icon, statuses in _COUNTED]
    never = sum(counts.get(s, 0) for s in ("skipped", "cancelled", "denied"))
    if never:
        parts.append(f"↷ {never}")
    return "  ".join(parts)


def time_left(deadline: str | None, now: datetime) -> str | None:
    """A gate's deadline as a countdown: "29m" (None without a deadline)."""
    if deadline is None:
        return None
    try:
        left = (parse_ts(deadline) - now).total_seconds()
    except ValueError:
        return None
    return countdown(left)


def rule_names(decision: dict[str, Any] | None, effect: str | None = None) -> list[str]:
    if not decision:
        return []
    rules = decision.get("rules") or []
    return [
        str(rule.get("name", "?"))
        for rule in rules
        if isinstance(rule, dict) and (effect is None or rule.get("effect") == effect)
    ]


def gate_text(state: StepState, model: Step | None, now: datetime | None = None) -> str:
    """The gate, inline on the node: what it asks for, how far it got, and while it waits,
    when it is denied for want of a decision."""
    if state.status == "awaiting_approval":
        text = f"needs {state.approvals_required}, {len(state.approvals)} given"
        left = time_left(state.gate_deadline, now) if now is not None else None
        return text + (f", denied in {left}" if left is not None else "")
    if state.overridden_by is not None:
        return f"overridden by {terminal_safe(state.overridden_by.user)}"
    decision = state.decision
    if decision:
        effect = decision.get("effect")
        if effect == "deny":
            return "denied by policy"
        if effect == "require_approval":
            given = len(state.approvals)
            required = int(decision.get("approvals_required") or state.approvals_required or 1)
            return f"approved {given}/{required}" if given else f"needs {required} approvals"
        if rule_names(decision):
            return "allowed by policy"
        return ""
    if model is not None and model.approval is not None:
        count = model.approval.approvals
        return f"gate: {count} approval" + ("s" if count > 1 else "")
    return ""


def matches_filter(
    term: str, step_id: str, model: Step | None, state: StepState, now: datetime
) -> bool:
    """`/` filter: a name fragment, a tag, or a status word (`failed`, `awaiting`, `tag:prod`)."""
    term = term.strip().lower()
    if not term:
        return True
    kind, sep, value = term.partition(":")
    tags = [t.lower() for t in (model.tags if model is not None else [])]
    if sep and kind == "tag":
        return any(value in tag for tag in tags)
    if sep and kind == "status":
        return state.status.startswith(value) or describe(state, now).word.startswith(value)
    return (
        term in step_id.lower()
        or any(term in tag for tag in tags)
        or state.status.startswith(term)
        or describe(state, now).word.startswith(term)
    )


def instance_row(key: str, state: StepState, now: datetime, width: int) -> Text:
    """One instance on one line: icon, key, status word, the host key's fingerprint."""
    look = describe(state, now)
    row = Text(f"{look.icon} ")
    row.append(terminal_safe(key).ljust(width), style="bold")
    row.append(f"  {look.word}")
    if state.host_key:
        row.append(f"  {terminal_safe(state.host_key)[:19]}…", style="dim")
    return row
