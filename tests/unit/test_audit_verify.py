"""verify_chain names the first bad line and what happened to it, for every kind of damage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from console.audit.chain import GENESIS, canonical_json
from console.audit.log import AuditLog, verify_chain
from console.errors import AuditError


def write_trail(path: Path, count: int = 6) -> list[bytes]:
    with AuditLog(path) as log:
        for number in range(count):
            log.append({"run": "r-1", "type": "step.ready", "step": f"s{number}", "data": {}})
    return path.read_bytes().splitlines(keepends=True)


def forge(record: dict[str, object]) -> bytes:
    """A line as a forger with the format in hand would write it: hash recomputed."""
    unhashed = {k: v for k, v in record.items() if k != "hash"}
    digest = hashlib.sha256(canonical_json(unhashed).encode()).hexdigest()
    return (canonical_json({**unhashed, "hash": digest}) + "\n").encode()


def head_of(lines: list[bytes], seq: int) -> tuple[int, str]:
    return seq, json.loads(lines[seq - 1])["hash"]


def test_intact_file_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    report = verify_chain(path, head=head_of(lines, 6))
    assert report.ok and report.kind is None and report.first_bad_line is None
    assert (report.lines, report.last_seq, report.last_hash) == (6, 6, head_of(lines, 6)[1])
    assert report.message == f"ok: 6 lines, head {report.head}"


def test_empty_file_verifies_with_genesis_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")
    report = verify_chain(path)
    assert report.ok and report.head == f"0:{GENESIS}"


def test_modified_field_is_caught_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    lines[2] = lines[2].replace(b'"step":"s2"', b'"step":"sX"')
    path.write_bytes(b"".join(lines))
    report = verify_chain(path)
    assert (report.ok, report.kind, report.first_bad_line) == (False, "modified", 3)
    assert (report.lines, report.last_seq) == (2, 2)
    assert f"{path}:3:" in report.message and "does not match its hash" in report.message


def test_rewritten_line_with_recomputed_hash_is_caught_by_the_next_prev(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    record = json.loads(lines[2])
    record["step"] = "sX"
    lines[2] = forge(record)
    path.write_bytes(b"".join(lines))
    report = verify_chain(path)
    assert (report.kind, report.first_bad_line, report.lines) == ("modified", 3, 2)
    assert "line 4's prev does not match the hash of line 3" in report.message


def test_deleted_line_is_caught_with_the_missing_seq(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    del lines[3]
    path.write_bytes(b"".join(lines))
    report = verify_chain(path)
    assert (report.kind, report.first_bad_line) == ("deleted_or_reordered", 4)
    assert "expected seq 4, found seq 5" in report.message


def test_deleted_first_lines_are_caught_on_line_one(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    path.write_bytes(b"".join(lines[2:]))
    report = verify_chain(path)
    assert (report.kind, report.first_bad_line, report.lines) == ("deleted_or_reordered", 1, 0)
    assert "seq 1..2" in report.message


def test_swapped_lines_are_caught_on_the_first_of_them(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"".join(lines))
    report = verify_chain(path)
    assert (report.kind, report.first_bad_line) == ("deleted_or_reordered", 2)
    assert "expected seq 2, found seq 3" in report.message


def test_inserted_forged_line_is_caught_by_seq_and_prev(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    before = json.loads(lines[2])  # seq 3
    forged = forge({
        "run": "r-1", "type": "approval.given", "step": "s3", "data": {"reason": "trust me"},
        "ts": before["ts"], "seq": 4, "prev": before["hash"],
    })
    lines.insert(3, forged)  # the forged line chains from line 3 and takes seq 4
    path.write_bytes(b"".join(lines))
    report = verify_chain(path)
    assert (report.kind, report.first_bad_line) == ("inserted", 4)
    assert "expected seq 5, found seq 4 again on line 5" in report.message


def test_torn_tail_is_reported_as_such_and_the_lines_before_count(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    path.write_bytes(b"".join(lines) + lines[0][:25])
    report = verify_chain(path)
    assert (report.ok, report.kind, report.first_bad_line) == (False, "torn_tail", 7)
    assert (report.lines, report.last_seq) == (6, 6)
    assert "25 bytes without a newline" in report.message and "audit.jsonl.torn-7" in report.message


def test_missing_final_newline_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    path.write_bytes(b"".join(lines)[:-1])
    report = verify_chain(path)
    assert (report.kind, report.first_bad_line, report.lines) == ("torn_tail", 6, 5)


def test_garbage_line_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    lines.insert(2, b"hello there\n")
    path.write_bytes(b"".join(lines))
    report = verify_chain(path)
    assert (report.kind, report.first_bad_line) == ("not_json", 3)
    assert "not JSON" in report.message


def test_empty_line_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    lines.insert(4, b"\n")
    path.write_bytes(b"".join(lines))
    report = verify_chain(path)
    assert (report.kind, report.first_bad_line) == ("not_json", 5)
    assert "empty" in report.message


def test_cut_tail_is_caught_only_with_a_kept_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    kept = head_of(lines, 6)
    path.write_bytes(b"".join(lines[:4]))
    assert verify_chain(path).ok  # the chain itself cannot tell
    report = verify_chain(path, head=kept)
    assert (report.ok, report.kind, report.first_bad_line) == (False, "cut_before_head", 5)
    assert "seq 5..6 were removed" in report.message


def test_kept_head_with_another_hash_is_a_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    report = verify_chain(path, head=(3, "f" * 64))
    assert (report.ok, report.kind, report.first_bad_line) == (False, "head_mismatch", 3)
    assert report.lines == 2
    assert verify_chain(path, head=head_of(lines, 3)).ok


def test_whole_trail_rewritten_is_caught_by_the_kept_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    kept = head_of(lines, 6)
    prev = GENESIS
    rewritten = []
    for line in lines:
        record = json.loads(line)
        record["data"] = {"rewritten": True}
        record["prev"] = prev
        new_line = forge(record)
        prev = json.loads(new_line)["hash"]
        rewritten.append(new_line)
    path.write_bytes(b"".join(rewritten))
    assert verify_chain(path).ok
    report = verify_chain(path, head=kept)
    assert (report.kind, report.first_bad_line) == ("head_mismatch", 6)


def test_chain_damage_is_reported_before_the_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_trail(path)
    lines[1] = lines[1].replace(b"s1", b"s9")
    path.write_bytes(b"".join(lines) + b'{"torn')
    assert verify_chain(path).first_bad_line == 2


def test_large_lines_across_read_chunks_verify(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        for number in range(3):
            blob = "x" * (3 * 1024 * 1024 + number)
            log.append({"run": "r", "type": "t", "data": {"blob": blob}})
    assert verify_chain(path).lines == 3


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_paths_raise_a_clear_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "audit.jsonl"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(AuditError, match=r"no audit file there|is a directory"):
        verify_chain(path)
