"""workflows/bluegreen.toml's two-person gate, headless, with approvals from other users.

Runs as root only: the test creates real users in a real `sre` group, and each approval is a
separate `console approve` process running as that user, identified by SO_PEERCRED.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from console.events import ApprovalGiven, ApprovalRefused, GateOpened, RecordingSink
from console.host.run_host import RunHost
from console.workflow.loader import load_workflow

from ..conftest import own_workflows
from ..multiuser import Account, Accounts, SharedPython, needs_other_users, run_as
from .conftest import settings_in

WEDNESDAY_NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

pytestmark = needs_other_users


@pytest.fixture
def approvers(accounts: Accounts) -> tuple[str, str]:
    """Two users in the `sre` group (made for the session, the group too if missing)."""
    first, second = (accounts.user(key, groups=["sre"]) for key in ("a", "b"))
    return first.name, second.name


def _approve_as(
    user: str | None, run_id: str, step: str, env: dict[str, str], python: SharedPython
) -> subprocess.CompletedProcess[str]:
    args = ["approve", run_id, step, "--reason", "checked the canary"]
    # USER and LOGNAME claim root: identity must come from the socket, not from these.
    env = {**env, "USER": "root", "LOGNAME": "root"}
    if user is not None:
        return run_as(Account.named(user), python.console(*args), env=env, timeout=30)
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_two_person_gate_refuses_the_initiator_and_accepts_two_others(
    tmp_path: Path, approvers: tuple[str, str], shared_python: SharedPython, shared_dir: Path
) -> None:
    loaded = load_workflow(own_workflows(tmp_path) / "bluegreen.toml")
    sink = RecordingSink()
    runtime = shared_dir  # other users reach its socket; pytest's tmp_path is private
    engine = RunHost(
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
            outputs.append(await asyncio.to_thread(
                _approve_as, user, engine.run_id, step, env, shared_python
            ))

    async def go() -> str:
        run = asyncio.create_task(engine.run())
        await approve_when_waiting("switch-traffic", run)
        assert outputs[-1].returncode == 0, [o.stdout + o.stderr for o in outputs]
        await approve_when_waiting("retire-blue", run)
        return await asyncio.wait_for(run, 120)

    outcome = asyncio.run(go())
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
