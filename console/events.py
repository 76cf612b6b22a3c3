"""The event vocabulary: everything the engine says, as typed, immutable facts.

Data flows one way: plan -> engine -> events -> sinks (audit log, UI bridge, CLI printer).
Each event serialises to the audit line's `run`, `type`, `ts`, `step`, `actor` and `data`
keys; `event_from_json` turns an audit record back into the same event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol

StepOutcome = Literal["succeeded", "failed", "error", "cancelled"]
RunOutcome = Literal["succeeded", "failed", "denied", "cancelled", "interrupted"]
GateOutcome = Literal["approved", "denied", "overridden", "timed_out", "cancelled"]


def utc_now() -> str:
    """RFC 3339 UTC with microseconds, the audit trail's timestamp format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(ts: str) -> datetime:
    """The inverse of utc_now (fromisoformat: ~50x faster than strptime, used per event)."""
    moment = datetime.fromisoformat(ts)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Actor:
    """Who did something, as the operating system says: never from flags or env vars."""

    user: str
    uid: int
    via: str  # "tui", "cli", "socket", "engine"

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "uid": self.uid, "via": self.via}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        return cls(user=str(data["user"]), uid=int(data["uid"]), via=str(data["via"]))


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. Subclasses add their own fields, which become `data`."""

    type: ClassVar[str] = ""
    audited: ClassVar[bool] = True
    # Written to disk with fsync before the engine acts on it.
    durable: ClassVar[bool] = False
    # Fields left out of `data` while None (added later; older records never had them).
    omitted_when_none: ClassVar[frozenset[str]] = frozenset()

    run: str
    ts: str = field(default_factory=utc_now)
    step: str | None = None
    actor: Actor | None = None

    def data(self) -> dict[str, Any]:
        out = {name: _to_jsonable(getattr(self, name)) for name in _data_fields(type(self))}
        for name in self.omitted_when_none:
            if out.get(name, 0) is None:
                del out[name]
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run": self.run,
            "type": self.type,
            "ts": self.ts,
            "data": self.data(),
        }
        if self.step is not None:
            out["step"] = self.step
        if self.actor is not None:
            out["actor"] = self.actor.to_json()
        return out


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    return value


# --- run lifecycle ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    type: ClassVar[str] = "run.started"
    durable: ClassVar[bool] = True
    workflow: str  # the workflow's name
    workflow_path: str
    file_hashes: Mapping[str, str]  # path -> SHA-256 of the workflow and each policy file
    params: Mapping[str, Any]  # secret params masked
    steps: tuple[str, ...]  # step ids in file order
    user: str
    uid: int
    host: str
    pid: int
    version: str
    concurrency: int
    run_dir: str
    resumed_from: str | None = None
    control_socket: str | None = None
    # Steps run once per host: step id -> its instance keys (host names), in order.
    instances: Mapping[str, tuple[str, ...]] | None = None
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"instances"})


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    type: ClassVar[str] = "run.finished"
    durable: ClassVar[bool] = True
    outcome: RunOutcome
    counts: Mapping[str, int]  # status -> number of steps
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class RunInterrupted(Event):
    type: ClassVar[str] = "run.interrupted"
    durable: ClassVar[bool] = True
    signal: str  # "SIGTERM", "SIGHUP", "SIGINT"


@dataclass(frozen=True, kw_only=True)
class LockAcquired(Event):
    type: ClassVar[str] = "lock.acquired"
    name: str


@dataclass(frozen=True, kw_only=True)
class LockReleased(Event):
    type: ClassVar[str] = "lock.released"
    name: str


# --- steps -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StepReady(Event):
    type: ClassVar[str] = "step.ready"


@dataclass(frozen=True, kw_only=True)
class StepReused(Event):
    """On --resume: the step succeeded in the earlier run and is not run again."""

    type: ClassVar[str] = "step.reused"
    from_run: str
    outputs: Mapping[str, str] | None = None  # the outputs it had, handed on again
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"outputs"})


@dataclass(frozen=True, kw_only=True)
class StepSkipped(Event):
    type: ClassVar[str] = "step.skipped"
    reason: str


@dataclass(frozen=True, kw_only=True)
class StepStarted(Event):
    type: ClassVar[str] = "step.started"
    attempt: int
    max_attempts: int
    command: tuple[str, ...] | str  # argv (exec) or script (/bin/sh -c), secrets masked
    log_path: str
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"host", "host_key", "matrix"})
    pid: int  # on this machine, or on `host`; 0 when it never started
    host: str | None = None  # an instance on a host of the inventory
    host_key: str | None = None  # the SHA-256 fingerprint of the key that host presented
    matrix: Mapping[str, str] | None = None  # an instance of a matrix: its values


@dataclass(frozen=True, kw_only=True)
class StepOutput(Event):
    """New output reached the step's log (not audited; the UI tails the log file)."""

    type: ClassVar[str] = "step.output"
    audited: ClassVar[bool] = False
    attempt: int
    log_size: int


