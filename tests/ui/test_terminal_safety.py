"""Issue 9 in the UI: what Textual writes to the terminal holds no escape from anyone else.

Each test drives the app (Pilot) into a screen that shows hostile text — the workflow's
name, rule names, an approver's reason, audit records, a refusal — and checks the bytes
Textual would write for the whole screen: its own cursor moves and colours, and nothing
else that a terminal would act on. Rich markup in the text must show as typed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from textual.widgets import DataTable

from console.audit.log import AuditLog
from console.events import (
    Actor,
    ApprovalGiven,
    Event,
    GateEvaluated,
    GateOpened,
    RunFinished,
    RunStarted,
    StepFinished,
    StepReady,
    StepSkipped,
    StepStarted,
)
from console.policy.verdict import Verdict
from console.ui.app import ConsoleApp
from console.ui.screens.approval import ApprovalScreen
from console.ui.screens.confirm import ConfirmScreen
from console.ui.screens.params import ParamsScreen
from console.ui.screens.summary import SummaryScreen
from console.ui.widgets.audit_pane import AuditEventScreen, AuditPane
from console.ui.widgets.notices import Notices
from console.workflow.loader import load_workflow
from tests.e2e.test_terminal_safety import HOSTILE, SCRIPT, UNSAFE, hostile_trail, toml
from tests.ui.conftest import settings_in, snapshot_app, ts, wait_for, write_workflow

# Textual's own output: colours and cursor positions.
OWN_SEQUENCES = re.compile(r"\x1b\[[0-9;]*[mH]")
RUN = "20250314T090000-safe"
MARKUP = "[red]x[/red]"
BOB = Actor(user=HOSTILE, uid=1001, via="socket")
DECISION: dict[str, Any] = {
    "effect": "require_approval", "level": "hard", "approvals_required": 2,
    "summary": HOSTILE, "warnings": [HOSTILE],
    "rules": [{"name": HOSTILE, "effect": "require_approval", "level": "hard",
               "reason": HOSTILE}],
}


def workflow_text() -> str:
    return f"""\
[workflow]
name = {toml(HOSTILE)}
description = {toml(HOSTILE)}

[params]
target = {{ type = "choice", choices = [{toml(HOSTILE)}, "b"], description = {toml(HOSTILE)} }}
note = {{ type = "string", default = {toml(HOSTILE)} }}

[steps.build]
run = ["echo", {toml(HOSTILE)}]
env = {{ NOTE = {toml(HOSTILE)} }}
tags = [{toml(HOSTILE)}]
description = {toml(HOSTILE)}

[steps.deploy]
needs = ["build"]
run = {toml(SCRIPT)}
approval = {{ approvals = 2, reason = true }}
"""


def hostile_events() -> list[Event]:
    return [
        RunStarted(run=RUN, ts=ts(0), workflow=HOSTILE, workflow_path="/srv/w.toml",
                   file_hashes={}, params={"note": HOSTILE}, steps=("build", "deploy"),
                   user=HOSTILE, uid=1000, host=HOSTILE, pid=1, version="0.1.0",
                   concurrency=2, run_dir="/srv/runs"),
        StepReady(run=RUN, step="build", ts=ts(1)),
        StepStarted(run=RUN, step="build", ts=ts(1), attempt=1, max_attempts=1,
                    command=("echo", HOSTILE), log_path="/nonexistent/build.log", pid=2),
        StepFinished(run=RUN, step="build", ts=ts(2), attempt=1, outcome="error",
                     exit_code=None, error=HOSTILE, duration_s=1.0,
                     log_path="/nonexistent/build.log", log_size=0, log_sha256="0" * 64),
        GateEvaluated(run=RUN, step="deploy", ts=ts(3), decision=DECISION),
        GateOpened(run=RUN, step="deploy", ts=ts(3), approvals_required=2,
                   approvers=(HOSTILE,), reason_required=True, deadline=None,
                   approve_command=f"console approve {RUN} deploy"),
        ApprovalGiven(run=RUN, step="deploy", ts=ts(4), actor=BOB, approvals=1,
                      approvals_required=2, reason=HOSTILE, binding={"run": RUN}),
    ]


def terminal_output(app: ConsoleApp) -> str:
    """The bytes Textual writes to the terminal to draw the whole screen as it is now."""
    update = app.screen._compositor.render_full_update()
    return update.render_segments(app.console)


def assert_safe(app: ConsoleApp) -> str:
    """The screen as text, after checking nothing but Textual's own sequences is in it."""
    shown = OWN_SEQUENCES.sub("", terminal_output(app))
    found = UNSAFE.search(shown)
    assert found is None, f"{found.group()!r} reached the terminal in:\n{shown!r}"
    return shown


