"""StepLog: one attempt's log file. Every executor writes output through it, so masking
and hashing happen once, here.

Each stream is masked with its own carry-over (a secret split across two chunks is still
caught), and hashed as written. Written unbuffered, chunk by chunk as they arrive, so a tail
of the file is live. The file is created with the first output: a step that prints nothing
has no log file (size 0, the empty SHA-256). A local step's stdout and stderr arrive as one
stream (they share a pipe); a remote step's as two.
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

    def __init__(self, path: Path, secrets: Iterable[str], *, make_dir: bool = True) -> None:
        """`make_dir`: create the log's directory now, so that a broken one fails up front
        (False when the caller knows it exists)."""
        self._path = path
        self._fd: int | None = None
        if make_dir:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._secrets = tuple(secrets)
        # Made on a stream's first output, and only when there is something to mask.
        self._maskers: dict[int, StreamMasker] = {}
        self._sha256: hashlib._Hash | None = None
        self.size = 0
        self.error: OSError | None = None
        self._closed = False

    def write(self, stream: int, data: bytes) -> None:
        if self._closed:
            return
        if self._secrets:
            masker = self._maskers.get(stream)
            if masker is None:
                masker = self._maskers[stream] = StreamMasker(self._secrets)
            data = masker.feed(data)
        self._emit(data)

    def write_stdout(self, data: bytes) -> None:
        self.write(STDOUT, data)

    def end_stream(self, stream: int) -> None:
        masker = self._maskers.get(stream)
        if masker is not None and not self._closed:
            self._emit(masker.flush())

    def close(self) -> None:
        if self._closed:
            return
        for stream in list(self._maskers):
            self.end_stream(stream)
        self._closed = True
        if self._fd is not None:
            os.close(self._fd)

    @property
    def sha256(self) -> str:
        return EMPTY_SHA256 if self._sha256 is None else self._sha256.hexdigest()

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
            if self._sha256 is None:
                self._sha256 = hashlib.sha256()
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
