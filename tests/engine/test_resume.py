"""--resume: successes carry over, failures and gates run again, changed files refuse."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from console.errors import ResumeError
from console.events import GateOpened, RecordingSink, StepReused, StepStarted
from console.host.run_host import RunHost
from console.workflow.loader import load_workflow

from .conftest import settings_in, start_until, write_workflow


def _workflow(tmp_path: Path, flag: Path) -> Path:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "shared.toml").write_text(
        '[[policy]]\nname = "audited"\neffect = "allow"\nlevel = "advisory"\n'
    )
    return write_workflow(
        tmp_path,
        f"""
        [workflow]
        name = "resumable"
        policies = ["policies/shared.toml"]
        [steps.build]
        run = "true"
        [steps.deploy]
        needs = ["build"]
        run = "test -e {flag}"
        approval = {{ approvals = 1 }}
        [steps.publish]
        needs = ["deploy"]
        run = "true"
        """,
    )


async def _run_approving(engine: RunHost) -> str:
    task = await start_until(engine, "deploy", "awaiting_approval")
    assert engine.approve("deploy", os.getuid(), "cli", "ok").ok
    return await asyncio.wait_for(task, 30)


def _engine(tmp_path: Path, path: Path, resume: str | None) -> tuple[RunHost, RecordingSink]:
    sink = RecordingSink()
    engine = RunHost(load_workflow(path), {}, [sink], settings_in(tmp_path, resume_from=resume))
    return engine, sink


def test_resume_reuses_successes_and_asks_again_at_every_gate(tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    path = _workflow(tmp_path, flag)
    first, _ = _engine(tmp_path, path, None)
    assert asyncio.run(_run_approving(first)) == "failed"
    assert first.state.steps["deploy"].status == "failed"

    flag.touch()
    second, sink = _engine(tmp_path, path, first.run_id)
    assert asyncio.run(_run_approving(second)) == "succeeded"
    reused = {e.step: e.from_run for e in sink.of_type(StepReused)}
    assert reused == {"build": first.run_id}
    started = [e.step for e in sink.of_type(StepStarted)]
    assert started == ["deploy", "publish"]
    assert [e.step for e in sink.of_type(GateOpened)] == ["deploy"], "approvals never carry over"
    assert second.state.resumed_from == first.run_id


def test_resume_refuses_a_changed_workflow_and_names_it(tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    path = _workflow(tmp_path, flag)
    first, _ = _engine(tmp_path, path, None)
    asyncio.run(_run_approving(first))
    path.write_text(path.read_text() + "\n# edited\n")
    second, sink = _engine(tmp_path, path, first.run_id)
    with pytest.raises(ResumeError, match=r"wf\.toml changed since it ran"):
        asyncio.run(second.run())
    assert sink.events == []


def test_resume_refuses_a_changed_policy_file_and_names_it(tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    path = _workflow(tmp_path, flag)
    first, _ = _engine(tmp_path, path, None)
    asyncio.run(_run_approving(first))
    shared = tmp_path / "policies" / "shared.toml"
    shared.write_text(shared.read_text().replace("audited", "audited twice"))
    second, _ = _engine(tmp_path, path, first.run_id)
    with pytest.raises(ResumeError, match=r"shared\.toml changed since it ran"):
        asyncio.run(second.run())


def test_resume_of_an_unknown_run_says_where_it_looked(tmp_path: Path) -> None:
    path = _workflow(tmp_path, tmp_path / "fixed")
    engine, _ = _engine(tmp_path, path, "20260101-000000-abcdef")
    with pytest.raises(ResumeError, match="is not in the audit trail"):
        asyncio.run(engine.run())
