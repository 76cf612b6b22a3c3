"""Reading an audit file: its head, its records, its last records."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from console.audit.chain import GENESIS, inspect_line
from console.audit.files import (
    FORWARD_CHUNK,
    count_lines,
    io_error,
    lines_backwards,
    torn_start,
)
from console.audit.opening import open_for_reading
from console.errors import AuditError


@dataclass(frozen=True)
class TailState:
    """The end of the chain as found on disk."""

    seq: int
    hash: str
    good_end: int  # offset just after the last complete line
    torn_bytes: int  # bytes after it without a newline (a crash mid-write)


def scan_tail(fd: int, path: Path, size: int) -> TailState:
    """Check the last two complete lines and return the chain's head; never reads the whole file.

    Raises AuditError naming the line when the end of the chain does not hold together.
    """
    good_end = torn_start(fd, size)
    newest = islice(lines_backwards(fd, good_end), 2)
    last = next(newest, None)
    if last is None:
        return TailState(0, GENESIS, good_end, size - good_end)
    facts = inspect_line(last[1])
    if facts is None:
        raise _damaged(fd, path, last[0], "the last complete line does not match its hash")
    seq, digest, prev = facts
    before = next(newest, None)
    if before is None:
        if seq != 1 or prev != GENESIS.encode("ascii"):
            raise _damaged(fd, path, last[0], "the first line does not start the chain")
    else:
        before_facts = inspect_line(before[1])
        if before_facts is None:
            raise _damaged(fd, path, before[0], "the line does not match its hash")
        if before_facts[1] != prev or before_facts[0] + 1 != seq:
            raise _damaged(fd, path, last[0], "the last line does not chain from the one before")
    return TailState(seq, digest.decode("ascii"), good_end, size - good_end)


def _damaged(fd: int, path: Path, offset: int, what: str) -> AuditError:
    line = count_lines(fd, offset) + 1
    return AuditError(
        f"{path}:{line}: {what} — run `console audit verify {path}` to see what is wrong; "
        "nothing is appended to a damaged trail until it is moved aside (a new one then starts)"
    )


def read_head(path: Path) -> TailState:
    """The chain's head (SEQ, HASH) from the file's end, under a shared lock."""
    fd = open_for_reading(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return scan_tail(fd, path, os.fstat(fd).st_size)
    except OSError as exc:
        raise io_error(path, exc, "read") from None
    finally:
        os.close(fd)


def read_records(path: Path | str) -> Iterator[dict[str, Any]]:
    """Every complete record in file order; a torn last line (no newline) is left out.

    Reads, it does not verify: use verify_chain for that.
    """
    path = Path(path)
    fd = open_for_reading(path)
    try:
        rest = b""
        line_number = 0
        while chunk := os.read(fd, FORWARD_CHUNK):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                line_number += 1
                yield _parse(path, line_number, line)
    except OSError as exc:
        raise io_error(path, exc, "read") from None
    finally:
        os.close(fd)


def last_records(
    path: Path, count: int, run: str | None = None
) -> tuple[list[tuple[dict[str, Any], bytes]], int]:
    """The last `count` records (of `run` if given), oldest first, each with its line, and
    the offset read up to (where following should start)."""
    fd = open_for_reading(path)
    try:
        end = torn_start(fd, os.fstat(fd).st_size)
        found: list[tuple[dict[str, Any], bytes]] = []
        for offset, line in lines_backwards(fd, end):
            if len(found) >= count:
                break
            record = _parse(path, None, line, fd=fd, offset=offset)
            if run is None or record.get("run") == run:
                found.append((record, line))
    except OSError as exc:
        raise io_error(path, exc, "read") from None
    finally:
        os.close(fd)
    found.reverse()
    return found, end


def _parse(
    path: Path, line_number: int | None, line: bytes, *, fd: int | None = None, offset: int = 0
) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        record = None
    if isinstance(record, dict):
        return record
    if line_number is None and fd is not None:
        line_number = count_lines(fd, offset) + 1
    raise AuditError(
        f"{path}:{line_number}: the line is not a JSON object — "
        f"run `console audit verify {path}` to see what is wrong"
    )
