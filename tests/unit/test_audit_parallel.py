"""The multi-process fast path of `console audit verify`: it says "intact" only when the
sequential verifier would, and stays silent (None) on anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.audit.log import AuditLog, verify_chain
from console.audit.parallel import verify_intact


def _trail(path: Path, count: int) -> None:
    with AuditLog(path) as log:
        for i in range(count):
            log.append({"run": "r", "type": "step.ready", "step": f"s{i}", "data": {"i": i}})


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    _trail(path, 200)
    return path


@pytest.mark.parametrize("workers", [2, 3, 7])
def test_an_intact_trail_gives_the_sequential_head(trail: Path, workers: int) -> None:
    report = verify_chain(trail)
    assert verify_intact(trail, None, workers, min_bytes=0) == (report.last_seq, report.last_hash)


def test_a_kept_head_must_match(trail: Path) -> None:
    report = verify_chain(trail)
    seq = 120
    digest = json.loads(trail.read_bytes().splitlines()[seq - 1])["hash"]
    assert verify_intact(trail, (seq, digest), 2, min_bytes=0) == (200, report.last_hash)
    assert verify_intact(trail, (seq, "0" * 64), 2, min_bytes=0) is None
    assert verify_intact(trail, (400, digest), 2, min_bytes=0) is None


def test_a_modified_line_in_any_range_is_not_intact(trail: Path) -> None:
    data = trail.read_bytes().splitlines(keepends=True)
    data[170] = data[170].replace(b'"i":170', b'"i":171')
    trail.write_bytes(b"".join(data))
    assert verify_intact(trail, None, 2, min_bytes=0) is None
    assert verify_chain(trail, workers=2).first_bad_line == 171


def test_lines_swapped_across_the_seam_are_not_intact(trail: Path) -> None:
    data = trail.read_bytes().splitlines(keepends=True)
    data[99], data[100] = data[100], data[99]
    trail.write_bytes(b"".join(data))
    assert verify_intact(trail, None, 2, min_bytes=0) is None


def test_a_deleted_line_at_the_seam_is_not_intact(trail: Path) -> None:
    data = trail.read_bytes().splitlines(keepends=True)
    del data[100]
    trail.write_bytes(b"".join(data))
    assert verify_intact(trail, None, 2, min_bytes=0) is None


def test_a_torn_tail_is_left_to_the_sequential_verifier(trail: Path) -> None:
    with trail.open("ab") as handle:
        handle.write(b'{"seq": 201')
    assert verify_intact(trail, None, 2, min_bytes=0) is None
    assert verify_chain(trail, workers=2).kind == "torn_tail"
