"""The audit writer as an event sink: every audited event becomes one chained line.

The events of one pass of the engine's loop are written together (group commit, see
console/audit/log.py): each is staged as it is published, and the lot is committed once
the pass is over, in one write. Durable events (gate decisions, approvals, run start and
end) commit what is staged and themselves, fsynced, before `publish` returns, so the
engine never acts on a decision the disk does not hold. With fsync_always, every event
commits at once.
"""

from __future__ import annotations

from console.audit.log import AuditLog
from console.events import Event


class AuditSink:
    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.pending: list[Event] = []  # staged, not yet written

    def stage(self, event: Event) -> bool:
        """Stage `event`; True if it must be committed now (it is durable, or every line
        is to be synced), False if it may wait for the end of the pass."""
        self.log.stage(event.to_json())
        self.pending.append(event)
        return event.durable or self.log.fsync_always

    def commit(self, sync: bool = False) -> None:
        """Write what is staged (raises on failure: then none of `pending` was written)."""
        if self.pending:
            self.log.commit(sync)
            self.pending.clear()

    def publish(self, event: Event) -> None:
        """Write `event` now (with fsync if it is durable), after anything staged."""
        if event.audited:
            self.stage(event)
            self.commit(sync=event.durable)
