"""New bytes validated in a child process while the run imports what it needs.

A run of a workflow with no kept plan (console/workflow/plan_cache.py) pays for validation
(~80 ms: pydantic's import, the models' build, the checks) and for the run path's own
imports (asyncio, the engine, the audit, the run host: ~60 ms). Neither needs the other, so
on a machine with two cores they can overlap: `validate_aside` forks, the child validates
and keeps the plan as `keep` does, and sends back over a pipe the plan's body (what a kept
plan holds) or the problems of the WorkflowError; the parent meanwhile does the caller's
imports, then reads the pipe to its end and reaps the child. The parent never imports
pydantic on this path, and the body comes over the pipe, so a state dir that cannot keep
plans costs nothing more.

Only a single-threaded process forks (the UI validates in a thread: it keeps validating in
its own process). The child never returns into its caller's stack: whatever happens there
ends in `os._exit`. Anything other than a plan or a WorkflowError from it (a bug, an error
of the system) leaves the parent to validate in-process, so the error shows as it would
have. The parent kills and reaps the child on its way out whatever stops it (Ctrl-C, an
error); the child ignores SIGINT, which the terminal sends to both. If the parent is killed
outright, the child ends at the latest when validation is done: its write to the pipe no
one reads fails (EPIPE).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from console.errors import WorkflowError

_PLAN = b"P"
_PROBLEMS = b"E"


def validate_aside(path: str | Path, meanwhile: Callable[[], object]) -> bytes | None:
    """Validate `path` in a child while calling `meanwhile` here. The body of the plan it
    kept (plan_cache.plan_body); raises the WorkflowError that validation raised; None if
    the child could not be started or failed otherwise (`meanwhile` may then have run or
    not): validate in-process."""
    if threading.active_count() != 1 or not hasattr(os, "fork"):
        return None
    for stream in (sys.stdout, sys.stderr):  # a buffered line must not be written twice
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    reader, writer = os.pipe()
    # Ctrl-C between the fork and the child ignoring it would raise in the child's copy of
    # this stack: SIGINT waits until each side is ready for it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(reader)
        os.close(writer)
        return None
    if pid == 0:
        _child(path, reader, writer, mask)
    reaped = False
    try:
        os.close(writer)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        meanwhile()
        said = _read_all(reader)
        _, status = os.waitpid(pid, 0)
        reaped = True
    finally:
        os.close(reader)
        if not reaped:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return None
    kind, body = said[:1], said[1:]
    if kind == _PLAN:
        return body
    if kind == _PROBLEMS:
        problems = _problems(body)
        if problems is not None:
            raise WorkflowError(problems)
    return None


def _child(path: str | Path, reader: int, writer: int,
           mask: set[int | signal.Signals]) -> NoReturn:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills this one
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(reader)
        _write_all(writer, _validate(path))
        os.close(writer)  # the parent reads its end now, not once this process is torn down
        code = 0
    except BaseException:  # the parent validates again, and shows what it is
        pass
    finally:
        os._exit(code)


def _validate(path: str | Path) -> bytes:
    from console.workflow.loader import validate_workflow
    from console.workflow.plan_cache import keep, plan_body

    try:
        validated = validate_workflow(path)
    except WorkflowError as exc:
        return _PROBLEMS + json.dumps(list(exc.problems)).encode()
    body = plan_body(validated)
    keep(validated, body)
    return _PLAN + body


def _problems(body: bytes) -> list[str] | None:
    try:
        problems = json.loads(body)
    except ValueError:
        return None
    if isinstance(problems, list) and problems and all(isinstance(p, str) for p in problems):
        return problems
    return None


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