@dataclass(frozen=True, kw_only=True)
class StepFinished(Event):
    type: ClassVar[str] = "step.finished"
    attempt: int
    outcome: StepOutcome
    exit_code: int | None
    error: str | None  # why it could not start, was killed, timed out
    duration_s: float
    log_path: str
    log_size: int
    log_sha256: str
    retry_in_s: float | None = None  # set when another attempt follows
    # What the step handed on (secret values as "***", their SHA-256 in output_hashes).
    outputs: Mapping[str, str] | None = None
    output_hashes: Mapping[str, str] | None = None
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"outputs", "output_hashes"})


@dataclass(frozen=True, kw_only=True)
class WaveStarted(Event):
    """A step run on many hosts starts its next wave (its instances follow)."""

    type: ClassVar[str] = "wave.started"
    wave: int  # 1-based
    waves: int
    hosts: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class GroupFinished(Event):
    """A step run on many hosts has ended: how its instances did, and the step's outcome
    (failed once more hosts failed than `max_failures` allows, counted over the fleet)."""

    type: ClassVar[str] = "group.finished"
    durable: ClassVar[bool] = True
    outcome: StepOutcome
    succeeded: int
    failed: int
    not_run: int  # skipped or cancelled before they started
    summary: str


@dataclass(frozen=True, kw_only=True)
class StepDenied(Event):
    """The step will not run: denied by policy, by a person, or by a gate timeout."""

    type: ClassVar[str] = "step.denied"
    durable: ClassVar[bool] = True
    reason: str
    policies: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class StepCancelled(Event):
    """A person cancelled the step before it ran: at its gate, queued, or between attempts.

    (A step cancelled while running ends with a step.finished whose outcome is cancelled.)
    """

    type: ClassVar[str] = "step.cancelled"
    durable: ClassVar[bool] = True
    reason: str


@dataclass(frozen=True, kw_only=True)
class CleanupsSkipped(Event):
    """A second stop signal: the `if = "always"` steps still to run or running are abandoned."""

    type: ClassVar[str] = "run.cleanups_skipped"
    durable: ClassVar[bool] = True
    signal: str
    steps: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class AuditFailed(Event):
    """The audit file could not be written: the run stops (fail closed).

    Never audited (the file is what failed); the terminal and the UI show it.
    """

    type: ClassVar[str] = "audit.failed"
    audited: ClassVar[bool] = False
    path: str
    error: str


# --- gates -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GateEvaluated(Event):
    """The policy decision for a step, with every rule that matched and why."""

    type: ClassVar[str] = "gate.evaluated"
    durable: ClassVar[bool] = True
    decision: Mapping[str, Any]  # console.policy.decision.Decision.to_json()


@dataclass(frozen=True, kw_only=True)
class GateOpened(Event):
    """The step waits for approvals."""

    type: ClassVar[str] = "gate.opened"
    durable: ClassVar[bool] = True
    approvals_required: int
    approvers: tuple[str, ...]
    reason_required: bool
    deadline: str | None  # RFC 3339; no decision by then means denied
    approve_command: str  # what another engineer runs to approve
    # Whether whoever started the run may approve (or override) it themselves, and if not,
    # why ("you started this run; ..."). Records written before these existed mean True.
    initiator_may_approve: bool = True
    initiator_why_not: str | None = None


