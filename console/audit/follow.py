"""Following an audit file as other processes append to it (watchfiles on its directory)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from watchfiles import Change, awatch

from console.audit.files import FORWARD_CHUNK
from console.audit.opening import open_existing
from console.errors import AuditError

# A change notice can be missed between reading the file and the watcher starting; looking
# again this often bounds how late such a line shows up.
_RECHECK_MS = 1000
_ABSENT_DIRECTORY_POLL_S = 0.5


async def follow(
    path: Path | str,
    from_start: bool = False,
    stop: asyncio.Event | None = None,
    *,
    offset: int | None = None,
    ready: asyncio.Event | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yield each complete record appended to `path`, until `stop` is set (or forever).

    Starts at the file's end (its start with `from_start`, or byte `offset`). A file that
    does not exist yet is waited for; a file replaced (rotated) or truncated is read again
    from its start. Raises AuditError if the path is (or becomes) a symbolic link or
    anything but a regular file.

    `ready` is set once the starting position is taken and what was already there from it
    is read (or, with no file yet, once it is being waited for): every line appended from
    then on is yielded. The generator runs only when iterated, so before that nothing is.
    """
    async for record, _line in follow_lines(path, from_start, stop, offset=offset, ready=ready):
        yield record


async def follow_lines(
    path: Path | str,
    from_start: bool = False,
    stop: asyncio.Event | None = None,
    *,
    offset: int | None = None,
    ready: asyncio.Event | None = None,
) -> AsyncIterator[tuple[dict[str, Any], bytes]]:
    """As `follow`, with each record's line as it is in the file (without its newline)."""
    path = Path(path)
    reader = _Reader(path, 0 if from_start else offset)
    try:
        first = reader.read_new()
        if ready is not None:
            # A line appended from here on is after the position taken; if it comes before
            # the watch below is in place, the next recheck (`_RECHECK_MS`) reads it.
            ready.set()
        for item in first:
            yield item
        while stop is None or not stop.is_set():
            if not path.parent.is_dir():
                await _sleep_or_stop(stop, _ABSENT_DIRECTORY_POLL_S)
                for item in reader.read_new():
                    yield item
                continue
            async for _changes in awatch(
                path.parent,
                watch_filter=_only(path.name),
                stop_event=stop,
                debounce=50,
                step=10,
                rust_timeout=_RECHECK_MS,
                yield_on_timeout=True,
                recursive=False,
            ):
                for item in reader.read_new():
                    yield item
                if not path.parent.is_dir():
                    break
    finally:
        reader.close()


def _only(name: str) -> Callable[[Change, str], bool]:
    def accept(change: Change, changed_path: str) -> bool:
        return os.path.basename(changed_path) == name

    return accept


async def _sleep_or_stop(stop: asyncio.Event | None, seconds: float) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class _Reader:
    """Reads what was appended since last time; keeps a partial last line for later."""

    def __init__(self, path: Path, start: int | None) -> None:
        self.path = path
        self.fd: int | None = None
        self.inode = -1
        self.position = 0
        self.partial = b""
        try:
            size = os.lstat(path).st_size
        except FileNotFoundError:
            size = 0
        # None: from the end as it is now.
        self.start = size if start is None else start
        self.opened_once = False

    def read_new(self) -> list[tuple[dict[str, Any], bytes]]:
        try:
            # lstat: a link put in the file's place is a change (and is refused), not followed.
            inode = os.lstat(self.path).st_ino
        except FileNotFoundError:
            inode = -1
        records: list[tuple[dict[str, Any], bytes]] = []
        if inode != self.inode:
            if self.fd is not None:
                records.extend(self._drain())  # what the old file got before it was replaced
                self.close()
            if inode != -1:
                self._open()
        if self.fd is None:
            return records
        size = os.fstat(self.fd).st_size
        whole_lines_end = self.position - len(self.partial)
        if size < whole_lines_end:
            self.position, self.partial = 0, b""  # truncated: start again
        elif self.partial and (size < self.position or not self._partial_still_there()):
            # A torn line was moved aside and the file cut back to its last whole line.
            self.position, self.partial = whole_lines_end, b""
        records.extend(self._drain())
        return records

    def _open(self) -> None:
        try:
            self.fd = open_existing(self.path)  # a regular file, never through a link
        except FileNotFoundError:
            return
        self.inode = os.fstat(self.fd).st_ino
        # The file that was there when following began starts at `start`; any later one is
        # new, so all of it is.
        self.position = self.start if not self.opened_once else 0
        self.opened_once = True
        self.partial = b""

    def _partial_still_there(self) -> bool:
        assert self.fd is not None
        at = self.position - len(self.partial)
        return os.pread(self.fd, len(self.partial), at) == self.partial

    def _drain(self) -> list[tuple[dict[str, Any], bytes]]:
        assert self.fd is not None
        records: list[tuple[dict[str, Any], bytes]] = []
        while data := os.pread(self.fd, FORWARD_CHUNK, self.position):
            self.position += len(data)
            lines = (self.partial + data).split(b"\n")
            self.partial = lines.pop()
            records.extend((self._parse(line), line) for line in lines)
        return records

    def _parse(self, line: bytes) -> dict[str, Any]:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if not isinstance(record, dict):
            raise AuditError(
                f"{self.path}: a line appended to it is not a JSON object — "
                f"run `console audit verify {self.path}` to see what is wrong"
            )
        return record

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.inode = -1
