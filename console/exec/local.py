"""LocalExecutor: run one step attempt as a real process on this machine.

Each attempt runs in its own session and process group (the group id is the leader's pid),
with stdin from /dev/null and stdout and stderr on one pipe. Output is written to the
attempt's log file as it arrives, masked and hashed on the way, so nothing is ever held
whole in memory and a full pipe never stalls the step.

Stopping a group is always the same sequence: SIGTERM to the group, up to `grace_s` for
every member to exit, then SIGKILL to the group. It is used on timeout, on `cancel()`, when
the task awaiting `run()` is cancelled, on `shutdown()`, and for processes the leader left
behind: once the leader has exited, the pipes get DRAIN_AFTER_EXIT_S to reach end of file
(a background child may still hold them), then whatever is left of the group is stopped.
A step therefore never leaves a process behind in its group, and a watchdog process stops
the groups if the console itself dies (see watchdog.py).

The step's own failure is data, never an exception: a program that does not exist, a
missing working directory, a timeout or a kill all come back as an ExecResult.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

from console.exec._watchdog_main import group_alive, signal_group
from console.exec.base import ExecOutcome, ExecResult, Started, StepCommand
from console.exec.step_process import Readiness, Spawner, StepProcess
from console.exec.steplog import StepLog, attempt_result
from console.exec.watchdog import Watchdog
from console.workflow.spec import format_duration

# After the leader exits, how long its output pipes may stay open before the rest of the
# group is stopped. Output already written is read in milliseconds; only a background
# process still holding the pipe keeps it open, and one second lets short trailing work end.
DRAIN_AFTER_EXIT_S = 1.0
# How long to wait for a group to vanish after SIGKILL (it only lingers if a member is
# stuck in the kernel, or changed uid and cannot be signalled by us).
KILL_WAIT_S = 5.0


class _Control:
    """What the executor keeps about a run in flight: how to stop it, when it is over, and
    the one future its run() sleeps on, woken by whatever it may be waiting for (the
    leader's exit, the end of its output, a stop, a deadline)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.stop_reason: str | None = None
        self.finished: asyncio.Future[None] = loop.create_future()
        self.pgid: int | None = None
        self._waiter: asyncio.Future[None] | None = None

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def until(self, done: Callable[[], bool], timeout_s: float | None,
                    *, or_stop: bool = False) -> None:
        """Return once `done()` (or a stop, with `or_stop`), or after `timeout_s`."""
        deadline = None if timeout_s is None else self.loop.time() + timeout_s
        while not done() and not (or_stop and self.stop_reason is not None):
            timer = None
            if deadline is not None:
                remaining = deadline - self.loop.time()
                if remaining <= 0:
                    return
                timer = self.loop.call_later(remaining, self.wake)
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()


async def _wait_group_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    pause = 0.002
    while group_alive(pgid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.05)
    return True


async def terminate_group(pgid: int, grace_s: float) -> bool:
    """SIGTERM the group, give it `grace_s`, SIGKILL what is left; True once it is gone."""
    if not signal_group(pgid, signal.SIGTERM):
        return True
    if await _wait_group_gone(pgid, grace_s):
        return True
    signal_group(pgid, signal.SIGKILL)
    return await _wait_group_gone(pgid, KILL_WAIT_S)


def _verdict_from_exit(returncode: int | None) -> tuple[ExecOutcome, str | None]:
    if returncode == 0:
        return "succeeded", None
    if returncode is None:
        return "error", "exit status unknown"
    if returncode > 0:
        return "failed", f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return "error", f"killed by {name}"


class LocalExecutor:
    """Runs step attempts as local processes; one watchdog per executor guards against orphans."""

    def __init__(self, grace_s: float = 10.0) -> None:
        self._grace_s = grace_s
        self._running: dict[str, _Control] = {}
        self._watchdog = Watchdog(grace_s)
        self._spawner = Spawner()
        self._readiness = Readiness()
        # Log directories made (or found) by an earlier attempt: not made again per step.
        self._log_dirs: set[str] = set()

    async def run(
        self, cmd: StepCommand, on_started: Callable[[Started], None] | None = None
    ) -> ExecResult:
        if cmd.step_id in self._running:
            raise ValueError(f"step {cmd.step_id!r} is already running in this executor")
        loop = asyncio.get_running_loop()
        control = _Control(loop)
        self._running[cmd.step_id] = control
        started = time.monotonic()
        try:
            return await self._run(cmd, control, on_started, started)
        finally:
            del self._running[cmd.step_id]
            control.finished.set_result(None)

    def cancel(self, step_id: str) -> None:
        """Stop a run in flight (SIGTERM, grace, SIGKILL); its run() returns "cancelled".

        A run whose leader already exited keeps the outcome of its exit status.
        Unknown or finished steps are ignored.
        """
        control = self._running.get(step_id)
        if control is not None:
            control.stop("cancelled")

    async def shutdown(self) -> None:
        """Cancel every run in flight, wait until their groups are gone, stop the watchdog."""
        controls = list(self._running.values())
        for control in controls:
            control.stop("cancelled: the executor is shutting down")
        if controls:
            bound = self._grace_s + KILL_WAIT_S + DRAIN_AFTER_EXIT_S + 1.0
            await asyncio.wait([c.finished for c in controls], timeout=bound)
            for control in controls:
                if control.pgid is not None and not control.finished.done():
                    # Nobody is driving that run() any more: stop its group ourselves.
                    await terminate_group(control.pgid, self._grace_s)
        await self._watchdog.close()
        self._spawner.close()
        self._readiness.close()

    async def _run(
        self,
        cmd: StepCommand,
        control: _Control,
        on_started: Callable[[Started], None] | None,
        started: float,
    ) -> ExecResult:
        def result(
            outcome: ExecOutcome,
            error: str | None,
            exit_code: int | None = None,
            pid: int | None = None,
            log: StepLog | None = None,
        ) -> ExecResult:
            return attempt_result(cmd.log_path, started, outcome, error, log, pid=pid,
                                  exit_code=exit_code)

        log_dir = os.path.dirname(cmd.log_path)
        try:
            log = StepLog(cmd.log_path, cmd.secrets, make_dir=log_dir not in self._log_dirs)
        except OSError as exc:
            return result("error", f"could not open the log file: {exc}")
        self._log_dirs.add(log_dir)
        try:
            if control.stop_reason is not None:
                return result("cancelled", control.stop_reason, log=log)
            try:
                pid, output, popen = self._spawner.spawn(
                    cmd.program_argv(), cmd.local_env(), cmd.cwd
                )
            except (OSError, ValueError) as exc:
                return result("error", f"could not start: {exc}", log=log)
            control.pgid = pid
            self._watchdog.register(pid)
            process = StepProcess(pid, output, control.loop, self._readiness, log.write_stdout,
                                  control.wake, popen)
            gone = False
            try:
                if on_started is not None:
                    on_started(Started(pid=pid))
                outcome, error, gone = await self._supervise(cmd, control, process)
            except BaseException:
                await self._stop_interrupted(pid)
                raise
            finally:
                process.close()
                if gone or not group_alive(pid):
                    self._watchdog.unregister(pid)
            return result(outcome, error, process.returncode, pid, log)
        finally:
            log.close()

    async def _supervise(
        self, cmd: StepCommand, control: _Control, process: StepProcess
    ) -> tuple[ExecOutcome, str | None, bool]:
        """How the attempt ended, and whether its group is known to be gone."""
        pgid = process.pid

        def exited() -> bool:
            return process.exited

        def output_closed() -> bool:
            return process.output_closed

        await control.until(exited, cmd.timeout_s, or_stop=True)
        if not process.exited:
            if control.stop_reason is not None:
                verdict: tuple[ExecOutcome, str | None] = ("cancelled", control.stop_reason)
            else:
                assert cmd.timeout_s is not None
                verdict = ("error", f"timed out after {format_duration(cmd.timeout_s)}")
            gone = await terminate_group(pgid, self._grace_s)
            await control.until(exited, KILL_WAIT_S)
            await control.until(output_closed, DRAIN_AFTER_EXIT_S)
            return (*verdict, gone)

        returncode = process.returncode
        await control.until(output_closed, DRAIN_AFTER_EXIT_S, or_stop=True)
        gone = not group_alive(pgid)
        if not gone:
            # The leader is done; what it left running in its group does not outlive it.
            gone = await terminate_group(pgid, self._grace_s)
            await control.until(output_closed, DRAIN_AFTER_EXIT_S)
        return (*_verdict_from_exit(returncode), gone)

    async def _stop_interrupted(self, pgid: int) -> None:
        """The awaiting task was cancelled (or on_started raised): stop the group first."""
        stopped = False
        try:
            stopped = await terminate_group(pgid, self._grace_s)
        finally:
            if not stopped:
                # Interrupted again while waiting out the grace: no more waiting.
                signal_group(pgid, signal.SIGKILL)
