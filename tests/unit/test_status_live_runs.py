"""`console status` lists every live run in the runtime directory, whoever started it, and
says where the caller may approve; the table fits the terminal's width."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.paths import control_socket_path
from console.policy.verdict import Verdict
from console.run.control import ControlServer

OURS = "20250304-100000-aaaaaa"
THEIRS = "20250304-101500-bbbbbb"
DEAD = "20250304-090000-dddddd"
LONG_WORKFLOW = "payments-api-blue-green-deploy-with-canary-and-rollback"
LONG_USER = "release-engineering-automation-bot"


class GatedRun:
    """Answers `status` as the engine does when it judges its asker: each open gate says
    whether the uid asking may approve it (here: exactly `approver_uid`)."""

    def __init__(self, run_id: str, workflow: str, user: str, approver_uid: int) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.user = user
        self.approver_uid = approver_uid
        self.asked: list[int | None] = []

    def status(self, for_uid: int | None = None) -> dict[str, Any]:
        self.asked.append(for_uid)
        may = for_uid == self.approver_uid
        why = None if may else "you started this run; policy 'two people' requires someone else"
        return {
            "run": self.run_id, "workflow": self.workflow, "status": "running",
            "user": self.user, "pid": os.getpid(), "progress": [1, 3],
            "steps": {"build": "succeeded", "switch-traffic": "awaiting_approval",
                      "retire-blue": "pending"},
            "gates": {"switch-traffic": {
                "summary": "needs 2 approvals (@sre)", "approvals": 1, "approvals_required": 2,
                "approvers": ["@sre"],
                "approve_command": f"console approve {self.run_id} switch-traffic",
                "may_approve": may, "why_not": why,
            }},
        }

    def _no(self, *args: object) -> Verdict:
        return Verdict(False, "not in this test")

    approve = deny = override = cancel_step = cancel_run = retry_step = _no


@pytest.fixture
async def two_runs(tmp_path: Path) -> AsyncIterator[tuple[GatedRun, GatedRun]]:
    """Two live runs nobody's audit file here knows of: the caller (this process's uid)
    may approve the first, not the second. Beside them: a dead socket, a plain file named
    like a socket, and a symlink to a live socket — all three to be skipped."""
    me = os.getuid()
    ours = GatedRun(OURS, "bluegreen", "alice", approver_uid=me)
    theirs = GatedRun(THEIRS, LONG_WORKFLOW, LONG_USER, approver_uid=me + 1)
    servers = [ControlServer(run, control_socket_path(run.run_id), run.status)
               for run in (ours, theirs)]
    for server in servers:
        await server.start()
    runtime = control_socket_path(OURS).parent
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(runtime / f"{DEAD}.sock"))  # bound, never listening: connect is refused
    dead.close()
    (runtime / "20250304-080000-eeeeee.sock").write_text("not a socket")
    (runtime / "20250304-070000-ffffff.sock").symlink_to(runtime / f"{OURS}.sock")
    try:
        yield ours, theirs
    finally:
        for server in servers:
            await server.close()


async def console_status(*argv: str, columns: int | None = None) -> tuple[int, str, str]:
    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["status", *argv])
        return code, out.getvalue(), err.getvalue()

    previous = os.environ.pop("COLUMNS", None)
    if columns is not None:
        os.environ["COLUMNS"] = str(columns)
    try:
        return await asyncio.to_thread(run)
    finally:
        os.environ.pop("COLUMNS", None)
        if previous is not None:
            os.environ["COLUMNS"] = previous


async def test_every_live_run_is_listed_with_where_you_may_approve(
    two_runs: tuple[GatedRun, GatedRun], tmp_path: Path
) -> None:
    ours, theirs = two_runs
    code, out, err = await console_status("--audit", str(tmp_path / "none.jsonl"))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["RUN", "WORKFLOW", "STATUS", "STEPS", "STARTED", "(UTC)", "USER"]
    # STARTED: a run id begins with its start time (UTC), all a stranger's run tells of it
    assert lines[1].split() == [OURS, "bluegreen", "awaiting", "approval", "1/3", "2025-03-04",
                                "10:00:00", "alice"]
    assert lines[2] == "  switch-traffic: awaiting approval 1/2 (you may approve)"
    assert lines[3].split() == [THEIRS, LONG_WORKFLOW, "awaiting", "approval", "1/3",
                                "2025-03-04", "10:15:00", LONG_USER]
    assert lines[4] == "  switch-traffic: awaiting approval 1/2 (not you: you started this run)"
    assert len(lines) == 5, out  # the dead socket, the file and the symlink are not runs
    assert ours.asked == [os.getuid()] and theirs.asked == [os.getuid()]


async def test_the_table_fits_80_columns(
    two_runs: tuple[GatedRun, GatedRun], tmp_path: Path
) -> None:
    code, out, _ = await console_status("--audit", str(tmp_path / "none.jsonl"), columns=80)
    lines = out.splitlines()
    assert code == 0
    assert max(len(line) for line in lines) <= 80, out
    assert lines[0].split() == ["RUN", "WORKFLOW", "STATUS", "STEPS", "USER"]  # no STARTED
    row = lines[3]
    assert row.startswith(f"{THEIRS}  payments-api-") and "…" in row
    assert "awaiting approval  1/3" in row and row.split()[-1].startswith("release-")
    assert lines[2] == "  switch-traffic: awaiting approval 1/2 (you may approve)"
    assert lines[4] == "  switch-traffic: awaiting approval 1/2 (not you: you started this run)"
    narrow = (await console_status("--audit", str(tmp_path / "none.jsonl"), columns=60))[1]
    assert max(len(line) for line in narrow.splitlines()) <= 60, narrow
    assert all(run in narrow for run in (OURS, THEIRS)), "run ids are never cut"


async def test_json_carries_the_live_runs_and_may_approve(
    two_runs: tuple[GatedRun, GatedRun], tmp_path: Path
) -> None:
    code, out, _ = await console_status("--audit", str(tmp_path / "none.jsonl"), "--json")
    data = json.loads(out)
    assert code == 0 and data["runtime_dir"] == str(control_socket_path(OURS).parent)
    runs = {run["run_id"]: run for run in data["runs"]}
    assert list(runs) == [OURS, THEIRS]
    assert (runs[OURS]["may_approve"], runs[THEIRS]["may_approve"]) == (True, False)
    assert (runs[OURS]["live"], runs[OURS]["source"], runs[OURS]["workflow"]) == (
        True, "socket", "bluegreen")
    gate = runs[THEIRS]["gates"]["switch-traffic"]
    assert gate["why_not"].startswith("you started this run")
    assert gate["approve_command"] == f"console approve {THEIRS} switch-traffic"


async def test_one_live_run_of_someone_else_by_prefix(
    two_runs: tuple[GatedRun, GatedRun], tmp_path: Path
) -> None:
    code, out, _ = await console_status(THEIRS[:18], "--audit", str(tmp_path / "none.jsonl"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"run         {THEIRS}"
    assert lines[2] == "status      running (live)"
    assert lines[3] == f"started by  {LONG_USER} on {socket.gethostname()}, pid {os.getpid()}"
    gate = next(line for line in lines if line.startswith("switch-traffic"))
    assert gate.split(None, 5)[1:5] == ["awaiting", "approval", "0/1", "-"]
    assert gate.endswith("needs 2 approval(s), 1 given (not you: you started this run)")
    assert lines[-2:] == ["to approve switch-traffic, run:",
                          f"  console approve {THEIRS} switch-traffic"]


def test_the_server_gives_the_peer_uid_to_a_status_that_takes_it(tmp_path: Path) -> None:
    run = GatedRun(OURS, "bluegreen", "alice", approver_uid=4242)
    server = ControlServer(run, tmp_path / "x.sock", run.status)
    answer = server.answer(b'{"op": "status", "uid": 0}\n', 4242)
    assert run.asked == [4242]  # the kernel's uid, never the request's
    assert answer["status"]["gates"]["switch-traffic"]["may_approve"] is True
    bare = ControlServer(run, tmp_path / "y.sock", lambda: {"status": "running"})
    assert bare.answer(b'{"op": "status"}\n', 4242)["status"] == {"status": "running"}
