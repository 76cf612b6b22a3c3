"""RunHost: everything a run owns besides its scheduling.

The engine schedules steps and judges gates; the host gives it a life: the workflow lock,
the audit writer, the run directory, `--resume`, the control socket, and (in the
foreground) the stop signals. A run is: take the lock, open the audit file, record
`run.started`, listen, schedule to the end, stop what runs, close the socket, release the
lock, record `run.finished`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from console import paths
from console.audit.log import AuditLog
from console.events import EventSink, LockAcquired, LockReleased, RunOutcome
from console.host.feed import FeedingAuditLog, RecordFeed
from console.host.protocol import RunProtocol
from console.policy.verdict import Verdict
from console.run.control import ControlServer
from console.run.engine import Engine, EngineSettings, Executor
from console.run.fanout import AuditBreak
from console.run.fd_limits import raise_fd_limit
from console.run.lifeline import Lifeline, LiveRun, catch_stop_signals
from console.run.lock import LockHolder, WorkflowLock
from console.run.resume import previous_run_with_outputs
from console.run.state import RunState
from console.workflow.loaded import LoadedWorkflow


class RunHost:
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
        self.engine = Engine(
            loaded, params, sinks, settings,
            executor=executor, clock=clock, initiator_uid=initiator_uid, run_id=run_id,
        )
        # Once the run listens on its socket (or started without one), or could not start:
        # (socket path, None) or (None, the error). A host process reports it to its parent.
        self._start_result: tuple[Path | None, BaseException | None] | None = None
        self._started = asyncio.Event()
        self.settings = self.engine.settings
        self.run_id = self.engine.run_id
        self.loaded = loaded

    # --- what the run shows ---------------------------------------------------------

    @property
    def state(self) -> RunState:
        return self.engine.state

    @property
    def audit(self) -> AuditLog | None:
        return self.engine.audit

    @property
    def audit_break(self) -> AuditBreak | None:
        return self.engine.audit_break

    def add_sink(self, sink: EventSink) -> None:
        self.engine.add_sink(sink)

    def status(self, for_uid: int | None = None) -> dict[str, Any]:
        return self.engine.status(for_uid)

    def settle_within_s(self) -> float:
        return self.engine.settle_within_s()

    # --- what people do to it (the uid is the one the OS vouched for) ------------------

    def approve(self, step: str, uid: int, via: str, reason: str | None) -> Verdict:
        return self.engine.approve(step, uid, via, reason)

    def deny(self, step: str, uid: int, via: str, reason: str) -> Verdict:
        return self.engine.deny(step, uid, via, reason)

    def override(self, step: str, uid: int, via: str, reason: str) -> Verdict:
        return self.engine.override(step, uid, via, reason)

    def cancel_step(self, step: str, uid: int, via: str) -> Verdict:
        return self.engine.cancel_step(step, uid, via)

    def cancel_run(self, uid: int, via: str) -> Verdict:
        return self.engine.cancel_run(uid, via)

    def retry_step(self, step: str, uid: int, via: str) -> Verdict:
        return self.engine.retry_step(step, uid, via)

    def interrupt(self, signal_name: str) -> None:
        self.engine.interrupt(signal_name)

    # --- the run's life ---------------------------------------------------------------

    async def run(self) -> RunOutcome:
        """Run the workflow to the end. Raises ConsoleError if it cannot start."""
        try:
            return await self._run()
        except BaseException as exc:
            self._listened(None, exc)  # a no-op once the run had started
            raise

    async def _run(self) -> RunOutcome:
        engine, settings = self.engine, self.settings
        run_dir = settings.runs_dir / self.run_id
        engine.prepare(run_dir)
        reused: dict[str, str] = {}
        handed_on: dict[str, dict[str, str]] = {}
        if settings.resume_from:
            reused, handed_on = previous_run_with_outputs(
                settings.audit_path, settings.resume_from, self.loaded
            )
        raise_fd_limit()
        lock = self._take_lock()
        server: ControlServer | None = None
        try:
            # Each record the run appends also goes to its viewers (protocol v2's subscribe).
            feed = RecordFeed(self.run_id)
            audit = FeedingAuditLog(
                settings.audit_path, feed, fsync_always=settings.fsync_always
            )
            paths.make_private_dirs(run_dir)
            socket_path = None
            if settings.control_socket:
                socket_path = settings.runtime_dir / paths.control_socket_path(self.run_id).name
                v2 = RunProtocol(
                    run_id=self.run_id, workflow=self.loaded.name, feed=feed,
                    audit_path=settings.audit_path, run_dir=run_dir, state=lambda: engine.state,
                    shape=engine.shape,
                )
                server = ControlServer(engine, socket_path, engine.status, extra_ops=v2)
            engine.open(audit, run_dir, socket_path)
            if lock is not None:
                engine.emit(LockAcquired(run=self.run_id, name=lock.name))
            if server is not None:
                await server.start()
            self._listened(socket_path)
            await engine.execute(reused, handed_on)
        finally:
            await engine.stop_steps()
            if server is not None:
                await server.close()
                engine.flush_refusals()
            if lock is not None:
                if engine.opened:
                    engine.emit(LockReleased(run=self.run_id, name=lock.name))
                lock.release()
            if engine.opened:
                engine.finish()
            if server is not None:  # viewers get run.finished, then the end of their stream
                await server.close_streams()
        return engine.outcome

    async def run_in_foreground(self) -> RunOutcome:
        """`run()`, with the stop signals this process gets: the first interrupts the run,
        a second skips its cleanups; the lifeline ends the process at the stop budget even
        if the loop is stuck (console/run/lifeline.py). SIGHUP counts once: a terminal
        that goes away may send it twice (kernel and shell)."""
        loop = asyncio.get_running_loop()
        live = LiveRun()
        self.add_sink(live)
        lifeline = Lifeline(live.kill_steps, self.settle_within_s)
        seen: set[str] = set()

        def stop(name: str) -> None:
            if name == "SIGHUP" and name in seen:
                return
            seen.add(name)
            self.interrupt(name)
            lifeline.arm(self.settle_within_s())

        def on_signal(name: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the lifeline decides
                loop.call_soon_threadsafe(stop, name)

        previous = {sig: signal.getsignal(sig) for sig in signal.Signals}
        caught = catch_stop_signals(on_signal)
        lifeline.watch_signals()
        try:
            return await self.run()
        finally:
            signal.set_wakeup_fd(-1)
            for sig in caught:
                signal.signal(sig, previous[sig])

    def _listened(self, socket_path: Path | None, error: BaseException | None = None) -> None:
        if self._start_result is None:
            self._start_result = (socket_path, error)
            self._started.set()

    async def started(self) -> Path | None:
        """Wait until the run has started (its socket's path) or failed to (raises why)."""
        await self._started.wait()
        assert self._start_result is not None
        path, error = self._start_result
        if error is not None:
            raise error
        return path

    def _take_lock(self) -> WorkflowLock | None:
        name = self.loaded.model.workflow.lock
        if name is None:
            return None
        initiator = self.engine.initiator
        lock = WorkflowLock(self.settings.runtime_dir, name)
        lock.acquire(
            LockHolder(
                user=initiator.user,
                uid=initiator.uid,
                pid=os.getpid(),
                run=self.run_id,
                since=self.engine.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        )
        return lock

