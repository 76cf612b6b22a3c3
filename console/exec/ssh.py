"""SshExecutor: run one attempt of a step on a host of the inventory, over asyncssh.

One connection per host, reused (ssh_connect.py). The remote side is a small POSIX-shell
wrapper fed on stdin (ssh_script.py): the step runs in a process group of its own; a line
on stdin signals that group, and end of file (a closed channel, a lost connection, a dead
console) stops it. Stopping is the local executor's sequence over the channel: TERM, up to
`grace_s`, KILL.

The host gets the step's own environment only (its env, params, CONSOLE_*), never this
machine's. Output goes through StepLog, masked and hashed like a local step's. The step's
own failure is data: an unreachable host, refused keys, a lost connection, a timeout all
come back as an ExecResult whose error names the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import asyncssh

from console.exec.base import ExecOutcome, ExecResult, Started, StepCommand
from console.exec.ssh_connect import Connection, ConnectionPool, HostUnreachable
from console.exec.ssh_script import BOOTSTRAP, PID_MARKER, WRAPPER_FAILED, message
from console.exec.steplog import STDERR, STDOUT, StepLog, attempt_result
from console.workflow.spec import format_duration

READ_SIZE = 256 * 1024
KILL_WAIT_S = 5.0


class _Attempt:
    """An attempt in flight: how to stop it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stop_reason: asyncio.Future[str] = loop.create_future()

    def stop(self, reason: str) -> None:
        if not self.stop_reason.done():
            self.stop_reason.set_result(reason)


class SshExecutor:
    def __init__(self, grace_s: float = 10.0) -> None:
        self._grace_s = grace_s
        self._pool = ConnectionPool()
        self._running: dict[str, _Attempt] = {}

    async def run(
        self, cmd: StepCommand, on_started: Callable[[Started], None] | None = None
    ) -> ExecResult:
        assert cmd.host is not None
        if cmd.step_id in self._running:
            raise ValueError(f"{cmd.step_id!r} is already running in this executor")
        attempt = _Attempt(asyncio.get_running_loop())
        self._running[cmd.step_id] = attempt
        started = time.monotonic()
        try:
            log = StepLog(cmd.log_path, cmd.secrets)
        except OSError as exc:
            del self._running[cmd.step_id]
            return _result(cmd, started, "error", f"could not open the log file: {exc}", None)
        try:
            return await self._run(cmd, attempt, log, on_started, started)
        finally:
            del self._running[cmd.step_id]
            log.close()

    def cancel(self, step_id: str) -> None:
        attempt = self._running.get(step_id)
        if attempt is not None:
            attempt.stop("cancelled")

    async def shutdown(self) -> None:
        for attempt in list(self._running.values()):
            attempt.stop("cancelled: the executor is shutting down")
        await self._pool.close()

    async def _run(self, cmd: StepCommand, attempt: _Attempt, log: StepLog,
                   on_started: Callable[[Started], None] | None, started: float) -> ExecResult:
        host = cmd.host
        assert host is not None
        where = f"{host.name} ({host.address}:{host.port})"
        try:
            connection = await _first(self._pool.get(host), attempt.stop_reason)
        except HostUnreachable as exc:
            return _result(cmd, started, "error", str(exc), log)
        if connection is None:
            return _result(cmd, started, "cancelled", attempt.stop_reason.result(), log)
        try:
            process = await connection.conn.create_process(BOOTSTRAP, encoding=None)
        except (asyncssh.Error, OSError) as exc:
            self._pool.forget(host.name)
            return _result(cmd, started, "error", f"{where}: could not start the step: "
                           f"{_reason(exc)} (connection lost?)", log)
        reader = _Output(process, log, connection, host.name, on_started)
        try:
            process.stdin.write(message(cmd, cmd.env, self._grace_s))
            outcome, error = await self._supervise(cmd, attempt, process, reader)
        except (asyncssh.Error, OSError, BrokenPipeError) as exc:
            self._pool.forget(host.name)
            outcome, error = "error", f"{where}: connection lost: {_reason(exc)}"
        except BaseException:
            _signal(process, "KILL")
            process.close()
            raise
        finally:
            reader.announce()
        process.close()
        if outcome == "error" and error is None:
            error = "unknown error"
        return _result(cmd, started, outcome, error, log, reader.pid,
                       process.exit_status if outcome != "error" else None)

    async def _supervise(self, cmd: StepCommand, attempt: _Attempt,
                         process: asyncssh.SSHClientProcess[bytes], reader: _Output
                         ) -> tuple[ExecOutcome, str | None]:
        host = cmd.host
        assert host is not None
        pump = asyncio.ensure_future(reader.pump())
        stop = attempt.stop_reason
        try:
            await asyncio.wait((pump, stop), timeout=cmd.timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)
            if not pump.done():
                if stop.done():
                    verdict: tuple[ExecOutcome, str | None] = ("cancelled", stop.result())
                else:
                    assert cmd.timeout_s is not None
                    verdict = ("error", f"timed out after {format_duration(cmd.timeout_s)}")
                _signal(process, "TERM")
                await asyncio.wait((pump,), timeout=self._grace_s)
                if not pump.done():
                    _signal(process, "KILL")
                    await asyncio.wait((pump,), timeout=KILL_WAIT_S)
                return verdict
            pump.result()
            await process.wait_closed()
        finally:
            if not pump.done():
                pump.cancel()
        status = process.exit_status
        where = f"{host.name} ({host.address}:{host.port})"
        if status is None or status < 0:
            signal = process.exit_signal
            if signal is not None:
                return "error", f"{where}: killed by SIG{signal[0]}"
            return "error", f"{where}: connection lost before the step ended"
        if status == 0:
            return "succeeded", None
        if status == WRAPPER_FAILED and reader.pid is None:
            return "error", f"{where}: the step could not be started (no POSIX sh, head or " \
                            "setsid on the host?)"
        return "failed", f"exited with code {status}"