@dataclass(frozen=True, kw_only=True)
class ApprovalGiven(Event):
    type: ClassVar[str] = "approval.given"
    durable: ClassVar[bool] = True
    reason: str | None
    approvals: int  # counted so far, this one included
    approvals_required: int
    binding: Mapping[str, Any]  # run, step, uid and the file hashes this approval is for


@dataclass(frozen=True, kw_only=True)
class ApprovalRefused(Event):
    """Someone tried to approve, deny or override and was not allowed; says why."""

    type: ClassVar[str] = "approval.refused"
    durable: ClassVar[bool] = True
    action: Literal["approve", "deny", "override", "cancel"]
    why: str
    # How many refusals this record stands for. Repeated refusals of one uid are coalesced
    # (console/run/refusals.py): this one, the last of them, carries their number. Written
    # only when above 1, so a single refusal's record is what it always was.
    count: int = 1

    def data(self) -> dict[str, Any]:
        data = super().data()
        if self.count == 1:
            del data["count"]
        return data


@dataclass(frozen=True, kw_only=True)
class OverrideGiven(Event):
    type: ClassVar[str] = "override.given"
    durable: ClassVar[bool] = True
    reason: str
    policies: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class GateClosed(Event):
    type: ClassVar[str] = "gate.closed"
    durable: ClassVar[bool] = True
    outcome: GateOutcome
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class CancelRequested(Event):
    type: ClassVar[str] = "cancel.requested"
    durable: ClassVar[bool] = True
    target: Literal["step", "run"]


@dataclass(frozen=True, kw_only=True)
class RetryRequested(Event):
    type: ClassVar[str] = "retry.requested"
    durable: ClassVar[bool] = True
    steps: tuple[str, ...]  # the step and its skipped dependents


@dataclass(frozen=True, kw_only=True)
class AuditRecoveredTail(Event):
    """Written by the audit writer itself when it moved a torn last line aside."""

    type: ClassVar[str] = "audit.recovered_tail"
    moved_to: str
    torn_bytes: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        RunStarted,
        RunFinished,
        RunInterrupted,
        LockAcquired,
        LockReleased,
        StepReady,
        StepReused,
        StepSkipped,
        StepStarted,
        StepOutput,
        StepFinished,
        WaveStarted,
        GroupFinished,
        StepDenied,
        StepCancelled,
        CleanupsSkipped,
        AuditFailed,
        GateEvaluated,
        GateOpened,
        ApprovalGiven,
        ApprovalRefused,
        OverrideGiven,
        GateClosed,
        CancelRequested,
        RetryRequested,
        AuditRecoveredTail,
    )
}


class UnknownEventError(ValueError):
    pass


def event_from_json(record: Mapping[str, Any]) -> Event:
    """Rebuild an event from its JSON form (an audit record has extra keys; they are ignored)."""
    kind = record.get("type")
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise UnknownEventError(f"unknown event type {kind!r}")
    data = record.get("data") or {}
    kwargs: dict[str, Any] = {"run": record.get("run"), "step": record.get("step")}
    if record.get("ts") is not None:
        kwargs["ts"] = record["ts"]
    actor = record.get("actor")
    kwargs["actor"] = Actor.from_json(actor) if actor else None
    for name in _data_fields(cls):
        if name in data:
            value = data[name]
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


_BASE_FIELDS = frozenset({"run", "ts", "step", "actor"})


_FIELDS_BY_CLASS: dict[type[Event], tuple[str, ...]] = {}


def _data_fields(cls: type[Event]) -> tuple[str, ...]:
    """The fields that go in `data`, computed once per class (this is on the audit hot path)."""
    names = _FIELDS_BY_CLASS.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in _BASE_FIELDS)
        _FIELDS_BY_CLASS[cls] = names
    return names


class EventSink(Protocol):
    """Anything that receives the engine's events, in order. Must not block for long."""

    def publish(self, event: Event) -> None: ...


class RecordingSink:
    """Keeps every event in order (tests, and the run summary)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def of_type(self, cls: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, cls)]
