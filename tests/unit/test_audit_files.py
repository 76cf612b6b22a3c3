"""Reading an audit file backwards: the writer's and `tail`'s way to its last lines."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.audit.files import count_lines, lines_backwards, torn_start

line_bytes = st.binary(max_size=9000).map(lambda raw: raw.replace(b"\n", b"."))


# Each example writes the same file anew, so sharing tmp_path between examples is fine.
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(line_bytes, max_size=30), torn=line_bytes)
def test_lines_backwards_gives_every_whole_line_last_first(
    tmp_path: Path, lines: list[bytes], torn: bytes
) -> None:
    path = tmp_path / "lines"
    whole = b"".join(line + b"\n" for line in lines)
    path.write_bytes(whole + torn)
    fd = os.open(path, os.O_RDONLY)
    try:
        end = torn_start(fd, len(whole) + len(torn))
        assert end == len(whole)
        found = list(lines_backwards(fd, end))
        assert [line for _offset, line in found] == lines[::-1]
        for offset, line in found:
            assert whole[offset : offset + len(line) + 1] == line + b"\n"
            assert count_lines(fd, offset) == whole[:offset].count(b"\n")
    finally:
        os.close(fd)
