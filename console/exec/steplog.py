"""StepLog: one attempt's log file. Every executor writes output through it, so masking
and hashing happen once, here.

Both streams are masked, each with its own carry-over (a secret split across two chunks is
still caught), and hashed as written. Written unbuffered, chunk by chunk as they arrive, so
a tail of the file is live. The file is created with the first output: a step that prints
nothing has no log file (size 0, the empty SHA-256).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

from console.exec.base import EMPTY_SHA256, ExecOutcome, ExecResult
from console.exec.masking import StreamMasker

STDOUT, STDERR = 1, 2


class StepLog:
    """One attempt's log: write(stream, bytes) as output arrives, close() at the end."""

    def __init__(self, path: Path, secrets: Iterable[str]) -> None:
        self._path = path
        self._fd: int | None = None
        path.parent.mkdir(parents=True, exist_ok=True)  # a broken log directory fails up front
        values = tuple(secrets)
        self._maskers = {STDOUT: StreamMasker(values), STDERR: StreamMasker(values)}
        self._sha256 = hashlib.sha256()
        self.size = 0
        self.error: OSError | None = None
        self._closed = False

    def write(self, stream: int, data: bytes) -> None:
        if not self._closed:
            self._emit(self._maskers[stream].feed(data))

    def end_stream(self, stream: int) -> None:
        if not self._closed:
            self._emit(self._maskers[stream].flush())

    def close(self) -> None:
        if self._closed:
            return
        self.end_stream(STDOUT)
        self.end_stream(STDERR)
        self._closed = True
        if self._fd is not None:
            os.close(self._fd)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def _emit(self, data: bytes) -> None:
        if not data or self.error is not None:
            return
        if self._fd is None:
            try:
                self._fd = _open_log(self._path)
            except OSError as exc:
                self.error = exc
                return
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError as exc:
                # Keep draining the pipes (a stalled step is worse), but stop writing.
                self.error = exc
                return
            self._sha256.update(view[:written])
            self.size += written
            view = view[written:]


def _open_log(path: Path) -> int:
    # Owner-only: step output can hold credentials nobody declared as secrets.
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)


def attempt_result(
    log_path: Path, started: float, outcome: ExecOutcome, error: str | None,
    log: StepLog | None, *, pid: int | None = None, exit_code: int | None = None,
) -> ExecResult:
    """How an attempt ended, as every executor reports it: a log that could not be
    written turns the outcome into an error (unless the attempt was cancelled)."""
    if log is not None and log.error is not None and outcome != "cancelled":
        problem = f"could not write the log {log_path}: {log.error.strerror}"
        outcome, error = "error", f"{error}; {problem}" if error else problem
    return ExecResult(
        outcome=outcome, exit_code=exit_code, error=error, pid=pid,
        duration_s=time.monotonic() - started, log_path=log_path,
        log_size=log.size if log is not None else 0,
        log_sha256=log.sha256 if log is not None else EMPTY_SHA256,
    )