def hostile_app(tmp_path: Path, **options: Any) -> ConsoleApp:
    path = tmp_path / "hostile.toml"
    path.write_text(workflow_text())
    return snapshot_app(load_workflow(path), tmp_path, **options)


async def test_header_dag_and_detail_show_the_text_as_typed(tmp_path: Path) -> None:
    app = hostile_app(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        screen = app.run_screen
        screen.apply_events(hostile_events())
        screen.dag.set_selected("deploy", by_person=True)
        await pilot.pause()
        shown = assert_safe(app)
        assert "[red]x[/red]" in shown, "markup in a name shows as typed"
        screen.dag.set_selected("build", by_person=True)
        await pilot.pause()
        assert "[red]x[/red]" in assert_safe(app)
        await pilot.press("g")  # the compact list
        await pilot.pause()
        assert_safe(app)


async def test_the_approval_dialog_and_a_refusal(tmp_path: Path) -> None:
    app = hostile_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await app.workers.wait_for_complete()
        screen = app.run_screen
        screen.apply_events(hostile_events())
        app.push_screen(ApprovalScreen(screen.state.steps["deploy"], "approve",
                                       reason_required=True, blink=False))
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.pause()
        assert "[red]x[/red]" in assert_safe(app)
        app.pop_screen()
        screen.show_verdict("deploy", Verdict(False, HOSTILE))
        await wait_for(pilot, lambda: app.screen.query_one(Notices).has_class("-shown"))
        await pilot.pause()
        assert_safe(app)


async def test_the_audit_pane_and_a_record_in_full(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    settings.audit_path.parent.mkdir(parents=True)
    hostile_trail(settings.audit_path)
    with AuditLog(settings.audit_path) as log:  # short enough to show whole in its cell
        log.append(StepSkipped(run=RUN, step="deploy", ts=ts(7), reason=MARKUP).to_json())
    # The workflow is harmless here: what the screen shows of hostile text is the pane's.
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path, settings=settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("b")
        await wait_for(pilot, lambda: bool(app.query(AuditPane))
                       and len(app.query_one(AuditPane).records) == 9
                       and app.query_one(AuditPane).chain.state == "verified")
        await pilot.pause()
        assert MARKUP in assert_safe(app)
        table = app.query_one(AuditPane).query_one(DataTable)
        table.focus()
        table.move_cursor(row=5)  # approval.given, with its reason
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditEventScreen))
        await pilot.pause()
        assert "pwned" in assert_safe(app)


async def test_the_summary_params_and_confirm_screens(tmp_path: Path) -> None:
    app = hostile_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        screen = app.run_screen
        events = hostile_events()
        screen.apply_events(events)
        app.push_screen(ConfirmScreen(f"Cancel {HOSTILE}?", [("run", f"Cancel {HOSTILE}")]))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        assert "[red]x[/red]" in assert_safe(app)
        app.pop_screen()
        assert screen.loaded is not None
        app.push_screen(ParamsScreen(screen.loaded.model, {}, blink=False))
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsScreen))
        await pilot.pause()
        assert "[red]x[/red]" in assert_safe(app)
        app.pop_screen()
        screen.apply_events([RunFinished(run=RUN, ts=ts(9), outcome="failed",
                                         counts={HOSTILE: 1}, duration_s=9.0)])
        app.push_screen(SummaryScreen(screen.state, HOSTILE))
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))
        await pilot.pause()
        assert "[red]x[/red]" in assert_safe(app)


BAD_STEP_ID = f"[workflow]\nname = 'x'\n\n[steps.{toml(HOSTILE)}]\nrun = ['true']\n"


async def test_a_load_error_quoting_the_file_shows_visibly(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD_STEP_ID)
    app = snapshot_app(path, tmp_path)  # type: ignore[arg-type]
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.run_screen.load_error is not None)
        await pilot.pause()
        assert "[red]x[/red]" in assert_safe(app)


async def test_a_reload_error_in_the_banner_shows_visibly(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text("[workflow]\nname = 'w'\n\n[steps.a]\nrun = ['true']\n")
    app = snapshot_app(load_workflow(path), tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await app.workers.wait_for_complete()
        path.write_text(BAD_STEP_ID)
        app.run_screen.reload_workflow()
        await wait_for(pilot, lambda: "has errors" in app.run_screen.banner_text)
        await pilot.pause()
        assert "[red]x[/red]" in assert_safe(app)
