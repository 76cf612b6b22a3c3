"""`console status`: runs folded from a real audit file, abandoned runs, live runs asked
over their control socket."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from console.audit.log import AuditLog
from console.cli import main
from console.events import (
    Actor,
    ApprovalGiven,
    Event,
    GateOpened,
    RunFinished,
    RunStarted,
    StepDenied,
    StepFinished,
    StepReady,
    StepSkipped,
    StepStarted,
)
from console.paths import control_socket_path
from console.policy.verdict import Verdict
from console.run.control import ControlServer

HOST = socket.gethostname()
ALICE = Actor("alice", 1000, "cli")
BOB = Actor("bob", 1001, "socket")


def ts(minute: int, second: float = 0.0) -> str:
    return f"2025-03-04T10:{minute:02d}:{second:09.6f}Z"


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def started(run: str, minute: int, *, pid: int, host: str = HOST,
            steps: tuple[str, ...] = ("build", "deploy"), sock: str | None = None,
            workflow: str = "payments") -> RunStarted:
    return RunStarted(
        run=run, ts=ts(minute), workflow=workflow, workflow_path=f"/srv/{workflow}.toml",
        file_hashes={}, params={"version": "1.4.2"}, steps=steps, user="alice", uid=1000,
        host=host, pid=pid, version="0.1.0", concurrency=2, run_dir=f"/tmp/runs/{run}",
        control_socket=sock, actor=ALICE,
    )


def step_ran(run: str, step: str, minute: int, *, outcome: str = "succeeded",
             exit_code: int = 0, duration: float = 1.5) -> list[Event]:
    return [
        StepReady(run=run, step=step, ts=ts(minute)),
        StepStarted(run=run, step=step, ts=ts(minute, 1), attempt=1, max_attempts=2,
                    command=("make", step), log_path=f"/tmp/{step}.1.log", pid=4242),
        StepFinished(run=run, step=step, ts=ts(minute, 1 + duration), attempt=1,
                     outcome=outcome, exit_code=exit_code, error=None,  # type: ignore[arg-type]
                     duration_s=duration, log_path=f"/tmp/{step}.1.log", log_size=10,
                     log_sha256="0" * 64),
    ]


def write_audit(
    path: Path, events: Sequence[Event], extra: Sequence[Mapping[str, Any]] = ()
) -> Path:
    with AuditLog(path) as log:
        for event in events:
            log.append(event.to_json())
        for entry in extra:
            log.append(entry)
    return path


@pytest.fixture(autouse=True)
def whole_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output to a pipe: no width limit unless a test sets COLUMNS."""
    monkeypatch.delenv("COLUMNS", raising=False)


