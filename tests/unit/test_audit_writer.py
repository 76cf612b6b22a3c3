"""The writer: torn tails moved aside, damaged tails refused, other writers noticed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.audit.log import AuditLog, read_records, verify_chain
from console.errors import AuditError

# Each example writes a file of its own in the shared tmp_path.
FIXTURE_REUSED = HealthCheck.function_scoped_fixture


def entry(number: int, run: str = "r-1") -> dict[str, Any]:
    return {"run": run, "type": "step.ready", "step": f"s{number}", "data": {"n": number}}


def write_trail(path: Path, count: int = 5) -> None:
    with AuditLog(path) as log:
        for number in range(count):
            log.append(entry(number))


def test_torn_tail_is_moved_aside_and_recorded_before_the_next_entry(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    torn = b'{"actor":{"uid":1000,"us'
    with path.open("ab") as handle:
        handle.write(torn)
    with AuditLog(path) as log:
        appended = log.append(entry(99))
    moved = tmp_path / "audit.jsonl.torn-6"
    assert moved.read_bytes() == torn
    records = list(read_records(path))
    recovered = records[5]
    assert recovered["type"] == "audit.recovered_tail"
    assert recovered["run"] == ""
    assert recovered["seq"] == 6
    assert recovered["data"] == {"moved_to": str(moved), "torn_bytes": len(torn)}
    assert appended["seq"] == 7 and records[6] == appended
    assert verify_chain(path).ok


def test_open_writer_recovers_a_tail_torn_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append(entry(1))
        # Another writer crashed mid-line after this one's append.
        crash = (
            "import os, sys; os.write(os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND), b'{\"half')"
        )
        subprocess.run([sys.executable, "-c", crash, str(path)], check=True)
        log.append(entry(2))
    types = [r["type"] for r in read_records(path)]
    assert types == ["step.ready", "audit.recovered_tail", "step.ready"]
    assert (tmp_path / "audit.jsonl.torn-2").read_bytes() == b'{"half'
    assert verify_chain(path).ok


def test_torn_first_line_is_recovered_from_genesis(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"data":{')
    with AuditLog(path) as log:
        log.append(entry(1))
    assert (tmp_path / "audit.jsonl.torn-1").read_bytes() == b'{"data":{'
    assert [r["seq"] for r in read_records(path)] == [1, 2]
    assert verify_chain(path).ok


def test_an_earlier_torn_copy_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path, 2)
    (tmp_path / "audit.jsonl.torn-3").write_bytes(b"kept from before")
    with path.open("ab") as handle:
        handle.write(b"{")
    with AuditLog(path) as log:
        log.append(entry(3))
    assert (tmp_path / "audit.jsonl.torn-3").read_bytes() == b"kept from before"
    assert (tmp_path / "audit.jsonl.torn-3.2").read_bytes() == b"{"


def damage_line(path: Path, number: int) -> bytes:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[number - 1] = lines[number - 1].replace(b'"n":', b'"n":1')
    path.write_bytes(b"".join(lines))
    return path.read_bytes()


@pytest.mark.parametrize("bad_line", [5, 4])
def test_writer_refuses_a_damaged_tail_and_names_the_line(tmp_path: Path, bad_line: int) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    before = damage_line(path, bad_line)
    with AuditLog(path) as log:
        for _attempt in range(2):
            with pytest.raises(AuditError) as caught:
                log.append(entry(9))
            assert f"{path}:{bad_line}:" in caught.value.message
            assert "console audit verify" in caught.value.message
    assert path.read_bytes() == before


def test_writer_refuses_rather_than_recovers_when_the_line_before_a_torn_tail_is_bad(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    damage_line(path, 5)
    with path.open("ab") as handle:
        handle.write(b'{"torn')
    before = path.read_bytes()
    with AuditLog(path) as log, pytest.raises(AuditError, match=r"audit\.jsonl:5:"):
        log.append(entry(9))
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.torn-*"))


def test_writer_checks_only_the_tail(tmp_path: Path) -> None:
    """Damage deep in the file is for `console audit verify`; the writer stays cheap."""
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    damage_line(path, 2)
    with AuditLog(path) as log:
        assert log.append(entry(9))["seq"] == 6
    assert verify_chain(path).first_bad_line == 2


def test_two_writers_in_one_process_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as first, AuditLog(path) as second:
        for number in range(10):
            (first if number % 3 else second).append(entry(number))
        assert first.head() == second.head()
        assert first.head()[0] == 10
    report = verify_chain(path)
    assert report.ok and report.lines == 10


def test_writer_follows_a_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append(entry(1))
        log.append(entry(2))
        path.rename(tmp_path / "audit.jsonl.1")
        record = log.append(entry(3))
    assert record["seq"] == 1
    assert verify_chain(path).ok and verify_chain(tmp_path / "audit.jsonl.1").lines == 2


def test_sync_and_fsync_always_write_the_same_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, fsync_always=True) as log:
        log.append(entry(1))
        log.append(entry(2), sync=True)
    assert verify_chain(path).lines == 2


def test_head_of_a_new_file_is_genesis(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl") as log:
        assert log.head() == (0, "0" * 64)


def test_directory_in_the_way_is_a_clear_error_when_the_writer_opens(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.mkdir()
    with pytest.raises(AuditError, match="is a directory"):
        AuditLog(path)


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(AuditError, match="permission denied"):
        AuditLog(locked / "audit.jsonl")


def test_records_read_back_as_json(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path, 3)
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [1, 2, 3]
    assert [r["data"]["n"] for r in read_records(path)] == [0, 1, 2]


@settings(max_examples=150, deadline=None, suppress_health_check=[FIXTURE_REUSED])
@given(garbage=st.binary(max_size=600), keep_lines=st.integers(0, 3))
def test_any_existing_content_gives_an_append_or_an_audit_error(
    tmp_path: Path, garbage: bytes, keep_lines: int
) -> None:
    path = tmp_path / f"audit-{os.urandom(6).hex()}.jsonl"
    write_trail(path, keep_lines)
    with path.open("ab") as handle:
        handle.write(garbage)
    with AuditLog(path) as log:
        try:
            record = log.append(entry(1))
        except AuditError as error:
            assert "console audit verify" in error.message
        else:
            assert log.head() == (record["seq"], record["hash"])


def test_deeply_nested_garbage_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"[" * 100_000 + b"\n")
    report = verify_chain(path)
    assert (report.kind, report.first_bad_line) == ("not_json", 1)
    with pytest.raises(AuditError, match="not a JSON object"):
        list(read_records(path))
