"""A run in a process of its own: no terminal, so a dropped SSH session never stops it.

`start_host_process` starts `python -m console _host` in a new session with stdin from
/dev/null and its output in `<run dir>/host.log`, hands it what to run through a pipe (never
argv: a secret param would show in `ps`), and waits until the run listens on its control
socket, or until the host says why it could not start (a held lock, an audit file it may
not write, a missing secret). The host lives until the run has ended, cleanups included.

`fork_host_process` gives the same host without a second start-up: `console run --detach`
has imported the run path and loaded the workflow already, so it forks, and the child
becomes the host (new session, /dev/null, the log, no inherited descriptor).

Either host works in its workflow's directory (`enter_workdir`): that is where its steps
run unless they say otherwise, and a step whose directory is the host's own is started by
posix_spawn, at less than half the parent's CPU of Popen (console/exec/step_process.py).
So every path the host is handed is absolute, made so here in the caller's directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from console import paths
from console.errors import ConsoleError
from console.run.ids import new_run_id
from console.run.settings import EngineSettings

HOST_LOG = "host.log"
START_TIMEOUT_S = 30.0


class HostStartError(ConsoleError):
    """The run host could not start the run; the message says why."""


@dataclass(frozen=True)
class HostSpec:
    """What a host process runs: sent to it as one JSON document on a pipe."""

    workflow: str
    params: dict[str, str | int | bool]
    run_id: str
    audit_path: str
    runs_dir: str
    runtime_dir: str
    grace_s: float
    fsync_always: bool
    resume_from: str | None
    initiator_uid: int | None = None  # who asked for the run, when not this process's user
    via: str = "host"

    def settings(self) -> EngineSettings:
        return EngineSettings(
            audit_path=Path(self.audit_path),
            runs_dir=Path(self.runs_dir),
            runtime_dir=Path(self.runtime_dir),
            grace_s=self.grace_s,
            fsync_always=self.fsync_always,
            resume_from=self.resume_from,
            via=self.via,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostSpec:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass(frozen=True)
class StartedHost:
    run_id: str
    pid: int
    socket_path: Path | None
    log_path: Path


def start_host_process(
    workflow: Path,
    params: Mapping[str, str | int | bool],
    settings: EngineSettings,
    *,
    timeout_s: float = START_TIMEOUT_S,
    initiator_uid: int | None = None,
    env: Mapping[str, str] | None = None,
    via: str = "host",
) -> StartedHost:
    """Start a run host for `workflow` and return once its run has started. `env` replaces
    the host's environment (the service passes its credentials this way); the run is
    recorded as started by `initiator_uid` (default: this process's user)."""
    settings = absolute_settings(settings)
    run_id = new_run_id()
    run_dir = settings.runs_dir / run_id
    paths.make_private_dirs(run_dir)
    log_path = run_dir / HOST_LOG
    spec = HostSpec(
        workflow=str(workflow.resolve()),
        params=dict(params),
        run_id=run_id,
        audit_path=str(settings.audit_path),
        runs_dir=str(settings.runs_dir),
        runtime_dir=str(settings.runtime_dir),
        grace_s=settings.grace_s,
        fsync_always=settings.fsync_always,
        resume_from=settings.resume_from,
        initiator_uid=initiator_uid,
        via=via,
    )
    spec_r, spec_w = os.pipe()
    ready_r, ready_w = os.pipe()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "console", "_host", "--spec-fd", str(spec_r),
             "--ready-fd", str(ready_w)],
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            pass_fds=(spec_r, ready_w),
            cwd="/",
            env=None if env is None else dict(env),
        )
    finally:
        for fd in (spec_r, ready_w, log_fd):
            os.close(fd)
    with os.fdopen(spec_w, "w") as feed:
        json.dump(asdict(spec), feed)
    answer = _read_answer(ready_r, timeout_s)
    return _started_or_raise(answer, run_id, process.pid, log_path, process.poll, timeout_s,
                             process.terminate)