class _Output:
    """Reads both streams into the log; takes the pid line off stderr and says started."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes], log: StepLog,
                 connection: Connection, host: str,
                 on_started: Callable[[Started], None] | None) -> None:
        self._process = process
        self._log = log
        self._connection = connection
        self._host = host
        self._on_started = on_started
        self._head = b""
        self._announced = False
        self.pid: int | None = None

    async def pump(self) -> None:
        await asyncio.gather(self._read(STDOUT), self._read(STDERR))

    async def _read(self, stream: int) -> None:
        source = self._process.stdout if stream == STDOUT else self._process.stderr
        while True:
            chunk = await source.read(READ_SIZE)
            if not chunk:
                break
            if stream == STDERR and not self._announced:
                chunk = self._take_pid(chunk)
            if chunk:
                self._log.write(stream, chunk)
        if stream == STDERR and not self._announced and self._head:
            self._log.write(STDERR, self._head)
            self._head = b""
        self._log.end_stream(stream)

    def _take_pid(self, chunk: bytes) -> bytes:
        self._head += chunk
        line, newline, rest = self._head.partition(b"\n")
        if not newline:
            if len(self._head) > 64 or not PID_MARKER.startswith(self._head[:12]):
                rest, self._head = self._head, b""
                self.announce()
                return rest
            return b""
        self._head = b""
        if line.startswith(PID_MARKER) and line[len(PID_MARKER):].strip().isdigit():
            self.pid = int(line[len(PID_MARKER):])
            self.announce()
            return rest
        self.announce()
        return line + newline + rest

    def announce(self) -> None:
        if self._announced:
            return
        self._announced = True
        if self._on_started is not None:
            self._on_started(Started(pid=self.pid, host=self._host,
                                     host_key=self._connection.host_key))


async def _first(connecting: Awaitable[Connection],
                 stop: asyncio.Future[str]) -> Connection | None:
    """The connection, or None if the attempt was stopped while connecting."""
    task = asyncio.ensure_future(connecting)
    await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    return None


def _signal(process: asyncssh.SSHClientProcess[bytes], name: str) -> None:
    # A channel already gone is fine: the host's wrapper stops the group on its own.
    with contextlib.suppress(asyncssh.Error, OSError, RuntimeError):
        process.stdin.write(f"{name}\n".encode())


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", "") or exc) or type(exc).__name__


def _result(cmd: StepCommand, started: float, outcome: ExecOutcome, error: str | None,
            log: StepLog | None, pid: int | None = None,
            exit_code: int | None = None) -> ExecResult:
    return attempt_result(cmd.log_path, started, outcome, error, log, pid=pid,
                          exit_code=exit_code)
