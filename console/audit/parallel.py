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

MIN_PARALLEL_BYTES = 32 * 1024 * 1024

# (lines, first seq, first prev, last hash, hash at the kept head's seq if in range)
RangeFacts = tuple[int, int, bytes, bytes, bytes | None]


def verify_intact(
    path: Path,
    head: tuple[int, str] | None,
    workers: int,
    min_bytes: int = MIN_PARALLEL_BYTES,
) -> tuple[int, str] | None:
    """(last seq, last hash) when every line verifies and `head` matches; else None."""
    try:
        size = path.stat().st_size
        if workers < 2 or size < max(min_bytes, 1):
            return None
        bounds = _split(path, size, workers)
    except OSError:
        return None
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


def _split(path: Path, size: int, workers: int) -> list[int] | None:
    with path.open("rb") as file:
        file.seek(size - 1)
        if file.read(1) != b"\n":
            return None  # a torn or growing tail: the sequential verifier handles it
        bounds = [0]
        for part in range(1, workers):
            file.seek(size * part // workers)
            file.readline()
            bounds.append(max(file.tell(), bounds[-1]))
        bounds.append(size)
    return bounds


def _check_range(path: str, start: int, end: int, head_seq: int) -> RangeFacts | None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
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