def fork_host_process(
    run_id: str, settings: EngineSettings, host_main: Callable[[int], int], workdir: Path,
    *, timeout_s: float = START_TIMEOUT_S,
) -> StartedHost | None:
    """Start the run host by forking this process, which has already imported the run path
    and loaded the workflow, so the run does not pay a second start-up. The child calls
    `host_main(ready_fd)` in a session of its own, in `workdir` (see enter_workdir), stdin
    from /dev/null, output to the run's log, no other inherited descriptor; its return value
    is the exit code. `settings` must be absolute_settings' (the child changes directory).

    None when forking is not safe here (threads are running): use start_host_process."""
    if threading.active_count() != 1:
        return None
    run_dir = settings.runs_dir / run_id
    paths.make_private_dirs(run_dir)
    log_path = run_dir / HOST_LOG
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    ready_r, ready_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # nothing buffered here may be written twice
    pid = os.fork()
    if pid == 0:  # the child; its behaviour is tested through the CLI
        _become_host(log_fd, ready_w, host_main, workdir)
    os.close(log_fd)
    os.close(ready_w)
    answer = _read_answer(ready_r, timeout_s)

    def exit_code() -> int | None:
        done, status = os.waitpid(pid, os.WNOHANG)
        return os.waitstatus_to_exitcode(status) if done else None

    def terminate() -> None:
        os.kill(pid, signal.SIGTERM)

    return _started_or_raise(answer, run_id, pid, log_path, exit_code, timeout_s, terminate)


def _become_host(
    log_fd: int, ready_fd: int, host_main: Callable[[int], int], workdir: Path
) -> NoReturn:
    code = 1
    try:
        os.setsid()
        enter_workdir(workdir)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        # Like Popen's close_fds: a pipe inherited from whoever ran `console run --detach`
        # (a `$(...)`, an ssh channel) must not be held open by the run.
        os.closerange(3, ready_fd)
        os.closerange(ready_fd + 1, fd_limit())
        code = host_main(ready_fd)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def absolute_settings(settings: EngineSettings) -> EngineSettings:
    """`settings` with its paths made absolute in this process's directory: a relative
    `$XDG_STATE_HOME` or `$CONSOLE_RUNTIME_DIR` means the caller's directory, never the
    host's."""
    return dataclasses.replace(
        settings,
        audit_path=Path(os.path.abspath(settings.audit_path)),
        runs_dir=Path(os.path.abspath(settings.runs_dir)),
        runtime_dir=Path(os.path.abspath(settings.runtime_dir)),
    )


def enter_workdir(directory: Path) -> None:
    """In the host process: make the workflow's `directory` the working directory, where
    its steps run by default, so they start through posix_spawn; whether a step may is
    checked at each start (console/exec/step_process.py `_may_posix_spawn`: the directory
    the path names now must be the one held), and nothing a step sees changes: its
    directory, environment ($PWD is left as the host got it) and descriptors are the same.

    A directory this process cannot enter (removed, or not searchable by the service's
    user) leaves the host in `/`, as before: the run starts, and each step that would run
    there fails to start, saying why."""
    # `python -c` puts "" (this directory) first on sys.path: the host's later imports
    # must not come from the workflow's directory.
    with contextlib.suppress(OSError):
        here = os.getcwd()
        sys.path[:] = [here if entry == "" else entry for entry in sys.path]
    try:
        os.chdir(directory)
    except OSError:
        os.chdir("/")


def fd_limit() -> int:
    """One past the highest descriptor this process may hold."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if 0 < soft < 1 << 20 else 1 << 16


def _started_or_raise(
    answer: str, run_id: str, pid: int, log_path: Path,
    exit_code: Callable[[], int | None], timeout_s: float, terminate: Callable[[], None],
) -> StartedHost:
    if answer.startswith("ok"):
        socket_text = answer.partition(" ")[2].strip()
        return StartedHost(run_id, pid, Path(socket_text) if socket_text else None, log_path)
    code = exit_code()
    if code is None and not answer:
        terminate()
    why = answer.partition(" ")[2].strip() if answer.startswith("error") else (
        f"the run host did not start within {timeout_s:g}s" if code is None
        else f"the run host exited with code {code}"
    )
    raise HostStartError(f"{why} (its log: {log_path})")


def _read_answer(fd: int, timeout_s: float) -> str:
    """The host's one line ("ok SOCKET" or "error MESSAGE"), or "" if it never came."""
    deadline = time.monotonic() + timeout_s
    data = b""
    try:
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace").split("\n", 1)[0]


def report_started(ready_fd: int, socket_path: Path | None, error: str | None) -> None:
    """In the host: tell the parent the run has started, or why not; then let go of it."""
    line = f"ok {socket_path or ''}" if error is None else f"error {error}"
    try:
        os.write(ready_fd, (line.replace("\n", " ") + "\n").encode("utf-8"))
    except OSError:
        pass  # the parent went away: the run goes on regardless
    finally:
        os.close(ready_fd)
