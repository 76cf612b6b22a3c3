"""workflows/bluegreen.toml's two-person gate, headless, with approvals from other users.

Runs as root only: the test creates real users in a real `sre` group, and each approval is a
separate `console approve` process running as that user, identified by SO_PEERCRED.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from console.run.engine import Engine
from console.run.events import ApprovalGiven, ApprovalRefused, GateOpened, RecordingSink
from console.workflow.loader import load_workflow

from .conftest import settings_in

REPO = Path(__file__).resolve().parents[2]
WEDNESDAY_NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("setpriv") is None,
    reason="creating approver accounts needs root, useradd and setpriv",
)


@pytest.fixture
def approvers() -> Iterator[tuple[str, str]]:
    """Two fresh users in the `sre` group (created if missing), removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    names = (f"ca{suffix}", f"cb{suffix}")
    created_group = subprocess.run(["getent", "group", "sre"], capture_output=True).returncode != 0
    if created_group:
        subprocess.run(["groupadd", "sre"], check=True)
    for name in names:
        subprocess.run(["useradd", "--no-create-home", "-G", "sre", name], check=True)
    try:
        yield names
    finally:
        for name in names:
            subprocess.run(["userdel", name], check=False)
        if created_group:
            subprocess.run(["groupdel", "sre"], check=False)


def _approve_as(
    user: str | None, run_id: str, step: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "console",
        "approve",
        run_id,
        step,
        "--reason",
        "checked the canary",
    ]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *cmd]
    # USER and LOGNAME claim root: identity must come from the socket, not from these.
    return subprocess.run(
        cmd,
        env={**env, "USER": "root", "LOGNAME": "root"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_two_person_gate_refuses_the_initiator_and_accepts_two_others(
    tmp_path: Path, approvers: tuple[str, str]
) -> None:
    loaded = load_workflow(REPO / "workflows" / "bluegreen.toml")
    sink = RecordingSink()
    # Other users must reach the socket: the runtime dir cannot sit under pytest's 0700 tmp.
    runtime = Path(tempfile.mkdtemp(prefix="console-runtime-", dir="/tmp"))
    runtime.chmod(0o755)
    engine = Engine(
        loaded,
        {"version": "1.4.2", "env": "prod"},
        [sink],
        settings_in(tmp_path, runtime_dir=runtime),
        clock=lambda: WEDNESDAY_NOON,
    )
    env = {**os.environ, "CONSOLE_RUNTIME_DIR": str(runtime), "TMPDIR": str(tmp_path)}
    outputs: list[subprocess.CompletedProcess[str]] = []

    async def approve_when_waiting(step: str, run: asyncio.Task[str]) -> None:
        while step not in {e.step for e in sink.of_type(GateOpened)}:
            assert not run.done(), {sid: st.status for sid, st in engine.state.steps.items()}
            await asyncio.sleep(0.05)
        for user in (None, approvers[0], approvers[0], approvers[1]):
            outputs.append(await asyncio.to_thread(_approve_as, user, engine.run_id, step, env))

    async def go() -> str:
        run = asyncio.create_task(engine.run())
        await approve_when_waiting("switch-traffic", run)
        assert outputs[-1].returncode == 0, [o.stdout + o.stderr for o in outputs]
        await approve_when_waiting("retire-blue", run)
        return await asyncio.wait_for(run, 120)

    try:
        outcome = asyncio.run(go())
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert outcome == "succeeded", [o.stdout + o.stderr for o in outputs]
    initiator, first, again, second = outputs[:4]
    assert initiator.returncode == 3
    assert "you started this run" in initiator.stdout + initiator.stderr
    assert first.returncode == 0, first.stdout + first.stderr
    assert again.returncode == 3
    assert "already approved" in again.stdout + again.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    given = [e for e in sink.of_type(ApprovalGiven) if e.step == "switch-traffic"]
    assert [e.actor.user for e in given if e.actor] == list(approvers)
    assert all(e.actor is not None and e.actor.via == "socket" for e in given)
    refused = [e for e in sink.of_type(ApprovalRefused) if e.step == "switch-traffic"]
    assert [e.actor.uid for e in refused if e.actor] == [0, given[0].actor.uid]  # type: ignore[union-attr]
