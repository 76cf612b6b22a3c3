"""The scheduler: ready set, concurrency limit, `if`, retries, policy gates and approvals.

The engine publishes events and never prints; people act on it through the RunActions
methods (the UI and the control socket call them with an OS-vouched uid). It is
single-threaded on the asyncio loop: every state change happens in `_emit`, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from console import __version__, paths
from console.audit.log import AuditLog
from console.events import (
    Actor,
    AuditFailed,
    CancelRequested,
    CleanupsSkipped,
    Event,
    EventSink,
    GateEvaluated,
    RetryRequested,
    RunFinished,
    RunInterrupted,
    RunOutcome,
    RunStarted,
    StepCancelled,
    StepDenied,
    StepFinished,
    StepReady,
    StepReused,
    StepSkipped,
    StepStarted,
)
from console.policy.identity import Identity, identity_for_uid
from console.policy.rules import EvalContext, PolicySet
from console.policy.verdict import Verdict
from console.run.audit_sink import AuditSink
from console.run.executor import ExecResult, LocalExecutor, StepCommand
from console.run.fanout import AuditBreak, SinkFanout
from console.run.gates import GateAction, Gates, decision_policies
from console.run.ids import new_run_id
from console.run.outcome import run_outcome
from console.run.prepare import StepPreparer
from console.run.state import SUCCESSFUL, RunState
from console.workflow.graph import dependents, topological_order
from console.workflow.loaded import LoadedWorkflow

FAILED = frozenset({"failed", "error"})
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class Executor(Protocol):
    async def run(
        self, cmd: StepCommand, on_started: Callable[[int], None] | None = None
    ) -> ExecResult: ...

    def cancel(self, step_id: str) -> None: ...

    async def shutdown(self) -> None: ...


@dataclass(frozen=True)
class EngineSettings:
    audit_path: Path = field(default_factory=paths.default_audit_path)
    runs_dir: Path = field(default_factory=paths.runs_dir)
    runtime_dir: Path = field(default_factory=paths.runtime_dir)
    grace_s: float = 10.0
    fsync_always: bool = False
    resume_from: str | None = None
    control_socket: bool = True
    via: str = "cli"


class Engine:
    def __init__(
        self,
        loaded: LoadedWorkflow,
        params: Mapping[str, str | int | bool],
        sinks: Sequence[EventSink] = (),
        settings: EngineSettings | None = None,
        *,
        executor: Executor | None = None,
        clock: Callable[[], datetime] | None = None,
        initiator_uid: int | None = None,
    ) -> None:
        self.loaded = loaded
        self.params = dict(params)
        self.settings = settings or EngineSettings()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.run_id = new_run_id(self._clock())
        self.state = RunState()
        self._fanout = SinkFanout(self._audit_failed)
        for sink in sinks:
            self._fanout.add(sink)
        self._executor: Executor = executor or LocalExecutor(grace_s=self.settings.grace_s)
        self.initiator: Identity = identity_for_uid(
            os.getuid() if initiator_uid is None else initiator_uid
        )
        steps = loaded.steps
        self._rank = {sid: i for i, sid in enumerate(topological_order(steps))}
        self._dependents = dependents(steps)
        self._policy = PolicySet(loaded)
        self._gates = Gates(
            self.run_id,
            self.initiator.uid,
            loaded.file_hashes,
            self._clock,
            self._emit,
            on_passed=self._enqueue,
            on_denied=self._deny,
        )
        self._concurrency = loaded.model.workflow.concurrency or os.cpu_count() or 2
        self._queue: list[tuple[int, str]] = []
        self._running: set[str] = set()
        self._retry_timers: dict[str, asyncio.TimerHandle] = {}
        self._cancelled: set[str] = set()
        self._waiting_on: dict[str, int] = {}
        self._unfinished = 0
        self._attempts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Why the run is stopping ("cancelled by alice", "interrupted by SIGTERM"); once set,
        # only `if = "always"` steps still start, and only while cleanups are allowed.
        self._stopping: str | None = None
        self._cleanups_allowed = True
        self._cleanup_timer: asyncio.TimerHandle | None = None
        self._cleanup_deadline: float | None = None
        self._done = asyncio.Event()
        self._closed = False
        self._preparer: StepPreparer | None = None
        self._started_at = 0.0
        self._pending_interrupt: str | None = None  # a signal before run.started
        self.audit: AuditLog | None = None

    # --- sinks -----------------------------------------------------------------------

    def add_sink(self, sink: EventSink) -> None:
        self._fanout.add(sink)

    def now(self) -> datetime:
        return self._clock()

    @property
    def audit_break(self) -> AuditBreak | None:
        """Set when the audit file failed: which file, why, and what it does not hold."""
        return self._fanout.audit_break

    def _emit(self, event: Event) -> None:
        self.state.apply(event)
        self._fanout.publish(event)

    def _audit_failed(self, failure: AuditBreak) -> None:
        """Nothing more may happen that the trail cannot hold: stop, run no cleanups."""
        self._emit(AuditFailed(run=self.run_id, path=failure.path, error=failure.error))
        self._stop("stopped: the audit file failed", cleanups=False)

    def _actor(self, uid: int, via: str) -> tuple[Identity, Actor]:
        identity = identity_for_uid(uid)
        return identity, Actor(user=identity.user, uid=identity.uid, via=via)

    # --- the run ---------------------------------------------------------------------

    # --- the run's life, driven by its host (console/host/run_host.py) -----------------

    def prepare(self, run_dir: Path) -> None:
        """Resolve params, secrets and commands. Raises ConsoleError if the run cannot start."""
        self._preparer = StepPreparer(self.loaded, self.params, self.run_id, run_dir)

    @property
    def opened(self) -> bool:
        """True once `run.started` is recorded: the run must end with `run.finished`."""
        return self.audit is not None

    def open(self, audit: AuditLog, run_dir: Path, socket_path: Path | None) -> None:
        """From now on every event is audited; record `run.started`."""
        self.audit = audit
        self._fanout.set_audit(AuditSink(audit))
        self._started_at = time.monotonic()
        self._emit(self._run_started(run_dir, socket_path))
        if self._pending_interrupt is not None:
            self.interrupt(self._pending_interrupt)

    def emit(self, event: Event) -> None:
        """Record and publish an event of the host's own (the lock, say)."""
        self._emit(event)

    async def execute(self, reused: Mapping[str, str]) -> None:
        """Schedule every step to the end; `reused` steps (from --resume) do not run."""
        try:
            self._begin(reused)
            await self._done.wait()
        except asyncio.CancelledError:
            # Whoever drove the run went away (the UI closed): that is an interruption.
            if self.state.interrupted_by is None:
                self._emit(RunInterrupted(run=self.run_id, signal="exit"))
            self._stop("interrupted: the console closed", cleanups=False)
            raise

    @property
    def outcome(self) -> RunOutcome:
        return run_outcome(self.state)

    def _run_started(self, run_dir: Path, socket_path: Path | None) -> RunStarted:
        assert self._preparer is not None
        return RunStarted(
            run=self.run_id,
            workflow=self.loaded.name,
            workflow_path=str(self.loaded.path),
            file_hashes=dict(self.loaded.file_hashes),
            params=self._preparer.masked_params(),
            steps=tuple(self.loaded.steps),
            user=self.initiator.user,
            uid=self.initiator.uid,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            concurrency=self._concurrency,
            run_dir=str(run_dir),
            resumed_from=self.settings.resume_from,
            control_socket=str(socket_path) if socket_path else None,
            actor=Actor(self.initiator.user, self.initiator.uid, self.settings.via),
        )

    def _begin(self, reused: Mapping[str, str]) -> None:
        steps = self.loaded.steps
        in_order = sorted(steps, key=self._rank.__getitem__)
        self._unfinished = len(steps)
        self._waiting_on = {sid: len(step.needs) for sid, step in steps.items()}
        for sid in in_order:
            if sid in reused:
                self._emit(StepReused(run=self.run_id, step=sid, from_run=reused[sid]))
                self._step_finished(sid, propagate_only=True)
        # Collect first: making one root ready can cascade (a skip, a denial) into others.
        roots = [sid for sid in in_order if sid not in reused and self._waiting_on[sid] == 0]
        for sid in roots:
            self._make_ready(sid)

    async def stop_steps(self) -> None:
        """Start nothing more; stop what runs and wait for it; stop the timers."""
        self._closed = True
        for timer in self._retry_timers.values():
            timer.cancel()
        if self._cleanup_timer is not None:
            self._cleanup_timer.cancel()
        self._gates.stop_timers()
        if self._running or self._tasks:
            for sid in list(self._running):
                self._executor.cancel(sid)
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._executor.shutdown()

    def flush_refusals(self) -> None:
        """Record the refusals still being counted (the socket may have taken more)."""
        self._gates.stop_timers()

    def finish(self) -> None:
        """Skip what never ran and record `run.finished` with the outcome."""
        assert self.audit is not None
        for sid, st in self.state.steps.items():
            if not st.finished:
                reason = f"run {self._stopping or 'ended'} before it ran"
                self._emit(StepSkipped(run=self.run_id, step=sid, reason=reason))
        self._emit(
            RunFinished(
                run=self.run_id,
                outcome=self.outcome,
                counts=self.state.counts(),
                duration_s=round(time.monotonic() - self._started_at, 6),
            )
        )
        with contextlib.suppress(Exception):  # run.finished was fsynced when appended
            self.audit.close()

    # --- scheduling ------------------------------------------------------------------

    def _is_cleanup(self, sid: str) -> bool:
        return self.loaded.steps[sid].if_ == "always"

    def _goes_on(self, sid: str) -> bool:
        """May `sid` still start or go on running? Only cleanups do, once the run stops."""
        return self._stopping is None or (self._cleanups_allowed and self._is_cleanup(sid))

    def _make_ready(self, sid: str) -> None:
        """All of `sid`'s needs are finished: skip it, or gate it, or queue it."""
        if sid in self._cancelled:
            self._emit(StepCancelled(run=self.run_id, step=sid, reason="cancelled before it ran"))
            self._step_finished(sid)
            return
        if not self._goes_on(sid):
            self._skip(sid, self._not_started_reason())
            return
        blocked = self._condition_unmet(sid)
        if blocked is not None:
            self._skip(sid, blocked)
            return
        self._emit(StepReady(run=self.run_id, step=sid))
        decision = self._policy.decide(sid, self._context())
        if decision.rules:
            self._emit(GateEvaluated(run=self.run_id, step=sid, decision=decision.to_json()))
        if decision.effect == "allow":
            self._enqueue(sid)
        elif decision.effect == "deny" and decision.level != "soft":
            self._deny(sid, decision.summary, decision_policies(decision), actor=None)
        else:
            self._gates.open(sid, decision)

    def _condition_unmet(self, sid: str) -> str | None:
        step = self.loaded.steps[sid]
        needs = [(n, self.state.steps[n].status) for n in step.needs]
        if step.if_ == "always":
            return None
        if step.if_ == "success":
            for need, status in needs:
                if status not in SUCCESSFUL:
                    return f"needs {need}, which {_status_phrase(status)}"
            return None
        if any(status in FAILED for _, status in needs):
            return None
        return 'if = "failure" and no need failed'

    def _context(self) -> EvalContext:
        return EvalContext(
            params=self.params,
            run_id=self.run_id,
            initiator=self.initiator,
            now=self._clock(),
            workflow=self.loaded.name,
        )

    def _enqueue(self, sid: str) -> None:
        heapq.heappush(self._queue, (self._rank[sid], sid))
        self._pump()

    def _pump(self) -> None:
        while self._queue and len(self._running) < self._concurrency and not self._closed:
            _, sid = heapq.heappop(self._queue)
            self._running.add(sid)
            task = asyncio.get_running_loop().create_task(self._execute(sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _execute(self, sid: str) -> None:
        assert self._preparer is not None
        attempt = self._attempts.get(sid, 0) + 1
        self._attempts[sid] = attempt
        step = self.loaded.steps[sid]
        cmd = self._preparer.command(sid, attempt)
        started = False

        def on_started(pid: int) -> None:
            nonlocal started
            started = True
            self._emit(self._step_started(sid, attempt, cmd, pid))

        if self._is_cleanup(sid):
            cmd = dataclasses.replace(cmd, timeout_s=self._cleanup_bound(step.timeout))
        try:
            result = await self._executor.run(cmd, on_started=on_started)
        except Exception as exc:  # the executor's own bug must not hang the run
            result = ExecResult(
                outcome="error", exit_code=None, error=f"executor failed: {exc!r}", pid=None,
                duration_s=0.0, log_path=cmd.log_path, log_size=0, log_sha256=EMPTY_SHA256,
            )
        finally:
            self._running.discard(sid)
        if not started:
            self._emit(self._step_started(sid, attempt, cmd, 0))
        retry = (
            result.outcome in FAILED
            and attempt < step.retry.attempts
            and self._goes_on(sid)
            and sid not in self._cancelled
            and not self._closed
        )
        delay = step.retry.delay_before(attempt + 1) if retry else None
        self._emit(
            StepFinished(
                run=self.run_id,
                step=sid,
                attempt=attempt,
                outcome=result.outcome,
                exit_code=result.exit_code,
                error=result.error,
                duration_s=round(result.duration_s, 6),
                log_path=str(result.log_path),
                log_size=result.log_size,
                log_sha256=result.log_sha256,
                retry_in_s=delay,
            )
        )
        if delay is not None:
            loop = asyncio.get_running_loop()
            self._retry_timers[sid] = loop.call_later(delay, self._retry_due, sid)
        else:
            self._step_finished(sid)
        self._pump()

    def _step_started(self, sid: str, attempt: int, cmd: StepCommand, pid: int) -> StepStarted:
        assert self._preparer is not None
        return StepStarted(
            run=self.run_id,
            step=sid,
            attempt=attempt,
            max_attempts=self.loaded.steps[sid].retry.attempts,
            command=self._preparer.display_command(sid),
            log_path=str(cmd.log_path),
            pid=pid,
        )

    def _retry_due(self, sid: str) -> None:
        self._retry_timers.pop(sid, None)
        if sid in self._cancelled:
            self._cancel_unstarted(sid, "cancelled before its next attempt")
            return
        if not self._goes_on(sid):
            self._skip(sid, self._not_started_reason())
            return
        self._enqueue(sid)

    def _cancel_unstarted(self, sid: str, reason: str) -> None:
        self._emit(StepCancelled(run=self.run_id, step=sid, reason=reason))
        self._step_finished(sid)

    def _skip(self, sid: str, reason: str) -> None:
        self._emit(StepSkipped(run=self.run_id, step=sid, reason=reason))
        self._step_finished(sid)

    def _step_finished(self, sid: str, propagate_only: bool = False) -> None:
        self._unfinished -= 1
        for dependent in self._dependents.get(sid, ()):
            self._waiting_on[dependent] -= 1
            if self._waiting_on[dependent] == 0 and not propagate_only:
                self._make_ready(dependent)
        if self._unfinished == 0:
            self._done.set()

    # --- gates -----------------------------------------------------------------------

    def _deny(self, sid: str, reason: str, policies: tuple[str, ...], actor: Actor | None) -> None:
        self._emit(
            StepDenied(run=self.run_id, step=sid, reason=reason, policies=policies, actor=actor)
        )
        self._step_finished(sid)

    def _at_gate(
        self, step: str, uid: int, via: str, action: GateAction, reason: str | None
    ) -> Verdict:
        if step not in self._gates:
            if step not in self.loaded.steps:
                return Verdict(False, f"run {self.run_id} has no step {step!r}")
            status = self.state.steps[step].status.replace("_", " ")
            return Verdict(False, f"step {step!r} is not waiting at a gate (it is {status})")
        identity, actor = self._actor(uid, via)
        return self._gates.act(step, identity, actor, action, reason)

    def approve(self, step: str, uid: int, via: str, reason: str | None) -> Verdict:
        return self._at_gate(step, uid, via, "approve", reason)

    def deny(self, step: str, uid: int, via: str, reason: str) -> Verdict:
        return self._at_gate(step, uid, via, "deny", reason)

    def override(self, step: str, uid: int, via: str, reason: str) -> Verdict:
        return self._at_gate(step, uid, via, "override", reason)

    # --- cancellation, retry, interruption ----------------------------------------------

    def _may_steer(self, uid: int) -> bool:
        return uid in (self.initiator.uid, 0)

    def cancel_step(self, step: str, uid: int, via: str) -> Verdict:
        if step not in self.loaded.steps:
            return Verdict(False, f"run {self.run_id} has no step {step!r}")
        _, actor = self._actor(uid, via)
        if not self._may_steer(uid):
            return self._gates.refused(
                step,
                actor,
                "cancel",
                Verdict(
                    False,
                    f"only {self.initiator.user}, who started run {self.run_id}, "
                    "can cancel its steps",
                ),
            )
        status = self.state.steps[step].status
        if self.state.steps[step].finished:
            return Verdict(False, f"step {step!r} has already finished ({status})")
        self._cancelled.add(step)
        self._emit(CancelRequested(run=self.run_id, step=step, actor=actor, target="step"))
        why = f"cancelled by {actor.user}"
        if step in self._running:
            self._executor.cancel(step)
        elif step in self._gates:
            self._gates.close(step, "cancelled", why)
            self._cancel_unstarted(step, why)
        elif step in self._retry_timers:
            self._retry_timers.pop(step).cancel()
            self._cancel_unstarted(step, why)
        elif any(sid == step for _, sid in self._queue):
            self._queue = [(r, s) for r, s in self._queue if s != step]
            heapq.heapify(self._queue)
            self._cancel_unstarted(step, why)
        return Verdict(True, f"cancelling {step}")

    def cancel_run(self, uid: int, via: str) -> Verdict:
        _, actor = self._actor(uid, via)
        if not self._may_steer(uid):
            return self._gates.refused(
                "",
                actor,
                "cancel",
                Verdict(
                    False,
                    f"only {self.initiator.user}, who started run {self.run_id}, can cancel it",
                ),
            )
        if self._closed or self._done.is_set():
            return Verdict(False, f"run {self.run_id} has already finished")
        if self._stopping is not None:
            return Verdict(False, f"run {self.run_id} is already stopping ({self._stopping})")
        self._emit(CancelRequested(run=self.run_id, actor=actor, target="run"))
        self._stop(f"cancelled by {actor.user}")
        return Verdict(True, f"cancelling run {self.run_id}")

    def interrupt(self, signal_name: str) -> None:
        """A signal (SIGTERM, SIGHUP, SIGINT) stops the run: running steps are stopped,
        nothing new starts but the `if = "always"` cleanups. A signal while the run is
        already stopping abandons the cleanups too."""
        if self._closed:
            return
        if not self.opened:
            self._pending_interrupt = signal_name  # recorded once run.started is
            return
        first = self._stopping is None
        if self.state.interrupted_by is None:
            self._emit(RunInterrupted(run=self.run_id, signal=signal_name))
        if first:
            self._stop(f"interrupted by {signal_name}")
        elif self._cleanups_allowed:
            pending = tuple(
                sid for sid, st in self.state.steps.items()
                if self._is_cleanup(sid) and not st.finished
            )
            self._emit(CleanupsSkipped(run=self.run_id, signal=signal_name, steps=pending))
            self._stop(f"interrupted again by {signal_name}", cleanups=False)

    def settle_within_s(self) -> float:
        """How long the run may still take after a stop: the cleanups' budget (if they may
        still run), then the grace for stopping processes."""
        budget = self.settings.grace_s + 5.0
        cleanups_left = any(
            self._is_cleanup(sid) and not st.finished for sid, st in self.state.steps.items()
        )
        if self._cleanups_allowed and self._cleanup_deadline is not None and cleanups_left:
            budget += max(0.0, self._cleanup_deadline - time.monotonic())
        return budget

    def _not_started_reason(self) -> str:
        if self._stopping is not None and not self._cleanups_allowed and self._cleanup_expired:
            return f"cleanup_timeout ran out (run {self._stopping})"
        return f"run {self._stopping}"

    @property
    def _cleanup_expired(self) -> bool:
        return self._cleanup_deadline is not None and time.monotonic() >= self._cleanup_deadline

    def _cleanup_bound(self, own_timeout: float | None) -> float:
        """An `if = "always"` attempt runs at most cleanup_timeout, and after a stop no
        longer than what is left of the cleanup budget."""
        bound = self.loaded.model.workflow.cleanup_timeout
        if self._cleanup_deadline is not None:
            bound = min(bound, max(0.0, self._cleanup_deadline - time.monotonic()))
        return bound if own_timeout is None else min(bound, own_timeout)

    def _stop(self, why: str, *, cleanups: bool = True) -> None:
        """Start nothing new but cleanups (if `cleanups`), stop what runs, skip the rest.

        Called again while stopping, it can only tighten: `cleanups=False` abandons them.
        """
        if self._stopping is None:
            self._stopping = why
            budget = self.loaded.model.workflow.cleanup_timeout
            self._cleanup_deadline = time.monotonic() + budget
            loop = asyncio.get_running_loop()
            self._cleanup_timer = loop.call_later(budget, self._cleanups_out_of_time)
        if not cleanups:
            self._cleanups_allowed = False
        reason = f"run {self._stopping}"
        for sid in self._gates:
            if not self._goes_on(sid):
                self._gates.close(sid, "cancelled", reason)
                self._skip(sid, f"{reason} while waiting for approval")
        for sid, timer in list(self._retry_timers.items()):
            if not self._goes_on(sid):
                timer.cancel()
                del self._retry_timers[sid]
                self._skip(sid, f"{reason} before its next attempt")
        queued, self._queue = self._queue, []
        for rank, sid in sorted(queued):
            if self._goes_on(sid):
                heapq.heappush(self._queue, (rank, sid))
            else:
                self._skip(sid, f"{reason} before it started")
        for sid in list(self._running):
            if not self._goes_on(sid):
                self._executor.cancel(sid)
        self._pump()

    def _cleanups_out_of_time(self) -> None:
        self._cleanup_timer = None
        if self._cleanups_allowed and not self._closed:
            self._stop(self._stopping or "stopping", cleanups=False)

    def retry_step(self, step: str, uid: int, via: str) -> Verdict:
        if step not in self.loaded.steps:
            return Verdict(False, f"run {self.run_id} has no step {step!r}")
        if not self._may_steer(uid):
            return Verdict(
                False,
                f"only {self.initiator.user}, who started run {self.run_id}, can retry its steps",
            )
        if self._closed or self._done.is_set():
            return Verdict(
                False,
                f"run {self.run_id} has finished; start a new run with --resume {self.run_id}",
            )
        status = self.state.steps[step].status
        if status not in FAILED and status != "cancelled":
            return Verdict(False, f"step {step!r} is {status}; only a failed step can be retried")
        reset = [
            step,
            *sorted((d for d in self._skipped_descendants(step)), key=self._rank.__getitem__),
        ]
        _, actor = self._actor(uid, via)
        self._emit(RetryRequested(run=self.run_id, step=step, actor=actor, steps=tuple(reset)))
        self._cancelled.difference_update(reset)
        self._attempts[step] = 0
        self._unfinished += len(reset)
        for sid in reset:
            self._waiting_on[sid] = sum(
                1 for need in self.loaded.steps[sid].needs if not self.state.steps[need].finished
            )
        for sid in reset:
            for dependent in self._dependents.get(sid, ()):
                if dependent not in reset and not self.state.steps[dependent].finished:
                    self._waiting_on[dependent] += 1
        self._make_ready(step)
        return Verdict(True, f"retrying {step} and {len(reset) - 1} skipped dependent(s)")

    def _skipped_descendants(self, step: str) -> set[str]:
        found: set[str] = set()
        stack = list(self._dependents.get(step, ()))
        while stack:
            sid = stack.pop()
            if sid in found or self.state.steps[sid].status != "skipped":
                continue
            found.add(sid)
            stack.extend(self._dependents.get(sid, ()))
        return found

    # --- status for the control socket ---------------------------------------------------

    def status(self) -> dict[str, Any]:
        done, total = self.state.progress
        return {
            "run": self.run_id,
            "workflow": self.loaded.name,
            "status": self.state.status,
            "user": self.initiator.user,
            "pid": os.getpid(),
            "progress": [done, total],
            "steps": {sid: st.status for sid, st in self.state.steps.items()},
            "gates": self._gates.summaries(),
        }


def _status_phrase(status: str) -> str:
    return {
        "failed": "failed",
        "error": "failed with an error",
        "denied": "was denied",
        "skipped": "was skipped",
        "cancelled": "was cancelled",
    }.get(status, f"is {status}")
