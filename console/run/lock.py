"""Per-host workflow locks: at most one live run holds a given `[workflow] lock` name.

A lock is an flock on `<runtime_dir>/locks/<name>.lock`; the kernel drops it when the
holder dies (even by SIGKILL), so a crashed run never leaves a stale lock behind. The file
holds who took it, so a second run can say who is in the way.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from console.errors import LockError


@dataclass(frozen=True)
class LockHolder:
    user: str
    uid: int
    pid: int
    run: str
    since: str


class WorkflowLock:
    def __init__(self, runtime_dir: Path, name: str) -> None:
        self.name = name
        self.path = runtime_dir / "locks" / f"{name}.lock"
        self._fd: int | None = None

    def acquire(self, holder: LockHolder) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_symlink():
            raise LockError(f"lock file {self.path} is a symlink; refusing to use it — remove it")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            current = _read_holder(fd)
            os.close(fd)
            if current is None:
                raise LockError(
                    f"workflow lock {self.name!r} is held by another run on this host "
                    f"({self.path}); wait for it to finish"
                ) from None
            raise LockError(
                f"workflow lock {self.name!r} is held: locked by {current.user} "
                f"(uid {current.uid}), pid {current.pid}, run {current.run}, since "
                f"{current.since} — wait for it to finish, or `console cancel {current.run}`"
            ) from None
        payload = json.dumps(holder.__dict__, sort_keys=True).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, payload, 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> LockHolder | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
        return LockHolder(
            user=str(data["user"]),
            uid=int(data["uid"]),
            pid=int(data["pid"]),
            run=str(data["run"]),
            since=str(data["since"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
