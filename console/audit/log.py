"""The append-only, hash-chained audit trail: the writer, and the names others import.

One JSON line per event; each line's `hash` covers its content and its `prev` is the line
before's `hash`, so changing, removing or reordering a line breaks the chain at that line.
Several processes may append to one file: each append takes an exclusive flock, checks the
file's end (only when another process wrote since this one last did), writes one whole line
with a single write and releases the lock.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from console.audit.chain import GENESIS, entry_body, seal
from console.audit.files import io_error
from console.audit.opening import create_beside, open_for_appending
from console.audit.reading import TailState, read_head, read_records, scan_tail
from console.audit.verify import VerifyReport, verify_chain
from console.errors import AuditError
from console.events import AuditRecoveredTail

__all__ = [
    "GENESIS",
    "AuditLog",
    "VerifyReport",
    "read_head",
    "read_records",
    "verify_chain",
]

class AuditLog:
    """Appends events to one audit file; safe to share the file with other processes."""

    def __init__(self, path: Path | str, fsync_always: bool = False) -> None:
        """Open the file now (creating it 0600, its directory 0700), so that a path unfit
        for the trail fails before anything relies on it (see opening.py for the rules)."""
        self.path = Path(path)
        self.fsync_always = fsync_always
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._inode = -1
        # The file's size after this writer's last look at it, and the chain's head then.
        # A different size under the lock means another process wrote: look again.
        self._known_size = -1
        self._seq = 0
        self._hash = GENESIS
        self._current_fd()

    def append(self, entry: Mapping[str, Any], sync: bool = False) -> dict[str, Any]:
        """Write `entry` (an event's to_json()) as the next line; return the full record.

        With `sync` (or fsync_always) the line is on disk when this returns.
        """
        body = entry_body(entry)
        with self._lock:
            fd = self._current_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                self._catch_up(fd)
                return self._write(fd, body, sync or self.fsync_always)
            except OSError as exc:
                self._known_size = -1
                raise io_error(self.path, exc, "append to") from None
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def head(self) -> tuple[int, str]:
        """(SEQ, HASH) of the chain's last line, as of now; (0, GENESIS) for an empty file."""
        with self._lock:
            fd = self._current_fd()
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                size = os.fstat(fd).st_size
                if size != self._known_size:
                    tail = scan_tail(fd, self.path, size)
                    return tail.seq, tail.hash
                return self._seq, self._hash
            except OSError as exc:
                raise io_error(self.path, exc, "read") from None
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._known_size = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _current_fd(self) -> int:
        """The open fd, reopened when the path now names another file (moved or rotated)."""
        try:
            # lstat: a link put in the file's place is a change (and is refused), not followed.
            inode = os.lstat(self.path).st_ino
        except FileNotFoundError:
            inode = -1
        except OSError as exc:
            raise io_error(self.path, exc, "open") from None
        if self._fd is not None and inode == self._inode:
            return self._fd
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        fd, created = open_for_appending(self.path)
        self._fd = fd
        self._inode = os.fstat(fd).st_ino
        self._known_size = -1
        if created:
            _sync_directory(self.path.parent)
        return fd

    def _catch_up(self, fd: int) -> None:
        """Under the lock: find the chain's head if anyone wrote since; move a torn tail aside."""
        size = os.fstat(fd).st_size
        if size == self._known_size:
            return
        tail = scan_tail(fd, self.path, size)
        self._seq, self._hash, self._known_size = tail.seq, tail.hash, size
        if tail.torn_bytes:
            self._recover_torn_tail(fd, tail)

    def _recover_torn_tail(self, fd: int, tail: TailState) -> None:
        torn_seq = tail.seq + 1
        torn = os.pread(fd, tail.torn_bytes, tail.good_end)
        moved_to = self._keep_torn(torn, torn_seq)
        os.ftruncate(fd, tail.good_end)
        os.fsync(fd)
        self._known_size = tail.good_end
        recovered = AuditRecoveredTail(run="", moved_to=str(moved_to), torn_bytes=len(torn))
        self._write(fd, entry_body(recovered.to_json()), sync=True)

    def _keep_torn(self, torn: bytes, torn_seq: int) -> Path:
        name = f"{self.path.name}.torn-{torn_seq}"
        candidate, attempt = name, 1
        while (keep := create_beside(self.path, candidate)) is None:
            attempt += 1
            candidate = f"{name}.{attempt}"
        try:
            os.write(keep, torn)
            os.fsync(keep)
        finally:
            os.close(keep)
        return self.path.with_name(candidate)

    def _write(self, fd: int, body: dict[str, Any], sync: bool) -> dict[str, Any]:
        record, line = seal(body, self._seq + 1, self._hash)
        written = os.write(fd, line)
        if written != len(line):
            # Disk full mid-line: take the partial line back so the file ends on a newline.
            os.ftruncate(fd, self._known_size)
            raise AuditError(
                f"cannot append to {self.path}: only {written} of {len(line)} bytes were "
                "written (is the disk full?)"
            )
        if sync:
            os.fsync(fd)
        self._seq, self._hash = record["seq"], record["hash"]
        self._known_size += written
        return record


def _sync_directory(directory: Path) -> None:
    """Make a new file's name durable, not only its content (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
