"""The scheduler: ready set, concurrency limit, `if`, retries, stops and cleanups.

Every state change happens in `_emit`, in order, single-threaded on the asyncio loop; the
events go to the sinks (the audit first, through the fan-out). The Engine (engine.py) adds
the run's life around it and what people do to a run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from console.audit.log import AuditLog
from console.errors import ParamError
from console.events import (
    Actor,
    AuditFailed,
    Event,
    EventSink,
    GateEvaluated,
    StepCancelled,
    StepDenied,
    StepFinished,
    StepReady,
    StepSkipped,
    StepStarted,
)
from console.exec.base import EMPTY_SHA256, ExecResult, Executor, Started, StepCommand
from console.exec.local import LocalExecutor
from console.exec.routing import RoutingExecutor
from console.policy.decision import Decision
from console.policy.identity import Identity, identity_for_uid
from console.policy.rules import EvalContext, PolicySet
from console.run.fanout import AuditBreak, SinkFanout
from console.run.gates import Gates, decision_policies
from console.run.group import GroupCalls, GroupRun
from console.run.ids import new_run_id
from console.run.outputs import OutputStore, collect_outputs
from console.run.prepare import StepPreparer
from console.run.settings import EngineSettings
from console.run.state import SUCCESSFUL, RunState, status_phrase
from console.workflow.fleet import split_instance
from console.workflow.graph import dependents, topological_order
from console.workflow.loaded import LoadedWorkflow
from console.workflow.matrix import matrix_values
from console.workflow.spec import Step

FAILED = frozenset({"failed", "error"})


class Scheduler:
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
        run_id: str | None = None,
    ) -> None:
        self.loaded = loaded
        self.params = dict(params)
        self.settings = settings or EngineSettings()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.run_id = run_id or new_run_id(self._clock())
        self.state = RunState()
        self._fanout = SinkFanout(self._audit_failed)
        for sink in sinks:
            self._fanout.add(sink)
        self._executor: Executor = executor or RoutingExecutor(
            LocalExecutor(grace_s=self.settings.grace_s), grace_s=self.settings.grace_s
        )
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
        # Steps run on many hosts: their GroupRuns, and the instances running now (they
        # run on other machines, so the workflow's concurrency does not count them).
        self._groups: dict[str, GroupRun] = {}
        self._instances_running: set[str] = set()
        self._reused_units: dict[str, str] = {}  # --resume: instances that succeeded
        self._group_keys = loaded.groups
        self._outputs = OutputStore()
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

    def _step_of(self, unit: str) -> str:
        parts = split_instance(unit)
        return parts[0] if parts else unit

    def _is_cleanup(self, sid: str) -> bool:
        return self.loaded.steps[self._step_of(sid)].if_ == "always"

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
        decision = self._policy.settled(sid)  # most steps: no context to build
        if decision is None:
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
                    return f"needs {need}, which {status_phrase(status)}"
            return None
        if any(status in FAILED for _, status in needs):
            return None
        return 'if = "failure" and no need failed'

    def _context(self) -> EvalContext:
        return EvalContext(
            steps=self._outputs.for_conditions(),
            params=self.params,
            run_id=self.run_id,
            initiator=self.initiator,
            now=self._clock(),
            workflow=self.loaded.name,
        )

    def _enqueue(self, sid: str) -> None:
        group = self._groups.get(sid)
        if group is not None:  # the gate before one of its waves passed
            group.gate_passed()
            return
        heapq.heappush(self._queue, (self._rank[sid], sid))
        self._pump()

    def _pump(self) -> None:
        while self._queue and not self._closed:
            if self._queue[0][1] in self._group_keys:
                self._start_group(heapq.heappop(self._queue)[1])
                continue
            if len(self._running) >= self._concurrency:
                break
            _, sid = heapq.heappop(self._queue)
            self._running.add(sid)
            self._spawn(sid)

    def _spawn(self, unit: str) -> None:
        task = asyncio.get_running_loop().create_task(self._execute(unit))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._fanout.commit_after_queued()

    def _start_group(self, sid: str) -> None:
        calls = GroupCalls(
            emit=self._emit,
            start_instance=self._start_instance,
            cancel_instance=self._cancel_instance,
            open_gate=self._gates.open,
            close_gate=lambda step, why: self._gates.close(step, "cancelled", why),
            step_decision=self._decide,
            on_done=self._group_done,
        )
        group = GroupRun(self.run_id, sid, self._group_keys[sid], self.loaded.strategy(sid),
                         self._reused_instances(sid), calls, str(self.loaded.path),
                         "combinations" if sid in self.loaded.matrices else "hosts")
        self._groups[sid] = group
        group.start()

    def _reused_instances(self, sid: str) -> dict[str, str]:
        return {parts[1]: origin for unit, origin in self._reused_units.items()
                if (parts := split_instance(unit)) is not None and parts[0] == sid}

    def _decide(self, sid: str) -> Decision:
        return self._policy.decide(sid, self._context())

    def _start_instance(self, unit: str) -> None:
        if self._step_of(unit) in self.loaded.matrices:  # runs here: within concurrency
            heapq.heappush(self._queue, (self._rank[self._step_of(unit)], unit))
            self._pump()
            return
        self._instances_running.add(unit)
        self._spawn(unit)

    def _cancel_instance(self, unit: str) -> None:
        if unit in self._instances_running or unit in self._running:
            self._executor.cancel(unit)
        elif any(queued == unit for _, queued in self._queue):
            self._queue = [(r, u) for r, u in self._queue if u != unit]
            heapq.heapify(self._queue)
            self._cancel_unstarted(unit, "cancelled before it started")
        elif unit in self._retry_timers:
            self._retry_timers.pop(unit).cancel()
            self._cancel_unstarted(unit, "cancelled before its next attempt")

    def _group_done(self, sid: str) -> None:
        self._step_finished(sid)
        self._pump()

    def _unit_done(self, unit: str) -> None:
        """A step, or one host's instance of it, is done for good."""
        parts = split_instance(unit)
        if parts is None:
            self._step_finished(unit)
            return
        self._groups[parts[0]].instance_finished(unit, self.state.step(unit).status)

    def _may_retry(self, unit: str) -> bool:
        parts = split_instance(unit)
        return parts is None or self._groups[parts[0]].may_retry()

    async def _execute(self, sid: str) -> None:
        assert self._preparer is not None
        attempt = self._attempts.get(sid, 0) + 1
        self._attempts[sid] = attempt
        step = self.loaded.steps[self._step_of(sid)]
        started = False
        try:
            cmd = self._preparer.command(sid, attempt, self._outputs.for_templates())
        except ParamError as exc:  # an output it reads was never written (a failed need)
            self._running.discard(sid)
            self._emit(self._step_started(sid, attempt, None, Started()))
            self._finish_attempt(sid, attempt, step, ExecResult(
                outcome="error", exit_code=None, error=str(exc), pid=None, duration_s=0.0,
                log_path=self._preparer.log_path(sid, attempt), log_size=0,
                log_sha256=EMPTY_SHA256))
            return

        def on_started(where: Started) -> None:
            nonlocal started
            started = True
            self._emit(self._step_started(sid, attempt, cmd, where))

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
            self._instances_running.discard(sid)
        if not started:
            self._emit(self._step_started(sid, attempt, cmd, Started()))
        self._finish_attempt(sid, attempt, step, result)

    def _finish_attempt(self, sid: str, attempt: int, step: Step, result: ExecResult) -> None:
        assert self._preparer is not None
        result, shown, hashes = collect_outputs(
            self._outputs, self._preparer, sid, attempt, step, result
        )
        retry = (
            result.outcome in FAILED
            and attempt < step.retry.attempts
            and self._goes_on(sid)
            and sid not in self._cancelled
            and not self._closed
            and self._may_retry(sid)
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
                outputs=shown,
                output_hashes=hashes or None,
            )
        )
        if delay is not None:
            loop = asyncio.get_running_loop()
            self._retry_timers[sid] = loop.call_later(delay, self._retry_due, sid)
        else:
            self._unit_done(sid)
        self._pump()

    def _step_started(
        self, sid: str, attempt: int, cmd: StepCommand | None, where: Started
    ) -> StepStarted:
        assert self._preparer is not None
        return StepStarted(
            run=self.run_id,
            step=sid,
            attempt=attempt,
            max_attempts=self.loaded.steps[self._step_of(sid)].retry.attempts,
            command=self._preparer.display_command(sid, self._outputs.for_templates()),
            log_path=str(cmd.log_path if cmd else self._preparer.log_path(sid, attempt)),
            pid=where.pid or 0,
            host=where.host,
            host_key=where.host_key,
            matrix=matrix_values(self.loaded.matrices, sid),
        )

    def _retry_due(self, sid: str) -> None:
        self._retry_timers.pop(sid, None)
        if sid in self._cancelled:
            self._cancel_unstarted(sid, "cancelled before its next attempt")
            return
        if not self._goes_on(sid) or not self._may_retry(sid):
            self._skip(sid, self._not_started_reason())
            return
        if split_instance(sid) is not None:
            self._start_instance(sid)
            return
        self._enqueue(sid)

    def _cancel_unstarted(self, sid: str, reason: str) -> None:
        self._emit(StepCancelled(run=self.run_id, step=sid, reason=reason))
        self._unit_done(sid)

    def _skip(self, sid: str, reason: str) -> None:
        self._emit(StepSkipped(run=self.run_id, step=sid, reason=reason))
        self._unit_done(sid)

    def _step_finished(self, sid: str, propagate_only: bool = False) -> None:
        self._unfinished -= 1
        for dependent in self._dependents.get(sid, ()):
            self._waiting_on[dependent] -= 1
            if self._waiting_on[dependent] == 0 and not propagate_only:
                self._make_ready(dependent)
        if self._unfinished == 0:
            self._done.set()

    def _deny(self, sid: str, reason: str, policies: tuple[str, ...], actor: Actor | None) -> None:
        group = self._groups.get(sid)
        if group is not None:  # the gate before one of its waves was denied
            group.gate_denied(reason, policies, actor)
            return
        self._emit(
            StepDenied(run=self.run_id, step=sid, reason=reason, policies=policies, actor=actor)
        )
        self._step_finished(sid)

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
            if sid in self._groups:
                continue  # a gate between waves: the group closes it as it stops
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
        for sid, group in list(self._groups.items()):
            if not group.finished and not self._goes_on(sid):
                group.stop(reason)
        self._pump()

    def _cleanups_out_of_time(self) -> None:
        self._cleanup_timer = None
        if self._cleanups_allowed and not self._closed:
            self._stop(self._stopping or "stopping", cleanups=False)

