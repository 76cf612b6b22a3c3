"""What the audit pane makes of records: its row's cells, and the chain's state.

A record holds what others wrote (reasons, user names, step ids, errors): every cell of a
row is made `terminal_safe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from console.audit import reading
from console.audit.chain import record_hash
from console.audit.log import GENESIS, VerifyReport
from console.present import record_summary
from console.textsafe import terminal_safe


def cells(record: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """The pane's row for `record`: time, actor, type, step, summary; each safe to draw."""
    actor = record.get("actor")
    user = str(actor.get("user", "")) if isinstance(actor, Mapping) else ""
    return (
        terminal_safe(clock(record.get("ts"))),
        terminal_safe(user),
        terminal_safe(str(record.get("type", ""))),
        terminal_safe(str(record.get("step") or "")),
        record_summary(record),
    )


def clock(ts: Any) -> str:
    """HH:MM:SS in local time (the trail stores UTC)."""
    if not isinstance(ts, str):
        return ""
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts[:8]
    return moment.astimezone().strftime("%H:%M:%S")


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
