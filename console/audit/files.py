"""Byte-level access to an audit file: reading it backwards, counting lines, I/O errors.

Opening it (safely) is opening.py's job.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

from console.errors import AuditError

BACKWARD_CHUNK = 64 * 1024
# Reading backwards starts small (a writer wants two lines of ~0.5 KiB) and doubles.
FIRST_BACKWARD_CHUNK = 4 * 1024
FORWARD_CHUNK = 4 * 1024 * 1024


def io_error(path: Path, exc: OSError, doing: str) -> AuditError:
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    return AuditError(f"cannot {doing} {path}: {reason}")


def lines_backwards(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Complete lines ending at or before `end`, last first, as (offset, bytes without `\\n`).

    `end` is 0 or the offset just after a newline. The file is read in chunks from the end,
    so the cost is the size of the lines taken, not the size of the file.
    """
    chunk = FIRST_BACKWARD_CHUNK
    buf = b""
    buf_start = end
    line_end = end  # offset just after the newline of the next line to give
    while line_end > 0:
        # The newline that ends the previous line, searched for before this line's own newline.
        newline = buf.rfind(b"\n", 0, max(line_end - 1 - buf_start, 0))
        if newline < 0 and buf_start > 0:
            read_from = max(0, buf_start - chunk)
            buf = os.pread(fd, buf_start - read_from, read_from) + buf[: line_end - buf_start]
            buf_start = read_from
            chunk = min(chunk * 2, BACKWARD_CHUNK * 16)
            continue
        line_start = buf_start + newline + 1 if newline >= 0 else 0
        yield line_start, buf[line_start - buf_start : line_end - 1 - buf_start]
        line_end = line_start


def count_lines(fd: int, end: int) -> int:
    """How many newlines lie before `end`: the 1-based number of the line starting there, less 1."""
    count = 0
    offset = 0
    while offset < end:
        data = os.pread(fd, min(FORWARD_CHUNK, end - offset), offset)
        if not data:
            break
        count += data.count(b"\n")
        offset += len(data)
    return count


def torn_start(fd: int, size: int) -> int:
    """Where the torn remainder begins (just after the last newline); `size` if there is none."""
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    offset = size
    while offset > 0:
        read_from = max(0, offset - BACKWARD_CHUNK)
        newline = os.pread(fd, offset - read_from, read_from).rfind(b"\n")
        if newline >= 0:
            return read_from + newline + 1
        offset = read_from
    return 0
