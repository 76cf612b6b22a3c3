"""Hand each engine event to its sinks, so that no sink can break the run.

The audit writer is the one sink the run cannot go on without: when it fails (a full
disk, an I/O error), the fan-out stops feeding it, remembers every audited event that
therefore never reached the file, and tells the engine, which stops the run (fail
closed). Any other sink that raises (a terminal that went away under the live table) is
dropped and named in `dropped`; the run goes on without it.
"""

from __future__ import annotations

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

    def _record(self, event: Event) -> None:
        if self._audit is None:
            if self.audit_break is not None:
                self.audit_break.unrecorded.append(Unrecorded(event.type, event.step))
            return
        try:
            self._audit.publish(event)
        except Exception as exc:  # AuditError, or any OSError the writer let through
            path = str(self._audit.log.path)
            self._audit = None
            self.audit_break = AuditBreak(path, str(exc), [Unrecorded(event.type, event.step)])
            self._on_audit_failure(self.audit_break)

