"""Verifying an audit file: the first line that breaks the chain, and what broke it.

The file is streamed in large chunks and each line is checked from its bytes (see chain.py):
no JSON parsing and no re-serialising unless a line fails, when `_diagnose` works out how.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from console.audit.chain import GENESIS, HASH_LENGTH, inspect_line, inspect_span
from console.audit.files import FORWARD_CHUNK, io_error
from console.audit.opening import open_for_reading, writable_warning

BadKind = Literal[
    "modified",
    "inserted",
    "deleted_or_reordered",
    "torn_tail",
    "not_json",
    "cut_before_head",
    "head_mismatch",
]

_RESTORE = "restore the file from a copy you trust, or keep it as evidence and move it aside"


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    lines: int  # complete lines that verified, from the first
    last_seq: int  # seq and hash of the last line that verified (0 and GENESIS if none)
    last_hash: str
    first_bad_line: int | None = None  # 1-based
    kind: BadKind | None = None
    message: str = ""
    # Set when others could write the file, so it could have been rewritten (see opening.py).
    warning: str = ""

    @property
    def head(self) -> str:
        return f"{self.last_seq}:{self.last_hash}"


def verify_chain(
    path: Path | str, head: tuple[int, str] | None = None, *, workers: int = 1
) -> VerifyReport:
    """Check every line of the file; with `head`, also that the file still holds that line.

    With `workers` > 1 a large file is first checked on that many processes (only from a
    process without threads: the CLI); any doubt falls back to the sequential check.
    Raises AuditError for anything but a regular file (a FIFO or a device is not read, a
    symbolic link is not followed); a file others can write is verified, with a `warning`.
    """
    path = Path(path)
    if head is not None and (head[0] < 0 or len(head[1]) != HASH_LENGTH):
        raise ValueError(f"a head is (seq >= 0, 64 hex digits), got {head!r}")
    fd = open_for_reading(path)
    try:
        warning = writable_warning(fd, path)
        info = os.fstat(fd)
        identity = (info.st_dev, info.st_ino)
        intact = None
        if workers > 1:
            # Here, not at the top: multiprocessing is for verifying, not for every run.
            from console.audit.parallel import verify_intact

            intact = verify_intact(path, head, workers, identity=identity)
        if intact is not None:
            last_seq, last_hash = intact
            report = VerifyReport(
                ok=True, lines=last_seq, last_seq=last_seq, last_hash=last_hash,
                message=f"ok: {last_seq} lines, head {last_seq}:{last_hash}",
            )
        else:
            report = _verify(fd, path, head)
    except OSError as exc:
        raise io_error(path, exc, "read") from None
    finally:
        os.close(fd)
    if warning:
        # Group or world write permission: the chain may hold, yet prove less.
        report = replace(report, warning=warning, message=f"{report.message}; {warning}")
    return report


def _verify(fd: int, path: Path, head: tuple[int, str] | None) -> VerifyReport:
    head_seq, head_hash = head if head is not None else (-1, "")
    kept_hash = head_hash.lower().encode("ascii")
    check = inspect_span
    # Every line so far verified with seq = its line number, so the next line's number is
    # also the seq it must have.
    expected = 1
    prev = before = GENESIS.encode("ascii")
    rest = b""
    waited_for_writers = False
    while True:
        chunk = os.read(fd, FORWARD_CHUNK)
        if not chunk:
            if not rest or waited_for_writers:
                break
            # A last line without a newline may be an append still being written: wait for
            # writers under a shared lock (released when the fd closes), then read on.
            fcntl.flock(fd, fcntl.LOCK_SH)
            waited_for_writers = True
            continue
        buf = rest + chunk if rest else chunk
        view = memoryview(buf)
        start = 0
        while (stop := buf.find(b"\n", start)) >= 0:
            facts = check(buf, view, start, stop)
            if facts is None or facts[0] != expected or facts[2] != prev:
                return _diagnose(path, buf[start:stop], expected, prev, before)
            if expected == head_seq and facts[1] != kept_hash:
                return _report(
                    path, expected, prev, "head_mismatch", expected,
                    f"line {expected} (seq {expected}) has hash {facts[1].decode()}, but the "
                    f"head you kept says {head_hash}: the trail up to there was rewritten — "
                    + _RESTORE,
                )
            before, prev = prev, facts[1]
            expected += 1
            start = stop + 1
        rest = buf[start:]
    last_seq = expected - 1
    if head_seq == 0 and kept_hash != GENESIS.encode("ascii"):
        return _report(
            path, 1, prev, "head_mismatch", 1,
            f"the head you kept is seq 0 with hash {head_hash}, but seq 0 is always the "
            f"genesis value {GENESIS}: check the head you passed",
        )
    if head_seq > last_seq:
        return _report(
            path, expected, prev, "cut_before_head", expected,
            f"the file ends at seq {last_seq}, before the head you kept (seq {head_seq}): "
            f"the lines with seq {expected}..{head_seq} were removed — " + _RESTORE,
        )
    if rest:
        return _report(
            path, expected, prev, "torn_tail", expected,
            f"the last line is torn ({len(rest)} bytes without a newline: a crash mid-write); "
            f"the {last_seq} lines before it verify. The next run that appends moves it aside "
            f"to {path.name}.torn-{expected} and records that it did",
        )
    return VerifyReport(
        ok=True,
        lines=last_seq,
        last_seq=last_seq,
        last_hash=prev.decode("ascii"),
        message=f"ok: {last_seq} lines, head {last_seq}:{prev.decode('ascii')}",
    )


def _report(
    path: Path, line_number: int, prev: bytes, kind: BadKind, bad_line: int, what: str
) -> VerifyReport:
    """A failed report; `line_number` is the line being checked (lines before it verified)."""
    return VerifyReport(
        ok=False,
        lines=line_number - 1,
        last_seq=line_number - 1,
        last_hash=prev.decode("ascii"),
        first_bad_line=bad_line,
        kind=kind,
        message=f"{path}:{bad_line}: {what}",
    )


def _diagnose(
    path: Path, line: bytes, expected: int, prev: bytes, before: bytes
) -> VerifyReport:
    """Why line `expected` (which must carry seq `expected`) does not continue the chain.

    `prev` is the hash of the line before it, `before` the hash of the line before that.
    """
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        what = "it is empty" if not line.strip() else f"it is not JSON ({exc})"
        return _report(path, expected, prev, "not_json", expected, f"{what} — {_RESTORE}")
    if not isinstance(record, dict):
        return _report(
            path, expected, prev, "not_json", expected, f"it is JSON but not an object — {_RESTORE}"
        )
    facts = inspect_line(line)
    if facts is None:
        return _report(
            path, expected, prev, "modified", expected,
            f"line {expected} (seq {record.get('seq', '?')}) was modified: its content does not "
            f"match its hash — {_RESTORE}",
        )
    if facts[0] > expected:
        missing = (
            f"seq {expected}" if facts[0] == expected + 1 else f"seq {expected}..{facts[0] - 1}"
        )
        return _report(
            path, expected, prev, "deleted_or_reordered", expected,
            f"expected seq {expected}, found seq {facts[0]}: the line(s) with {missing} were "
            f"deleted, or lines were reordered — {_RESTORE}",
        )
    if facts[0] < expected:
        first_inserted = max(facts[0], 1)
        return _report(
            path, expected, prev, "inserted", first_inserted,
            f"expected seq {expected}, found seq {facts[0]} again on line {expected}: line(s) "
            f"{first_inserted}..{expected - 1} were inserted (with recomputed hashes) or lines "
            f"were reordered — {_RESTORE}",
        )
    if expected == 1:
        return _report(
            path, 1, prev, "modified", 1,
            f"the first line does not chain from the genesis value: it was rewritten — {_RESTORE}",
        )
    return _report(
        path, expected - 1, before, "modified", expected - 1,
        f"line {expected}'s prev does not match the hash of line {expected - 1}: line "
        f"{expected - 1} was rewritten with a recomputed hash (or line {expected} was) — "
        + _RESTORE,
    )

