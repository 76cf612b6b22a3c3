"""The line format and the chain: what a writer puts on disk, and that it reads back."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.audit.chain import GENESIS, canonical_json, inspect_line, parse_head, record_hash
from console.audit.log import AuditLog, read_records, verify_chain
from console.errors import AuditError, UsageError
from console.events import (
    Actor,
    ApprovalGiven,
    GateOpened,
    RunStarted,
    StepFinished,
    event_from_json,
)


def sample_events() -> list[dict[str, Any]]:
    alice = Actor(user="alice", uid=1000, via="tui")
    return [
        RunStarted(
            run="r-1", workflow="payments", workflow_path="/w/payments.toml",
            file_hashes={"/w/payments.toml": "ab" * 32}, params={"version": "1.4.2"},
            steps=("build", "migrate"), user="alice", uid=1000, host="h", pid=42,
            version="0.1.0", concurrency=2, run_dir="/s/runs/r-1",
        ).to_json(),
        GateOpened(
            run="r-1", step="migrate", approvals_required=2, approvers=("@sre",),
            reason_required=True, deadline=None, approve_command="console approve r-1 migrate",
        ).to_json(),
        ApprovalGiven(
            run="r-1", step="migrate", actor=alice, reason="looks right — ünïcode ✓",
            approvals=1, approvals_required=2, binding={"uid": 1000},
        ).to_json(),
        StepFinished(
            run="r-1", step="build", attempt=1, outcome="succeeded", exit_code=0, error=None,
            duration_s=0.25, log_path="/s/runs/r-1/build.1.log", log_size=10, log_sha256="c" * 64,
        ).to_json(),
    ]


def test_records_round_trip_with_seq_prev_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    entries = sample_events()
    with AuditLog(path) as log:
        written = [log.append(entry) for entry in entries]
        assert log.head() == (4, written[-1]["hash"])
    records = list(read_records(path))
    assert records == written
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert records[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(records))
    for entry, record in zip(entries, records, strict=True):
        assert {k: record[k] for k in entry} == entry
        assert event_from_json(record).to_json() == entry


def test_each_line_is_canonical_json_and_hash_covers_it_without_hash(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        for entry in sample_events():
            log.append(entry)
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    for line in raw.decode("utf-8").splitlines(keepends=True):
        record = json.loads(line)
        assert line == canonical_json(record) + "\n"
        assert "ü" in line or "ApprovalGiven" not in line  # UTF-8, not \\u escapes
        unhashed = {k: v for k, v in record.items() if k != "hash"}
        assert hashlib.sha256(canonical_json(unhashed).encode()).hexdigest() == record["hash"]
        assert record_hash(record) == record["hash"]


def test_removing_the_hash_member_from_the_raw_line_gives_the_hashed_bytes(tmp_path: Path) -> None:
    """The verifier's shortcut: the last `,"hash":"…"` is the record's own, even when the
    data has a `hash` key of its own."""
    path = tmp_path / "audit.jsonl"
    tricky = {"run": "r,\"hash\":\"x", "type": "t", "data": {"hash": "d" * 64, "prev": "e" * 64}}
    with AuditLog(path) as log:
        record = log.append(tricky)
    line = path.read_bytes().rstrip(b"\n")
    member = b',"hash":"' + record["hash"].encode() + b'"'
    assert line.count(member) == 1
    without = line.replace(member, b"")
    assert without == canonical_json({k: v for k, v in record.items() if k != "hash"}).encode()
    assert inspect_line(line) == (1, record["hash"].encode(), GENESIS.encode())


def test_timestamp_is_kept_from_the_entry_or_set_now(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl") as log:
        ts = "2024-01-02T03:04:05.000006Z"
        given_ts = log.append({"run": "r", "type": "t", "ts": ts, "data": {}})
        now = log.append({"run": "r", "type": "t", "data": {}})
    assert given_ts["ts"] == "2024-01-02T03:04:05.000006Z"
    assert now["ts"].endswith("Z") and len(now["ts"]) == len("2024-01-02T03:04:05.000006Z")


def test_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "audit.jsonl"
    with AuditLog(path) as log:
        log.append({"run": "r", "type": "t", "data": {}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


@pytest.mark.parametrize(
    "entry",
    [
        {"run": "r", "type": "t"},
        {"run": "r", "type": "", "data": {}},
        {"run": 5, "type": "t", "data": {}},
        {"run": "r", "type": "t", "data": {}, "seq": 9},
        {"run": "r", "type": "t", "data": {}, "step": {"hash": "0" * 64}},
        {"run": "r", "type": "t", "data": {}, "ts": 1700000000},
        {"run": "r", "type": "t", "data": {"x": float("nan")}},
        {"run": "r", "type": "t", "data": {"x": object()}},
    ],
)
def test_malformed_entries_are_refused_and_nothing_is_written(
    tmp_path: Path, entry: dict[str, Any]
) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log, pytest.raises(AuditError):
        log.append(entry)
    assert not path.exists() or path.read_bytes() == b""


def test_a_lone_surrogate_is_kept_as_an_escape(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append({"run": "r", "type": "t", "data": {"text": "bad \ud800 text"}})
    path.read_bytes().decode("utf-8")
    record = next(read_records(path))
    assert record["data"]["text"] == "bad \ud800 text"
    assert record_hash(record) == record["hash"]
    assert verify_chain(path).ok


def test_parse_head() -> None:
    assert parse_head(f"12:{'A' * 64}") == (12, "a" * 64)
    for bad in ("12", f"x:{'a' * 64}", "3:abc", f"-1:{'a' * 64}", f"1:{'g' * 64}"):
        with pytest.raises(UsageError):
            parse_head(bad)


# tmp_path is shared by a test's examples; each example writes its own file (or, for the
# mutation test, rewrites the same mutated copy).
FIXTURE_REUSED = HealthCheck.function_scoped_fixture

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
entries = st.fixed_dictionaries(
    {
        "run": st.text(),
        "type": st.text(min_size=1),
        "data": st.dictionaries(st.text(), json_values),
    },
    optional={
        "step": st.text(),
        "actor": st.fixed_dictionaries(
            {"user": st.text(), "uid": st.integers(0, 2**32), "via": st.sampled_from(["tui"])}
        ),
        "ts": st.just("2024-05-01T12:00:00.000001Z"),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[FIXTURE_REUSED])
@given(batch=st.lists(entries, min_size=1, max_size=12))
def test_any_entries_round_trip_and_verify(tmp_path: Path, batch: list[dict[str, Any]]) -> None:
    path = tmp_path / f"audit-{os.urandom(6).hex()}.jsonl"
    with AuditLog(path) as log:
        written = [log.append(entry) for entry in batch]
    records = list(read_records(path))
    assert records == written
    for entry, record in zip(batch, records, strict=True):
        assert all(record[k] == v for k, v in entry.items())
    report = verify_chain(path)
    assert report.ok, report.message
    assert (report.lines, report.last_hash) == (len(batch), written[-1]["hash"])


@settings(max_examples=200, deadline=None, suppress_health_check=[FIXTURE_REUSED])
@given(data=st.data())
def test_any_single_byte_change_is_detected(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "audit.jsonl"
    if not path.exists():
        with AuditLog(path) as log:
            for entry in sample_events():
                log.append(entry)
    original = path.read_bytes()
    at = data.draw(st.integers(0, len(original) - 1), label="offset")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != original[at]), label="byte")
    mutated = tmp_path / "mutated.jsonl"
    mutated.write_bytes(original[:at] + bytes([byte]) + original[at + 1 :])
    report = verify_chain(mutated)
    assert not report.ok
    assert report.first_bad_line is not None
    assert report.first_bad_line == original[:at].count(b"\n") + 1


def test_every_byte_position_changed_is_caught_on_its_own_line(tmp_path: Path) -> None:
    """Exhaustive over positions (hypothesis above samples values): a newline, a digit, a
    quote and a NUL put anywhere in a valid file break it at the line holding that byte."""
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        for entry in sample_events():
            log.append(entry)
    original = path.read_bytes()
    mutated = tmp_path / "mutated.jsonl"
    for at in range(len(original)):
        for byte in b'\n0"\x00':
            if byte == original[at]:
                continue
            mutated.write_bytes(original[:at] + bytes([byte]) + original[at + 1 :])
            report = verify_chain(mutated)
            assert not report.ok, (at, byte)
            assert report.first_bad_line == original[:at].count(b"\n") + 1, (at, byte)