def status(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["status", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def audit(tmp_path: Path) -> Path:
    """Three runs: one finished, one abandoned (its process is gone), one on another host."""
    done, gone = "20250304T100000Z-aaaaaa", "20250304T101000Z-bbbbbb"
    elsewhere = "20250304T102000Z-cccccc"
    events: list[Event] = [
        started(done, 0, pid=dead_pid()),
        *step_ran(done, "build", 1),
        *step_ran(done, "deploy", 2, duration=75.0),
        RunFinished(run=done, ts=ts(4), outcome="succeeded",
                    counts={"succeeded": 2}, duration_s=240.0),
        started(gone, 10, pid=dead_pid(), workflow="db-migrate"),
        *step_ran(gone, "build", 11, outcome="failed", exit_code=2),
        started(elsewhere, 20, pid=os.getpid(), host="build-host-7"),
    ]
    foreign = [
        {"run": "", "type": "audit.recovered_tail", "ts": ts(30),
         "data": {"moved_to": "/x.torn-9", "torn_bytes": 12}},
        {"run": done, "type": "from.a.future.version", "ts": ts(31), "data": {"x": 1}},
    ]
    return write_audit(tmp_path / "audit.jsonl", events, foreign)


def test_no_audit_file_means_no_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = tmp_path / "runtime"
    missing = tmp_path / "nothing.jsonl"
    assert status("--audit", str(missing), capsys=capsys) == (
        0, f"no runs recorded in {missing}, and none live in {runtime}\n", "")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert status("--audit", str(empty), capsys=capsys) == (
        0, f"no runs recorded in {empty}, and none live in {runtime}\n", "")


def test_the_table_shows_each_run_once_with_abandoned_and_remote_runs_marked(
    audit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = status("--audit", str(audit), capsys=capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:4] == [
        "RUN                      WORKFLOW    STATUS      STEPS  STARTED (UTC)        USER",
        "20250304T100000Z-aaaaaa  payments    succeeded   2/2    2025-03-04 10:00:00  alice",
        "20250304T101000Z-bbbbbb  db-migrate  abandoned*  1/2    2025-03-04 10:10:00  alice",
        "20250304T102000Z-cccccc  payments    running*    0/2    2025-03-04 10:20:00  alice",
    ]
    assert lines[4].startswith("* 20250304T101000Z-bbbbbb: no run.finished recorded and process ")
    assert lines[4].endswith(f" is gone from {HOST}")
    assert lines[5] == "* 20250304T102000Z-cccccc: runs on host build-host-7; ask there"
    assert len(lines) == 6


def test_json_lists_every_run(audit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = status("--audit", str(audit), "--json", capsys=capsys)
    data = json.loads(out)
    assert code == 0 and data["audit"] == str(audit)
    assert [(r["run_id"], r["status"], r["done"], r["total"], r["live"], r["host"])
            for r in data["runs"]] == [
        ("20250304T100000Z-aaaaaa", "succeeded", 2, 2, False, HOST),
        ("20250304T101000Z-bbbbbb", "abandoned", 1, 2, False, HOST),
        ("20250304T102000Z-cccccc", "running", 0, 2, False, "build-host-7"),
    ]
    assert data["runs"][0]["finished"] == "2025-03-04T10:04:00.000000Z"


def test_one_run_shows_its_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = "20250304T110000Z-dddddd"
    steps = ("build", "migrate", "switch", "notify")
    path = write_audit(tmp_path / "audit.jsonl", [
        started(run, 0, pid=dead_pid(), steps=steps),
        *step_ran(run, "build", 1, outcome="failed", exit_code=2),
        StepReady(run=run, step="migrate", ts=ts(2)),
        GateOpened(run=run, step="migrate", ts=ts(2), approvals_required=2, approvers=("@sre",),
                   reason_required=True, deadline=None,
                   approve_command=f"console approve {run} migrate --reason TEXT"),
        ApprovalGiven(run=run, step="migrate", ts=ts(3), actor=BOB, reason="ok", approvals=1,
                      approvals_required=2, binding={}),
        StepDenied(run=run, step="switch", ts=ts(4), reason="Friday freeze",
                   policies=("Friday freeze",)),
        StepSkipped(run=run, step="notify", ts=ts(4), reason="needs switch, which was denied"),
    ])
    code, out, _ = status(run[:20], "--audit", str(path), capsys=capsys)
    assert code == 0
    assert out.splitlines() == [
        f"run         {run}",
        "workflow    payments (/srv/payments.toml)",
        out.splitlines()[2],
        out.splitlines()[3],
        "started     2025-03-04 10:00:00",
        "finished    -",
        "progress    3/4 steps finished",
        "",
        "STEP     STATUS             ATTEMPT  DURATION  REASON",
        "build    failed             1/2      1.5s      exit code 2",
        "migrate  awaiting approval  0/1      -         needs 2 approval(s), 1 given",
        "switch   denied             0/1      -         Friday freeze",
        "notify   skipped            0/1      -         needs switch, which was denied",
        "",
        "to approve migrate (a reason is required), run:",
        f"  console approve {run} migrate --reason TEXT",
    ]
    assert out.splitlines()[2].startswith("status      abandoned: no run.finished recorded")
    assert out.splitlines()[3].startswith(f"started by  alice (uid 1000) on {HOST}, pid ")


def test_one_run_as_json_carries_the_folded_state(
    audit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = status("20250304T100000Z-aaaaaa", "--json", "--audit", str(audit),
                          capsys=capsys)
    data = json.loads(out)
    assert code == 0 and data["status"] == "succeeded" and data["source"] == "audit"
    assert data["state"]["steps"]["deploy"]["duration_s"] == 75.0
    assert data["state"]["params"] == {"version": "1.4.2"}


def test_an_unknown_or_ambiguous_run_is_an_error(
    audit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = status("20990101", "--audit", str(audit), capsys=capsys)
    assert code == 1
    runtime = audit.parent / "runtime"
    assert err == (f"console: no run 20990101 in {audit}, nor live in {runtime}; `console "
                   "status` lists the runs recorded there and the live ones (use --audit PATH "
                   "for another audit file)\n")
    code, _, err = status("20250304T10", "--audit", str(audit), capsys=capsys)
    assert code == 1
    assert err == ("console: 20250304T10 matches several runs: 20250304T100000Z-aaaaaa, "
                   "20250304T101000Z-bbbbbb, 20250304T102000Z-cccccc; give more of it\n")


class LiveRun:
    """Answers `status` the way the engine does: step statuses by id."""

    run_id = "20250304T120000Z-eeeeee"

    def status(self) -> dict[str, Any]:
        return {"run": self.run_id, "status": "running", "progress": [1, 2],
                "steps": {"build": "succeeded", "deploy": "awaiting_approval"}}

    def _no(self, *args: object) -> Verdict:
        return Verdict(False, "not in this test")

    approve = deny = override = cancel_step = cancel_run = retry_step = _no


async def test_a_live_run_is_asked_over_its_socket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = LiveRun()
    sock = control_socket_path(live.run_id)
    path = write_audit(tmp_path / "audit.jsonl",
                       [started(live.run_id, 0, pid=os.getpid(), sock=str(sock))])
    server = ControlServer(live, sock, live.status)
    await server.start()
    try:
        code, out, _ = await asyncio.to_thread(status, "--audit", str(path), capsys=capsys)
        _, detail, _ = await asyncio.to_thread(status, live.run_id, "--json", "--audit",
                                               str(path), capsys=capsys)
    finally:
        await server.close()
    assert code == 0
    assert out.splitlines()[1].split() == [
        live.run_id, "payments", "running", "1/2", "2025-03-04", "10:00:00", "alice"]
    data = json.loads(detail)
    assert (data["live"], data["source"]) == (True, "socket")
    assert data["state"]["steps"]["deploy"]["status"] == "awaiting_approval"
    assert data["state"]["live"]["progress"] == [1, 2]


def test_a_live_run_whose_socket_is_gone_falls_back_to_the_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = "20250304T130000Z-ffffff"
    path = write_audit(tmp_path / "audit.jsonl", [
        started(run, 0, pid=os.getpid()), *step_ran(run, "build", 1)])
    code, out, _ = status("--audit", str(path), capsys=capsys)
    lines = out.splitlines()
    assert code == 0
    assert lines[1].split()[2:4] == ["running*", "1/2"]
    assert lines[2].startswith(f"* {run}: control socket did not answer (run {run} has no "
                               "control socket in ")


def test_the_real_command_line(audit: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "console", "status", "--audit", str(audit)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[1].startswith("20250304T100000Z-aaaaaa  payments ")
