"""`console audit verify | head | tail` as real processes: output and exit codes."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from console.audit.log import AuditLog
from console.events import Actor, StepFinished
from console.paths import default_audit_path


def console(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", *args], capture_output=True, text=True, timeout=60
    )


def line_reader(stream: IO[str]) -> queue.Queue[str]:
    """The lines of `stream` as they come, read in a thread (so a wait can have a deadline)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        with stream:
            for line in stream:
                lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def write_trail(path: Path) -> list[dict[str, object]]:
    alice = Actor(user="alice", uid=1000, via="cli")
    with AuditLog(path) as log:
        return [
            log.append({"run": "r-a", "type": "step.ready", "step": "build", "data": {}}),
            log.append({"run": "r-b", "type": "step.ready", "step": "lint", "data": {}}),
            log.append(StepFinished(
                run="r-a", step="build", actor=alice, attempt=1, outcome="failed", exit_code=2,
                error=None, duration_s=1.5, log_path="/logs/build.1.log", log_size=3,
                log_sha256="e" * 64,
            ).to_json()),
        ]


def test_verify_ok_prints_lines_and_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_trail(path)
    result = console("audit", "verify", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok: 3 lines, head 3:{records[-1]['hash']}"


def test_verify_names_the_first_bad_line_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    path.write_bytes(path.read_bytes().replace(b'"lint"', b'"lent"'))
    result = console("audit", "verify", str(path))
    assert result.returncode == 1
    assert f"{path}:2:" in result.stderr and "was modified" in result.stderr
    assert "Traceback" not in result.stderr


def test_head_then_verify_head_catches_a_cut_tail(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    head = console("audit", "head", str(path))
    assert head.returncode == 0
    kept = head.stdout.strip()
    assert kept.startswith("3:") and len(kept) == 2 + 64
    assert console("audit", "verify", str(path), "--head", kept).returncode == 0
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]))
    assert console("audit", "verify", str(path)).returncode == 0
    cut = console("audit", "verify", str(path), "--head", kept)
    assert cut.returncode == 1
    assert "before the head you kept (seq 3)" in cut.stderr


def test_verify_with_a_malformed_head_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    result = console("audit", "verify", str(path), "--head", "3:nothex")
    assert result.returncode == 2
    assert "is not SEQ:HASH" in result.stderr


def test_verify_reports_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    with path.open("ab") as handle:
        handle.write(b'{"act')
    result = console("audit", "verify", str(path))
    assert result.returncode == 1
    assert "torn" in result.stderr and "the 3 lines before it verify" in result.stderr
    head = console("audit", "head", str(path))
    assert head.returncode == 0 and head.stdout.startswith("3:")
    assert "torn" in head.stderr


def test_missing_file_and_directory_give_one_clear_message(tmp_path: Path) -> None:
    for command in ("verify", "head", "tail"):
        missing = console("audit", command, str(tmp_path / "nope.jsonl"))
        assert missing.returncode == 1
        assert missing.stderr.count("\n") == 1 and "no audit file there" in missing.stderr
        directory = console("audit", command, str(tmp_path))
        assert directory.returncode == 1
        assert "is a directory" in directory.stderr and "Traceback" not in directory.stderr


def test_unreadable_file_gives_one_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    path.chmod(0o000)
    if os.access(path, os.R_OK):
        path.chmod(0o600)
        # Running as root: make the path unreadable another way, a dangling symlink loop.
        path.unlink()
        path.symlink_to(path)
    result = console("audit", "verify", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith("console: ") and "Traceback" not in result.stderr


def test_default_path_and_global_audit_option(tmp_path: Path) -> None:
    write_trail(default_audit_path())
    assert console("audit", "verify").returncode == 0
    other = tmp_path / "other.jsonl"
    with AuditLog(other) as log:
        record = log.append({"run": "x", "type": "t", "data": {}})
    assert console("--audit", str(other), "audit", "head").stdout.strip() == f"1:{record['hash']}"


def test_tail_human_form_json_form_run_filter_and_count(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_trail(path)
    human = console("audit", "tail", str(path))
    assert human.returncode == 0
    rows = human.stdout.splitlines()
    assert len(rows) == 3
    assert "alice(cli)" in rows[2] and "step.finished" in rows[2] and "build" in rows[2]
    # The same words as the headless printer and the audit pane (console/present.py).
    assert "failed (exit 2) after 1.5s" in rows[2]
    as_json = console("audit", "tail", str(path), "--json", "-n", "2")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == records[1:]
    assert as_json.stdout.encode() == b"".join(path.read_bytes().splitlines(keepends=True)[1:])
    only_a = console("audit", "tail", str(path), "--run", "r-a", "--json")
    assert [json.loads(line)["seq"] for line in only_a.stdout.splitlines()] == [1, 3]


def test_tail_follow_prints_new_lines_until_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    process = subprocess.Popen(
        [sys.executable, "-m", "console", "audit", "tail", str(path), "-f", "-n", "1",
         "--json", "--run", "r-b"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    lines = line_reader(process.stdout)
    try:
        first = lines.get(timeout=20)
        assert json.loads(first)["seq"] == 2
        # No waiting for the watcher: it starts at the offset the lines above ended at, so a
        # line appended from now on is printed even if it lands before the watch is in place.
        with AuditLog(path) as log:
            log.append({"run": "r-a", "type": "t", "data": {}})
            log.append({"run": "r-b", "type": "t", "data": {"new": True}})
        followed = json.loads(lines.get(timeout=20))
        assert (followed["seq"], followed["data"]) == (5, {"new": True})
        # That line may have come from the first read; this one is after it, so only the
        # watch (or its recheck) can bring it.
        with AuditLog(path) as log:
            log.append({"run": "r-b", "type": "t", "data": {"later": True}})
        followed = json.loads(lines.get(timeout=20))
        assert (followed["seq"], followed["data"]) == (6, {"later": True})
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)  # stdout is the reader thread's; stderr is only a few lines
    assert process.stderr is not None
    with process.stderr:
        err = process.stderr.read()
    assert process.returncode == 130
    assert "Traceback" not in err
