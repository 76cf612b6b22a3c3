"""RunState: a fold over events. The UI, `console status` and `--resume` all use it.

`RunState.apply(event)` is the only way state changes, so live events and an audit file
replayed line by line give the same picture.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from console.events import (
    ApprovalGiven,
    AuditFailed,
    CancelRequested,
    Event,
    GateClosed,
    GateEvaluated,
    GateOpened,
    GroupFinished,
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
    WaveStarted,
)
from console.workflow.fleet import instance_id, split_instance

StepStatus = Literal[
    "pending",
    "ready",
    "awaiting_approval",
    "running",
    "retrying",
    "succeeded",
    "failed",
    "error",
    "denied",
    "skipped",
    "cancelled",
    "reused",
]
FINISHED: frozenset[str] = frozenset(
    {"succeeded", "failed", "error", "denied", "skipped", "cancelled", "reused"}
)
SUCCESSFUL: frozenset[str] = frozenset({"succeeded", "reused"})
RunStatus = Literal[
    "pending", "running", "succeeded", "failed", "denied", "cancelled", "interrupted"
]


@dataclass
class ApprovalRecord:
    user: str
    uid: int
    via: str
    ts: str
    reason: str | None


@dataclass
class StepState:
    id: str
    status: StepStatus = "pending"
    attempt: int = 0
    max_attempts: int = 1
    started_ts: str | None = None
    finished_ts: str | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None  # why skipped / denied
    log_path: str | None = None
    log_size: int = 0
    log_sha256: str | None = None
    command: tuple[str, ...] | str | None = None
    decision: dict[str, Any] | None = None
    approvals_required: int = 0
    approvers: tuple[str, ...] = ()
    reason_required: bool = False
    gate_deadline: str | None = None
    approve_command: str | None = None
    # Whether whoever started the run may pass the gate themselves, and if not, why.
    initiator_may_approve: bool = True
    initiator_why_not: str | None = None
    approvals: list[ApprovalRecord] = field(default_factory=list)
    overridden_by: ApprovalRecord | None = None
    denied_by: str | None = None  # policy names or a person
    retry_in_s: float | None = None
    host: str | None = None  # an instance on a host: its name and its key's fingerprint
    host_key: str | None = None
    wave: tuple[int, int] | None = None  # a step on many hosts: its current wave, of all
    outputs: dict[str, str] = field(default_factory=dict)  # secret ones as "***"
    # A step run as instances: how many of them have each status ("succeeded": 8, ...).
    instance_counts: dict[str, int] | None = None
    matrix: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def held_wave(wave: Sequence[int] | None) -> tuple[int, int] | None:
    """The wave a step on many hosts waits at its gate to start (number, of all), from its
    last started `wave` (StepState.wave, or its JSON): the one after it. None before its
    first wave, once every wave has started, or for a step on one host."""
    if wave is None or len(wave) != 2:
        return None
    started, total = wave
    return (started + 1, total) if started < total else None


@dataclass
class RunState:
    run_id: str | None = None
    workflow: str | None = None
    workflow_path: str | None = None
    file_hashes: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    uid: int | None = None
    host: str | None = None
    pid: int | None = None
    run_dir: str | None = None
    control_socket: str | None = None
    resumed_from: str | None = None
    started_ts: str | None = None
    finished_ts: str | None = None
    status: RunStatus = "pending"
    interrupted_by: str | None = None
    cancelled_by: str | None = None  # who cancelled the whole run
    audit_error: str | None = None  # the audit file failed: the run stopped, fail closed
    steps: dict[str, StepState] = field(default_factory=dict)
    # Steps run once per host: step id -> instance key -> the instance (`deploy[web-03]`).
    instances: dict[str, dict[str, StepState]] = field(default_factory=dict)
    last_seq: int = 0

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> RunState:
        state = cls()
        for event in events:
            state.apply(event)
        return state

    def step(self, step_id: str) -> StepState:
        """A step, or an instance of one (`deploy[web-03]`)."""
        found = self.steps.get(step_id)
        if found is None:
            parts = split_instance(step_id)
            if parts is not None:
                group = self.instances.setdefault(parts[0], {})
                found = group.get(parts[1])
                if found is None:
                    found = group[parts[1]] = StepState(id=step_id)
                return found
            found = self.steps[step_id] = StepState(id=step_id)
        return found

    def instance_counts(self, step_id: str) -> dict[str, int]:
        """Status -> how many of a step's instances have it."""
        out: dict[str, int] = {}
        for instance in self.instances.get(step_id, {}).values():
            out[instance.status] = out.get(instance.status, 0) + 1
        return out

    @property
    def live(self) -> bool:
        return self.status == "running"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for step in self.steps.values():
            out[step.status] = out.get(step.status, 0) + 1
        return out

    @property
    def progress(self) -> tuple[int, int]:
        done = sum(1 for s in self.steps.values() if s.finished)
        return done, len(self.steps)

    def apply(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is None:
            return
        unit = event.step
        parts = split_instance(unit) if unit else None
        if parts is None or unit is None:
            handler(self, event)
            return
        before = self.step(unit).status
        handler(self, event)
        after = self.step(unit).status
        if before != after:
            counts = self.step(parts[0]).instance_counts
            if counts is not None:
                counts[before] = counts.get(before, 0) - 1
                counts[after] = counts.get(after, 0) + 1


def _run_started(state: RunState, e: RunStarted) -> None:
    state.run_id = e.run
    state.workflow = e.workflow
    state.workflow_path = e.workflow_path
    state.file_hashes = dict(e.file_hashes)
    state.params = dict(e.params)
    state.user, state.uid, state.host, state.pid = e.user, e.uid, e.host, e.pid
    state.run_dir = e.run_dir
    state.control_socket = e.control_socket
    state.resumed_from = e.resumed_from
    state.started_ts = e.ts
    state.status = "running"
    state.steps = {sid: StepState(id=sid) for sid in e.steps}
    state.instances = {
        sid: {key: StepState(id=instance_id(sid, key)) for key in keys}
        for sid, keys in (e.instances or {}).items()
    }
    for sid, keys in (e.instances or {}).items():
        state.step(sid).instance_counts = {"pending": len(keys)}


def _run_finished(state: RunState, e: RunFinished) -> None:
    state.finished_ts = e.ts
    state.status = e.outcome


def _run_interrupted(state: RunState, e: RunInterrupted) -> None:
    state.status = "interrupted"
    state.interrupted_by = e.signal


def _cancel_requested(state: RunState, e: CancelRequested) -> None:
    if e.target == "run":
        state.cancelled_by = e.actor.user if e.actor is not None else "someone"


def _audit_failed(state: RunState, e: AuditFailed) -> None:
    state.audit_error = f"{e.path}: {e.error}"


def _step_cancelled(state: RunState, e: StepCancelled) -> None:
    assert e.step is not None
    step = state.step(e.step)
    step.status = "cancelled"
    step.reason = e.reason
    step.finished_ts = e.ts
    step.gate_deadline = None


def _step_ready(state: RunState, e: StepReady) -> None:
    assert e.step is not None
    step = state.step(e.step)
    step.status = "ready"


def _step_reused(state: RunState, e: StepReused) -> None:
    assert e.step is not None
    step = state.step(e.step)
    step.status = "reused"
    step.reason = f"succeeded in run {e.from_run}"
    step.outputs = dict(e.outputs or {})


def _step_skipped(state: RunState, e: StepSkipped) -> None:
    assert e.step is not None
    step = state.step(e.step)
    step.status = "skipped"
    step.reason = e.reason
    step.finished_ts = e.ts


def _step_started(state: RunState, e: StepStarted) -> None:
    assert e.step is not None
    step = state.step(e.step)
    step.status = "running"
    step.attempt = e.attempt
    step.max_attempts = e.max_attempts
    step.command = e.command
    step.log_path = e.log_path
    step.log_size = 0
    step.started_ts = e.ts
    step.finished_ts = None
    step.duration_s = None
    step.exit_code = None
    step.error = None
    step.retry_in_s = None
    step.host = e.host
    step.host_key = e.host_key
    step.matrix = dict(e.matrix or {})


def _wave_started(state: RunState, e: WaveStarted) -> None:
    assert e.step is not None
    step = state.step(e.step)
    step.status = "running"
    step.wave = (e.wave, e.waves)
    if step.started_ts is None:
        step.started_ts = e.ts


def _group_finished(state: RunState, e: GroupFinished) -> None:
    assert e.step is not None
    step = state.step(e.step)
    step.status = e.outcome
    step.reason = e.summary
    step.finished_ts = e.ts
    step.gate_deadline = None


def _step_output(state: RunState, e: StepOutput) -> None:
    assert e.step is not None
    state.step(e.step).log_size = e.log_size


def _step_finished(state: RunState, e: StepFinished) -> None:
    assert e.step is not None
    step = state.step(e.step)
    step.attempt = e.attempt
    step.exit_code = e.exit_code
    step.error = e.error
    step.duration_s = e.duration_s
    step.log_path = e.log_path
    step.log_size = e.log_size
    step.log_sha256 = e.log_sha256
    step.finished_ts = e.ts
    step.outputs = dict(e.outputs or {})
    if e.retry_in_s is not None:
        step.status = "retrying"
        step.retry_in_s = e.retry_in_s
    else:
        step.status = e.outcome


def _step_denied(state: RunState, e: StepDenied) -> None:
    assert e.step is not None
    step = state.step(e.step)
    step.status = "denied"
    step.reason = e.reason
    step.denied_by = ", ".join(e.policies) if e.policies else (e.actor.user if e.actor else None)
    step.finished_ts = e.ts


def _gate_evaluated(state: RunState, e: GateEvaluated) -> None:
    assert e.step is not None
    state.step(e.step).decision = dict(e.decision)


def _gate_opened(state: RunState, e: GateOpened) -> None:
    assert e.step is not None
    step = state.step(e.step)
    step.status = "awaiting_approval"
    step.approvals_required = e.approvals_required
    step.approvers = tuple(e.approvers)
    step.reason_required = e.reason_required
    step.gate_deadline = e.deadline
    step.approve_command = e.approve_command
    step.initiator_may_approve = e.initiator_may_approve
    step.initiator_why_not = e.initiator_why_not
    step.approvals = []


def _approval_given(state: RunState, e: ApprovalGiven) -> None:
    assert e.step is not None and e.actor is not None
    state.step(e.step).approvals.append(
        ApprovalRecord(e.actor.user, e.actor.uid, e.actor.via, e.ts, e.reason)
    )


def _override_given(state: RunState, e: OverrideGiven) -> None:
    assert e.step is not None and e.actor is not None
    state.step(e.step).overridden_by = ApprovalRecord(
        e.actor.user, e.actor.uid, e.actor.via, e.ts, e.reason
    )


def _gate_closed(state: RunState, e: GateClosed) -> None:
    assert e.step is not None
    step = state.step(e.step)
    if step.status == "awaiting_approval" and e.outcome in ("approved", "overridden"):
        step.status = "ready"
    step.gate_deadline = None


def _retry_requested(state: RunState, e: RetryRequested) -> None:
    if state.status != "running":
        state.status = "running"
        state.finished_ts = None
    for sid in e.steps:
        step = state.step(sid)
        step.status = "pending"
        step.reason = None
        step.exit_code = None
        step.error = None


_HANDLERS: dict[type[Event], Any] = {
    RunStarted: _run_started,
    RunFinished: _run_finished,
    RunInterrupted: _run_interrupted,
    CancelRequested: _cancel_requested,
    AuditFailed: _audit_failed,
    StepCancelled: _step_cancelled,
    StepReady: _step_ready,
    StepReused: _step_reused,
    StepSkipped: _step_skipped,
    StepStarted: _step_started,
    StepOutput: _step_output,
    StepFinished: _step_finished,
    WaveStarted: _wave_started,
    GroupFinished: _group_finished,
    StepDenied: _step_denied,
    GateEvaluated: _gate_evaluated,
    GateOpened: _gate_opened,
    ApprovalGiven: _approval_given,
    OverrideGiven: _override_given,
    GateClosed: _gate_closed,
    RetryRequested: _retry_requested,
}


def status_phrase(status: str) -> str:
    """How a need's status reads in a skip reason: "failed", "was denied"."""
    return {
        "failed": "failed",
        "error": "failed with an error",
        "denied": "was denied",
        "skipped": "was skipped",
        "cancelled": "was cancelled",
    }.get(status, f"is {status}")
