"""Verifying a large audit file on several cores: a fast "intact", or nothing.

Each worker process checks the lines of one byte range (hashes, seq and prev within the
range); the parent joins the ranges. Any doubt (a bad line, a torn tail, a seam that does
not join) returns None, and the sequential verifier works out what is wrong and where.
Only the CLI uses this: forking from a process with threads (the UI) is not safe.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from itertools import pairwise
from multiprocessing import get_context
from pathlib import Path

from console.audit.chain import GENESIS, inspect_span
from console.audit.files import FORWARD_CHUNK
from console.audit.opening import open_for_reading
from console.errors import AuditError

MIN_PARALLEL_BYTES = 32 * 1024 * 1024
BOUNDARY_CHUNK = 64 * 1024

# (lines, first seq, first prev, last hash, hash at the kept head's seq if in range)
RangeFacts = tuple[int, int, bytes, bytes, bytes | None]


def verify_intact(
    path: Path,
    head: tuple[int, str] | None,
    workers: int,
    min_bytes: int = MIN_PARALLEL_BYTES,
    *,
    identity: tuple[int, int] | None = None,
) -> tuple[int, str] | None:
    """(last seq, last hash) when every line verifies and `head` matches; else None.

    The file is opened as the sequential verifier opens it (a regular file, no link); every
    worker checks it opened the same file (`identity`: st_dev, st_ino, if given).
    """
    if workers < 2:
        return None
    fd = open_for_reading(path)
    try:
        info = os.fstat(fd)
        identity = identity or (info.st_dev, info.st_ino)
        if (info.st_dev, info.st_ino) != identity or info.st_size < max(min_bytes, 1):
            return None
        bounds = _split(fd, info.st_size, workers)
    except OSError:
        return None
    finally:
        os.close(fd)
    if bounds is None:
        return None
    head_seq = head[0] if head is not None else -1
    ranges = list(pairwise(bounds))
    with ProcessPoolExecutor(len(ranges), mp_context=get_context("fork")) as pool:
        parts = list(
            pool.map(
                _check_range,
                [str(path)] * len(ranges),
                [start for start, _ in ranges],
                [end for _, end in ranges],
                [head_seq] * len(ranges),
                [identity] * len(ranges),
            )
        )
    expected, prev, kept = 1, GENESIS.encode("ascii"), None
    for part in parts:
        if part is None:
            return None
        lines, first_seq, first_prev, last_hash, at_head = part
        if lines == 0:
            continue
        if first_seq != expected or first_prev != prev:
            return None
        expected, prev = first_seq + lines, last_hash
        kept = at_head if at_head is not None else kept
    last_seq = expected - 1
    if head is not None:
        if head_seq == 0:
            return (last_seq, prev.decode()) if head[1] == GENESIS else None
        if kept is None or kept.decode() != head[1].lower():
            return None
    return last_seq, prev.decode("ascii")


def _split(fd: int, size: int, workers: int) -> list[int] | None:
    if os.pread(fd, 1, size - 1) != b"\n":
        return None  # a torn or growing tail: the sequential verifier handles it
    bounds = [0]
    for part in range(1, workers):
        at = size * part // workers
        newline = -1
        while newline < 0 and at < size:
            chunk = os.pread(fd, min(BOUNDARY_CHUNK, size - at), at)
            newline = chunk.find(b"\n")
            at += len(chunk) if newline < 0 else newline + 1
        bounds.append(max(at, bounds[-1]))
    bounds.append(size)
    return bounds


def _check_range(
    path: str, start: int, end: int, head_seq: int, identity: tuple[int, int]
) -> RangeFacts | None:
    try:
        fd = open_for_reading(Path(path))
    except AuditError:
        return None
    try:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != identity:
            return None  # replaced since the parent looked: let the sequential check decide
        os.lseek(fd, start, os.SEEK_SET)
        lines, first_seq, first_prev, prev = 0, 0, b"", b""
        at_head: bytes | None = None
        rest, left = b"", end - start
        while left > 0:
            chunk = os.read(fd, min(FORWARD_CHUNK, left))
            if not chunk:
                return None
            left -= len(chunk)
            buf = rest + chunk if rest else chunk
            view = memoryview(buf)
            at = 0
            while (stop := buf.find(b"\n", at)) >= 0:
                facts = inspect_span(buf, view, at, stop)
                if facts is None:
                    return None
                seq, digest, line_prev = facts
                if lines == 0:
                    first_seq, first_prev = seq, line_prev
                elif seq != first_seq + lines or line_prev != prev:
                    return None
                if seq == head_seq:
                    at_head = digest
                prev = digest
                lines += 1
                at = stop + 1
            rest = buf[at:]
        return None if rest else (lines, first_seq, first_prev, prev, at_head)
    finally:
        os.close(fd)
