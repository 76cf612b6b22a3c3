"""The audit writer as an event sink: every audited event becomes one chained line.

Durable events (gate decisions, approvals, run start and end) are fsynced before
`publish` returns, so the engine never acts on a decision the disk does not hold.
"""

from __future__ import annotations

from console.audit.log import AuditLog
from console.events import Event


class AuditSink:
    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def publish(self, event: Event) -> None:
        if event.audited:
            self.log.append(event.to_json(), sync=event.durable)
