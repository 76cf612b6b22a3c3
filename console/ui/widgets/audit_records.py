"""What the audit pane makes of records: one-line summaries, and the chain's state.

A record holds what others wrote (reasons, user names, step ids, errors): every cell of a
row is made `terminal_safe`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from console.audit import reading
from console.audit.chain import record_hash
from console.audit.log import GENESIS, VerifyReport
from console.textsafe import terminal_safe

SUMMARY_WIDTH = 120


def cells(record: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """The pane's row for `record`: time, actor, type, step, summary; each safe to draw."""
    actor = record.get("actor")
    user = str(actor.get("user", "")) if isinstance(actor, Mapping) else ""
    return (
        terminal_safe(clock(record.get("ts"))),
        terminal_safe(user),
        terminal_safe(str(record.get("type", ""))),
        terminal_safe(str(record.get("step") or "")),
        terminal_safe(summarize(record)),
    )


def fit(text: str, width: int) -> str:
    """`text` cut to `width` cells' worth of characters, with an ellipsis when cut."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def clock(ts: Any) -> str:
    """HH:MM:SS in local time (the trail stores UTC)."""
    if not isinstance(ts, str):
        return ""
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts[:8]
    return moment.astimezone().strftime("%H:%M:%S")


def summarize(record: Mapping[str, Any]) -> str:
    """One line saying what the record's data means, for the pane's last column."""
    data = record.get("data")
    data = data if isinstance(data, Mapping) else {}
    describe = _SUMMARIES.get(str(record.get("type", "")), _generic)
    try:
        text = describe(data)
    except (KeyError, TypeError, ValueError):
        text = _generic(data)
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"


def _generic(data: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={_short(value)}" for key, value in sorted(data.items()))


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


def _seconds(value: Any) -> str:
    seconds = float(value)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _run_started(d: Mapping[str, Any]) -> str:
    return f"{d['workflow']} by {d['user']}@{d['host']}, {len(d['steps'])} steps"


def _run_finished(d: Mapping[str, Any]) -> str:
    counts = d.get("counts") or {}
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"{d['outcome']} in {_seconds(d['duration_s'])}" + (f" ({parts})" if parts else "")


def _step_started(d: Mapping[str, Any]) -> str:
    command = d["command"]
    shown = " ".join(command) if isinstance(command, list) else str(command)
    return f"attempt {d['attempt']}/{d['max_attempts']}: {shown}"


def _step_finished(d: Mapping[str, Any]) -> str:
    text = f"{d['outcome']}"
    if d.get("exit_code") is not None:
        text += f" exit {d['exit_code']}"
    text += f" in {_seconds(d['duration_s'])}"
    if d.get("error"):
        text += f": {d['error']}"
    if d.get("retry_in_s") is not None:
        text += f"; retry in {_seconds(d['retry_in_s'])}"
    return text


def _gate_evaluated(d: Mapping[str, Any]) -> str:
    decision = d["decision"]
    if not isinstance(decision, Mapping):
        return _generic(d)
    effect = decision.get("effect") or decision.get("kind") or decision.get("outcome") or ""
    return str(effect) if effect else _generic(decision)


def _gate_opened(d: Mapping[str, Any]) -> str:
    who = ", ".join(d.get("approvers") or ()) or "anyone allowed"
    return f"needs {d['approvals_required']} approval(s) from {who}"


def _approval_given(d: Mapping[str, Any]) -> str:
    text = f"{d['approvals']}/{d['approvals_required']} approvals"
    return text + (f": {d['reason']}" if d.get("reason") else "")


def _reason(key: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda d: str(d[key])


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "run.started": _run_started,
    "run.finished": _run_finished,
    "run.interrupted": lambda d: f"by {d['signal']}",
    "lock.acquired": lambda d: f"lock {d['name']}",
    "lock.released": lambda d: f"lock {d['name']}",
    "step.ready": lambda d: "",
    "step.reused": lambda d: f"succeeded in run {d['from_run']}",
    "step.skipped": _reason("reason"),
    "step.started": _step_started,
    "step.finished": _step_finished,
    "step.denied": _reason("reason"),
    "gate.evaluated": _gate_evaluated,
    "gate.opened": _gate_opened,
    "approval.given": _approval_given,
    "approval.refused": lambda d: (
        f"{d['action']} refused"
        + (f" ({d['count']} times)" if d.get("count", 1) > 1 else "")
        + f": {d['why']}"
    ),
    "step.cancelled": _reason("reason"),
    "run.cleanups_skipped": lambda d: (
        f"{d['signal']} again: cleanups skipped ({', '.join(d['steps']) or 'none left'})"
    ),
    "override.given": lambda d: f"override of {', '.join(d['policies'])}: {d['reason']}",
    "gate.closed": lambda d: str(d["outcome"]) + (f": {d['reason']}" if d.get("reason") else ""),
    "cancel.requested": lambda d: f"cancel the {d['target']}",
    "retry.requested": lambda d: f"retry {', '.join(d['steps'])}",
    "audit.recovered_tail": lambda d: f"{d['torn_bytes']} torn bytes moved to {d['moved_to']}",
}


class ChainTracker:
    """The chain's state for the pane's title: verified once in full, then line by line.

    Records that arrive while the full verification runs wait in `pending`, and are
    checked against its result when it comes.
    """

    def __init__(self) -> None:
        self.state = "checking"  # checking | verified | broken | unavailable
        self.seq = 0
        self.hash: str | None = None
        self.problem = ""
        self.detail = ""  # the verifier's full message
        self._pending: list[Mapping[str, Any]] = []

    @property
    def broken(self) -> bool:
        return self.state == "broken"

    def describe(self) -> str:
        if self.state == "checking":
            return "verifying the chain…"
        if self.state == "verified":
            return f"verified to seq {self.seq}" if self.seq else "empty, nothing to verify"
        if self.state == "broken":
            return self.problem
        return f"chain not checked: {self.problem}"

    def settle(self, report: VerifyReport) -> None:
        """The full verification's result; records seen meanwhile are checked after it."""
        self.detail = report.message
        if report.ok or report.kind == "torn_tail":
            # A torn last line may be another process's append caught mid-write; the
            # lines before it verify, and the follower re-checks what comes next.
            self.state, self.seq, self.hash = "verified", report.last_seq, report.last_hash
        else:
            what = (report.kind or "broken").replace("_", " ")
            self._break(f"chain broken at line {report.first_bad_line}: {what}")
        pending, self._pending = self._pending, []
        for record in pending:
            self.observe(record)

    def settle_empty(self) -> None:
        """There is no audit file yet: the first line to come must start the chain."""
        self.state, self.seq, self.hash = "verified", 0, GENESIS
        pending, self._pending = self._pending, []
        for record in pending:
            self.observe(record)

    def unavailable(self, why: str) -> None:
        self.state, self.problem = "unavailable", why
        self._pending = []

    def observe(self, record: Mapping[str, Any]) -> None:
        """One more record, in file order."""
        if self.state == "checking":
            self._pending.append(record)
            return
        if self.state != "verified":
            return
        seq = record.get("seq")
        if not isinstance(seq, int) or seq <= self.seq:
            return  # read before the verification's end: already covered by it
        line = self.seq + 1
        if seq != line:
            self._break(f"chain broken at line {line}: expected seq {line}, found {seq}")
        elif record.get("prev") != self.hash:
            self._break(f"chain broken at line {line}: prev is not the hash of line {line - 1}")
        elif record.get("hash") != record_hash(record):
            self._break(f"chain broken at line {line}: the line does not match its hash")
        else:
            self.seq, self.hash = seq, str(record["hash"])

    def _break(self, problem: str) -> None:
        self.state = "broken"
        self.problem = problem if problem.startswith("chain broken") else f"chain broken: {problem}"


def last_records(path: Path, count: int) -> tuple[list[dict[str, Any]], int]:
    """The last `count` complete records, oldest first, and the offset just after the last
    complete line (where following continues). A missing file has none, from offset 0."""
    if not path.exists():
        return [], 0
    found, end = reading.last_records(path, count)
    return [record for record, _ in found], end
