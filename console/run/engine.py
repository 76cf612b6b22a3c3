"""The engine: a run's scheduling (scheduler.py) with its life and the people acting on it.

The host (console/host/run_host.py) drives its life: prepare, open (run.started), execute,
stop the steps, finish (run.finished). People act through the RunActions methods (the UI
and the control socket call them with an OS-vouched uid): approve, deny, override at a
gate; cancel a step or the run; retry a failed step; a signal interrupts. The engine
publishes events and never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from console import __version__
from console.audit.log import AuditLog
from console.events import (
    Actor,
    CancelRequested,
    CleanupsSkipped,
    Event,
    RetryRequested,
    RunFinished,
    RunInterrupted,
    RunOutcome,
    RunStarted,
    StepReused,
    StepSkipped,
)
from console.exec.base import Executor
from console.policy.verdict import Verdict
from console.run.audit_sink import AuditSink
from console.run.gates import GateAction
from console.run.outcome import run_outcome
from console.run.prepare import StepPreparer
from console.run.scheduler import FAILED, Scheduler
from console.run.settings import EngineSettings

__all__ = ["Engine", "EngineSettings", "Executor"]


class Engine(Scheduler):
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

    async def execute(
        self, reused: Mapping[str, str],
        outputs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Schedule every step to the end; `reused` steps (from --resume) do not run, and
        hand on the `outputs` they had."""
        for sid, values in (outputs or {}).items():
            self._outputs.record(sid, values)
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
            instances=dict(self.loaded.groups) or None,
            actor=Actor(self.initiator.user, self.initiator.uid, self.settings.via),
        )

    def _begin(self, reused: Mapping[str, str]) -> None:
        """`reused` holds steps, and instances (`deploy[web-03]`) of steps run on many
        hosts whose other hosts run again."""
        self._reused_units = {u: origin for u, origin in reused.items() if u not in
                              self.loaded.steps}
        steps = self.loaded.steps
        in_order = sorted(steps, key=self._rank.__getitem__)
        self._unfinished = len(steps)
        self._waiting_on = {sid: len(step.needs) for sid, step in steps.items()}
        for sid in in_order:
            if sid in reused:
                self._emit(StepReused(run=self.run_id, step=sid, from_run=reused[sid],
                                      outputs=self._outputs.get(sid)))
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
            for sid in [*self._running, *self._instances_running]:
                self._executor.cancel(sid)
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._executor.shutdown()

    def flush_refusals(self) -> None:
        """Record the refusals still being counted (the socket may have taken more)."""
        self._gates.stop_timers()

    def finish(self) -> None:
        """Skip what never ran and record `run.finished` with the outcome."""
        assert self.audit is not None
        reason = f"run {self._stopping or 'ended'} before it ran"
        for group in self.state.instances.values():
            for instance in group.values():
                if not instance.finished:
                    self._emit(StepSkipped(run=self.run_id, step=instance.id, reason=reason))
        for sid, st in self.state.steps.items():
            if not st.finished:
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
        group = self._groups.get(step)
        if group is not None and not group.finished:
            group.stop(why)
        elif step in self._running:
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
        if step in self.loaded.groups:
            return Verdict(
                False,
                f"step {step!r} runs as instances; start a new run with --resume "
                f"{self.run_id}, which runs again only the instances that did not succeed",
            )
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

    def shape(self) -> dict[str, Any]:
        """The workflow as a viewer draws it (steps, needs, conditions, tags, the commands
        with secrets masked), for someone attached who cannot read the workflow's file."""
        assert self._preparer is not None
        return {
            "name": self.loaded.name,
            "description": self.loaded.model.workflow.description,
            "steps": {
                sid: {
                    "needs": list(step.needs),
                    "if": step.if_,
                    "tags": list(step.tags),
                    "description": step.description,
                    "run": (
                        list(command)
                        if isinstance(command := self._preparer.display_command(sid), tuple)
                        else command
                    ),
                }
                for sid, step in self.loaded.steps.items()
            },
        }

    def status(self, for_uid: int | None = None) -> dict[str, Any]:
        """The live run for `console status`; with `for_uid`, whether that person may pass
        each open gate now (the socket passes the asker's uid from SO_PEERCRED)."""
        done, total = self.state.progress
        return {
            "run": self.run_id,
            "workflow": self.loaded.name,
            "status": self.state.status,
            "user": self.initiator.user,
            "pid": os.getpid(),
            "progress": [done, total],
            "steps": {sid: st.status for sid, st in self.state.steps.items()},
            "gates": self._gates.summaries(for_uid=for_uid),
        }
