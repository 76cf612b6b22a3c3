"""Several real processes appending to one audit file keep one valid chain."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from console.audit.log import AuditLog, read_records, verify_chain

APPENDER = """
import sys
from console.audit.log import AuditLog
path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.stdin.readline()  # start together
with AuditLog(path) as log:
    for number in range(count):
        log.append({"run": name, "type": "step.ready", "step": f"s{number}", "data": {"n": number}},
                   sync=number % 50 == 0)
"""


def start_appenders(path: Path, names: list[str], count: int) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(path), name, str(count)],
            stdin=subprocess.PIPE, text=True,
        )
        for name in names
    ]


def release_and_wait(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        assert process.wait(timeout=60) == 0


def test_four_processes_appending_at_once_keep_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    names = [f"run-{index}" for index in range(4)]
    count = 300
    release_and_wait(start_appenders(path, names, count))
    report = verify_chain(path)
    assert report.ok, report.message
    assert report.lines == 4 * count
    records = list(read_records(path))
    assert Counter(r["run"] for r in records) == dict.fromkeys(names, count)
    for name in names:
        # Each process's own lines are in its own order.
        assert [r["data"]["n"] for r in records if r["run"] == name] == list(range(count))


def test_a_writer_kept_open_sees_lines_other_processes_added(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append({"run": "mine", "type": "step.ready", "data": {}})
        release_and_wait(start_appenders(path, ["theirs"], 20))
        assert log.head()[0] == 21
        record = log.append({"run": "mine", "type": "step.ready", "data": {}})
    assert record["seq"] == 22
    assert verify_chain(path).ok


def test_a_process_killed_mid_line_leaves_a_tail_the_next_writer_recovers(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    release_and_wait(start_appenders(path, ["first"], 3))
    crash = (
        "import os, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n"
        "os.write(fd, b'{\"actor\":{\"uid\":0,\"user\":\"ro')\n"
        "os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", crash, str(path)]).returncode == 9
    torn = verify_chain(path)
    assert (torn.kind, torn.lines) == ("torn_tail", 3)
    release_and_wait(start_appenders(path, ["second"], 2))
    records = list(read_records(path))
    assert [r["type"] for r in records][3] == "audit.recovered_tail"
    assert (tmp_path / "audit.jsonl.torn-4").exists()
    report = verify_chain(path)
    assert report.ok and report.lines == 6


def test_verify_waits_for_an_append_in_progress_instead_of_calling_it_torn(tmp_path: Path) -> None:
    source = tmp_path / "source.jsonl"
    with AuditLog(source) as log:
        log.append({"run": "r", "type": "step.ready", "data": {}})
        log.append({"run": "r", "type": "step.ready", "data": {"slow": True}})
    first_line, second_line = source.read_bytes().splitlines(keepends=True)
    path = tmp_path / "audit.jsonl"
    path.write_bytes(first_line)
    slow_writer = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "line = bytes.fromhex(sys.argv[2])\n"
        "os.write(fd, line[:30])\n"
        "print('half', flush=True)\n"
        "time.sleep(0.5)\n"
        "os.write(fd, line[30:])\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", slow_writer, str(path), second_line.hex()],
        stdout=subprocess.PIPE, text=True,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline() == "half\n"
    report = verify_chain(path)
    assert writer.wait(timeout=30) == 0
    assert report.ok, report.message
    assert report.lines == 2
