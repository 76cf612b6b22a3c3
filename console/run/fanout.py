"""Hand each engine event to its sinks, so that no sink can break the run.

The audit writer is the one sink the run cannot go on without: when it fails (a full
disk, an I/O error), the fan-out stops feeding it, remembers every audited event that
therefore never reached the file, and tells the engine, which stops the run (fail
closed). Audited events are committed in groups (console/run/audit_sink.py): at the end
of the loop's pass that published them, or at once for a durable one; a failed commit
leaves every event of its group unrecorded. Any other sink that raises (a terminal that
went away under the live table) is dropped and named in `dropped`; the run goes on
without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from console.events import Event, EventSink
from console.run.audit_sink import AuditSink


@dataclass(frozen=True)
class Unrecorded:
    """An audited event that the audit file does not hold."""

    type: str
    step: str | None

    def __str__(self) -> str:
        return f"{self.type} {self.step}" if self.step else self.type


@dataclass
class AuditBreak:
    path: str
    error: str
    unrecorded: list[Unrecorded] = field(default_factory=list)


class SinkFanout:
    def __init__(self, on_audit_failure: Callable[[AuditBreak], None]) -> None:
        self.sinks: list[EventSink] = []
        self._audit: AuditSink | None = None
        self._on_audit_failure = on_audit_failure
        self.audit_break: AuditBreak | None = None
        self.dropped: list[str] = []
        self._commit_handle: asyncio.Handle | None = None

    def add(self, sink: EventSink) -> None:
        self.sinks.append(sink)

    def set_audit(self, sink: AuditSink) -> None:
        self._audit = sink

    def publish(self, event: Event) -> None:
        if event.audited:
            self._record(event)
        failed: list[EventSink] = []
        for sink in self.sinks:  # no copy per event: this is the engine's hot path
            try:
                sink.publish(event)
            except Exception as exc:  # a viewer's fault must never stop or skew the run
                failed.append(sink)
                self.dropped.append(f"{type(sink).__name__}: {exc}")
        for sink in failed:
            self.sinks.remove(sink)

    def commit(self) -> None:
        """Write the audited events staged so far (the end of a pass of the loop)."""
        self._commit_handle = None
        if self._audit is not None:
            self._commit(self._audit, sync=False)

    def commit_after_queued(self) -> None:
        """Move a scheduled commit behind the callbacks queued since it was scheduled.

        The engine calls this when it has just queued a step's task: the task's first step
        starts the process and publishes step.started, which then joins the events of this
        pass (step.finished, step.ready) in one write instead of needing one of its own.
        """
        handle = self._commit_handle
        if handle is not None:
            handle.cancel()
            self._commit_handle = asyncio.get_running_loop().call_soon(self.commit)

    def _record(self, event: Event) -> None:
        audit = self._audit
        if audit is None:
            if self.audit_break is not None:
                self.audit_break.unrecorded.append(Unrecorded(event.type, event.step))
            return
        try:
            now = audit.stage(event)
        except Exception as exc:  # an entry the writer cannot take
            audit.pending.append(event)
            self._failed(audit, exc)
            return
        if now or not self._commit_later():
            self._commit(audit, sync=event.durable)

    def _commit_later(self) -> bool:
        if self._commit_handle is not None:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False  # no loop to end a pass: write now
        self._commit_handle = loop.call_soon(self.commit)
        return True

    def _commit(self, audit: AuditSink, sync: bool) -> None:
        try:
            audit.commit(sync)
        except Exception as exc:  # AuditError, or any OSError the writer let through
            self._failed(audit, exc)

    def _failed(self, audit: AuditSink, exc: Exception) -> None:
        lost = [Unrecorded(e.type, e.step) for e in audit.pending]
        audit.pending.clear()
        audit.log.drop_staged()
        self._audit = None
        self.audit_break = AuditBreak(str(audit.log.path), str(exc), lost)
        self._on_audit_failure(self.audit_break)

