"""End to end: a real run at a real gate, driven by `python -m console ...` subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from console.events import ApprovalGiven, ApprovalRefused, RecordingSink
from console.host.run_host import RunHost
from console.workflow.loader import load_workflow

from ..multiuser import Account, SharedPython, as_user, needs_other_users
from .conftest import settings_in, start_until, write_workflow

NOBODY = 65534
GATED = """
[workflow]
name = "gated"
[steps.build]
run = "true"
[steps.deploy]
needs = ["build"]
run = "true"
approval = { approvals = 1, separation_of_duties = true }
[steps.verify]
needs = ["deploy"]
run = "true"
"""


async def console(
    *argv: str, runtime: Path, command: Sequence[str] = (sys.executable, "-m", "console")
) -> tuple[int, str, str]:
    """Run `console *argv`; `command` may be another user's (multiuser.as_user)."""
    proc = await asyncio.create_subprocess_exec(
        *command, *argv, env={**os.environ, "CONSOLE_RUNTIME_DIR": str(runtime)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def at_gate(engine: RunHost, step: str) -> asyncio.Task[str]:
    return await start_until(engine, step, "awaiting_approval")


def gated_engine(
    tmp_path: Path, runtime: Path, initiator_uid: int
) -> tuple[RunHost, RecordingSink]:
    loaded = load_workflow(write_workflow(tmp_path, GATED))
    sink = RecordingSink()
    settings = settings_in(tmp_path, runtime_dir=runtime)
    return RunHost(loaded, {}, [sink], settings, initiator_uid=initiator_uid), sink


async def test_console_approve_from_another_process_opens_the_gate(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    engine, sink = gated_engine(tmp_path, runtime, initiator_uid=NOBODY)
    task = await at_gate(engine, "deploy")
    audit = str(engine.settings.audit_path)
    _, live, _ = await console("status", engine.run_id, "--json", "--audit", audit,
                               runtime=runtime)
    approved = await console("approve", engine.run_id, "deploy", "--reason", "diff reviewed",
                             runtime=runtime)
    outcome = await asyncio.wait_for(task, 30)
    _, after, _ = await console("status", "--audit", audit, runtime=runtime)

    live_status = json.loads(live)
    assert (live_status["live"], live_status["source"]) == (True, "socket")
    assert live_status["state"]["steps"]["deploy"]["status"] == "awaiting_approval"
    assert approved[0] == 0, approved
    assert outcome == "succeeded"
    [given] = sink.of_type(ApprovalGiven)
    assert isinstance(given, ApprovalGiven) and given.actor is not None
    assert (given.actor.uid, given.actor.via, given.reason) == (os.getuid(), "socket",
                                                                "diff reviewed")
    assert after.splitlines()[1].split()[:4] == [engine.run_id, "gated", "succeeded", "3/3"]
    assert not (runtime / f"{engine.run_id}.sock").exists()


async def test_console_cancel_stops_a_run_waiting_at_a_gate(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    engine, _ = gated_engine(tmp_path, runtime, initiator_uid=os.getuid())
    task = await at_gate(engine, "deploy")
    code, out, err = await console("cancel", engine.run_id, runtime=runtime)
    outcome = await asyncio.wait_for(task, 30)
    assert code == 0, (out, err)
    assert outcome == "cancelled"


@needs_other_users
async def test_the_initiator_is_refused_and_another_user_approves(
    tmp_path: Path, shared_dir: Path, shared_python: SharedPython
) -> None:
    public_runtime = shared_dir  # another uid reaches its socket; pytest's tmp_path is private
    nobody = as_user(Account.named("nobody"), shared_python.console())
    engine, sink = gated_engine(tmp_path, public_runtime, initiator_uid=os.getuid())
    task = await at_gate(engine, "deploy")
    own = await console("approve", engine.run_id, "deploy", runtime=public_runtime)
    other = await console("approve", engine.run_id, "deploy", "--reason", "second pair of eyes",
                          runtime=public_runtime, command=nobody)
    outcome = await asyncio.wait_for(task, 30)

    assert own[0] == 3 and own[1] == ""
    assert own[2].startswith("console: ") and "started this run" in own[2]
    assert other[0] == 0, other
    assert outcome == "succeeded"
    [refused] = sink.of_type(ApprovalRefused)
    assert refused.actor is not None and refused.actor.uid == os.getuid()
    [given] = sink.of_type(ApprovalGiven)
    assert given.actor is not None
    assert (given.actor.uid, given.actor.user, given.actor.via) == (NOBODY, "nobody", "socket")
