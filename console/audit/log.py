"""The append-only, hash-chained audit trail: the writer, and the names others import.

One JSON line per event; each line's `hash` covers its content and its `prev` is the line
before's `hash`, so changing, removing or reordering a line breaks the chain at that line.
Several processes may append to one file: each append takes an exclusive flock, checks the
file's end (only when another process wrote since this one last did), writes its whole
lines with a single write and releases the lock.

Group commit: a writer may `stage` entries and `commit` them later, all at once: one lock,
one look at the file's end, one write (and one fsync, if asked) for the lot. The engine
stages the events of one pass of its loop and commits them at the end of it, and at once
(with fsync) when an event must be on disk before the engine acts on it. `append` commits
what is staged, then its own entry.
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
        self._staged: list[dict[str, Any]] = []
        self._current_fd()

    def append(self, entry: Mapping[str, Any], sync: bool = False) -> dict[str, Any]:
        """Write `entry` (an event's to_json()) as the next line, after any staged ones;
        return its full record.

        With `sync` (or fsync_always) the lines are on disk when this returns.
        """
        body = entry_body(entry)
        with self._lock:
            self._staged.append(body)
            records = self._commit(sync)
        self.committed(records)
        return records[-1]

    def stage(self, entry: Mapping[str, Any]) -> None:
        """Keep `entry` for the next `commit` (or `append`). Its form is checked now."""
        body = entry_body(entry)
        with self._lock:
            self._staged.append(body)

    @property
    def staged(self) -> int:
        return len(self._staged)

    def drop_staged(self) -> None:
        """Forget what is staged (the writer failed: those entries are reported lost)."""
        with self._lock:
            self._staged = []

    def commit(self, sync: bool = False) -> list[dict[str, Any]]:
        """Write every staged entry, in order, as the next lines: one lock and one write.
        Returns their records. With `sync` (or fsync_always) they are on disk on return.

        On an error, nothing staged was written and nothing stays staged.
        """
        with self._lock:
            if not self._staged:
                return []
            records = self._commit(sync)
        self.committed(records)
        return records

    def committed(self, records: list[dict[str, Any]]) -> None:
        """Called with each commit's records once they are written (for subclasses)."""

    def _commit(self, sync: bool) -> list[dict[str, Any]]:
        bodies, self._staged = self._staged, []
        fd = self._current_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            self._catch_up(fd)
            return self._write(fd, bodies, sync or self.fsync_always)
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
        """Commit what is staged (an error says so), then close the file."""
        try:
            self.commit()
        finally:
            self._close()

    def _close(self) -> None:
        with self._lock:
            self._staged = []
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
        self._write(fd, [entry_body(recovered.to_json())], sync=True)

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

    def _write(self, fd: int, bodies: list[dict[str, Any]], sync: bool) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        lines: list[bytes] = []
        seq, digest = self._seq, self._hash
        for body in bodies:
            seq += 1
            record, line = seal(body, seq, digest)
            digest = record["hash"]
            records.append(record)
            lines.append(line)
        data = b"".join(lines)
        written = os.write(fd, data)
        if written != len(data):
            # Disk full mid-write: take the partial lines back so the file ends on a newline.
            os.ftruncate(fd, self._known_size)
            raise AuditError(
                f"cannot append to {self.path}: only {written} of {len(data)} bytes were "
                "written (is the disk full?)"
            )
        if sync:
            os.fsync(fd)
        self._seq, self._hash = seq, digest
        self._known_size += written
        return records


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
