"""End to end: real processes through the real Engine and LocalExecutor, with the gate
approved through the dialog; the audit file records the approval as given in the UI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from console.ui.screens.summary import SummaryScreen
from console.workflow.loader import load_workflow
from tests.ui.conftest import settings_in, snapshot_app, wait_for, write_workflow

REAL = f"""\
[workflow]
name = "real"

[steps.build]
run = ["{sys.executable}", "-c", "print('built')"]

[steps.deploy]
needs = ["build"]
run = "echo deployed-$PARAM_VERSION"
approval = {{ approvals = 1, reason = true }}

[params]
version = {{ type = "string", default = "1.0.0" }}
"""


async def test_a_real_run_approved_in_the_dialog(tmp_path: Path) -> None:
    loaded = load_workflow(write_workflow(tmp_path, REAL))
    settings = settings_in(tmp_path)
    app = snapshot_app(loaded, tmp_path, settings=settings, start=True,
                       params={"version": "2.1.0"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: "deploy" in screen.state.steps
                       and screen.state.steps["deploy"].status == "awaiting_approval")
        build_log = screen.state.steps["build"].log_path
        assert build_log is not None and Path(build_log).read_text() == "built\n"
        await pilot.press("a", *"ship it", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen), timeout=20)
        assert screen.state.status == "succeeded"
        deploy_log = screen.state.steps["deploy"].log_path
        assert deploy_log is not None and Path(deploy_log).read_text() == "deployed-2.1.0\n"
        await pilot.press("escape", "q")
    assert app.return_value == 0
    records = [json.loads(line) for line in settings.audit_path.read_text().splitlines()]
    approvals = [r for r in records if r["type"] == "approval.given"]
    assert len(approvals) == 1
    assert approvals[0]["actor"]["via"] == "tui"
    assert approvals[0]["actor"]["uid"] == os.getuid()
    assert approvals[0]["data"]["reason"] == "ship it"
    assert records[-1]["type"] == "run.finished"
    assert records[-1]["data"]["outcome"] == "succeeded"
