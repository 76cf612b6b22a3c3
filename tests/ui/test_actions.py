"""Every key on the run screen, driven through Pilot against the real Engine (with a
scripted executor), asserting on widget state and on what the engine did."""

from __future__ import annotations

import uuid
from pathlib import Path

from console.ui.screens.approval import ApprovalScreen
from console.ui.screens.confirm import ConfirmScreen
from console.ui.screens.params import ParamsScreen
from console.ui.screens.summary import SummaryScreen
from console.workflow.loader import load_workflow
from tests.ui.conftest import (
    GATED,
    ScriptedExecutor,
    settings_in,
    snapshot_app,
    wait_for,
    write_workflow,
)


def gated_app(tmp_path: Path, executor: ScriptedExecutor | None = None, text: str = GATED,
              **options: object):
    loaded = load_workflow(write_workflow(tmp_path, text))
    return snapshot_app(loaded, tmp_path, executor=executor or ScriptedExecutor(),
                        settings=settings_in(tmp_path), **options)


async def test_start_asks_for_params_then_runs_to_the_summary(tmp_path: Path) -> None:
    params = '[params]\nversion = { type = "string", default = "1.0.0" }\n\n'
    text = GATED.replace("[steps.build]", params + "[steps.build]")
    text = text.replace("approval = { approvals = 1, reason = true }\n", "")
    app = gated_app(tmp_path, text=text)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        assert isinstance(app.screen, ParamsScreen)
        await pilot.press("escape")
        assert app.run_screen.handle is None
        await pilot.press("s")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))
        screen = app.run_screen
        assert screen.state.status == "succeeded"
        assert screen.handle is not None and screen.handle.params == {"version": "1.0.0"}
        assert screen.exit_code == 0
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_value == 0


async def test_approve_through_the_dialog_with_a_required_reason(tmp_path: Path) -> None:
    app = gated_app(tmp_path, start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: screen.state.steps.get("deploy") is not None
                       and screen.state.steps["deploy"].status == "awaiting_approval")
        assert screen.dag.selected == "deploy"  # a waiting step takes the selection
        await pilot.press("a")
        assert isinstance(app.screen, ApprovalScreen)
        await pilot.press("enter")  # no reason yet: refused in the dialog
        assert isinstance(app.screen, ApprovalScreen)
        assert "reason is required" in str(app.screen.query_one("#problem").render())
        await pilot.press(*"looks good", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))
        engine = screen.handle
        assert engine is not None
        given = [e for e in engine.state.steps["deploy"].approvals]
        assert [(a.via, a.reason) for a in given] == [("tui", "looks good")]
        assert screen.state.status == "succeeded"
        assert screen.verdicts["deploy"].startswith("✓")


async def test_escape_cancels_the_dialog_and_nothing_is_recorded(tmp_path: Path) -> None:
    app = gated_app(tmp_path, start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: "deploy" in screen.state.steps
                       and screen.state.steps["deploy"].status == "awaiting_approval")
        await pilot.press("a", *"nope", "escape")
        assert app.screen is screen
        assert screen.handle is not None
        assert screen.handle.state.steps["deploy"].approvals == []
        assert screen.handle.state.steps["deploy"].status == "awaiting_approval"
        await screen.handle.cancel(None)
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))


async def test_deny_needs_a_reason_and_ends_the_run_denied(tmp_path: Path) -> None:
    app = gated_app(tmp_path, start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: "deploy" in screen.state.steps
                       and screen.state.steps["deploy"].status == "awaiting_approval")
        await pilot.press("x", "enter")
        assert isinstance(app.screen, ApprovalScreen)  # reason required
        await pilot.press(*"not today", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))
        assert screen.state.steps["deploy"].status == "denied"
        assert screen.state.steps["after"].status == "skipped"
        assert screen.exit_code == 3
        await pilot.press("escape", "q")
    assert app.return_value == 3


SOFT = """\
[workflow]
name = "soft"

[steps.deploy]
run = "echo deploy"
tags = ["prod"]

[[policy]]
name = "freeze"
match = { tags = ["prod"] }
effect = "deny"
level = "soft"
override_by = ["{user}"]
"""


async def test_override_a_soft_policy_with_a_reason(tmp_path: Path) -> None:
    import getpass

    app = gated_app(tmp_path, text=SOFT.replace("{user}", getpass.getuser()), start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: "deploy" in screen.state.steps
                       and screen.state.steps["deploy"].status == "awaiting_approval")
        await pilot.press("a")  # approving cannot lift a deny: it says so, no dialog
        assert app.screen is screen
        await pilot.press("o", *"hotfix", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))
        assert screen.state.steps["deploy"].overridden_by is not None
        assert screen.state.steps["deploy"].status == "succeeded"


async def test_a_refusal_explains_itself_in_the_detail(tmp_path: Path) -> None:
    text = GATED.replace("reason = true", 'approvers = ["nobody-here"]')
    app = gated_app(tmp_path, text=text, start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: "deploy" in screen.state.steps
                       and screen.state.steps["deploy"].status == "awaiting_approval")
        await pilot.press("a", "enter")
        assert screen.verdicts["deploy"].startswith("✗ refused:")
        assert screen.handle is not None
        assert screen.handle.state.steps["deploy"].status == "awaiting_approval"
        await screen.handle.cancel(None)
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))


RETRY = """\
[workflow]
name = "retry"

[steps.flaky]
run = "exit 1"

[steps.after]
needs = ["flaky"]
run = "echo after"

[steps.slow]
run = "sleep 1"
"""


async def test_retry_a_failed_step_and_its_skipped_dependents(tmp_path: Path) -> None:
    executor = ScriptedExecutor(exits={"flaky": 1}, hold={"slow"})
    app = gated_app(tmp_path, executor, text=RETRY, start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: "after" in screen.state.steps
                       and screen.state.steps["after"].status == "skipped")
        executor.exits["flaky"] = 0
        screen.dag.set_selected("flaky", by_person=True)
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.state.steps["after"].status == "succeeded")
        assert executor.ran.count("flaky") == 2
        executor.release("slow")
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))
        assert screen.state.status == "succeeded"


async def test_cancel_a_step_after_confirming(tmp_path: Path) -> None:
    executor = ScriptedExecutor(hold={"slow"})
    app = gated_app(tmp_path, executor, text=RETRY.replace("exit 1", "true"), start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: "slow" in screen.state.steps
                       and screen.state.steps["slow"].status == "running")
        screen.dag.set_selected("slow", by_person=True)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert screen.state.steps["slow"].status == "running"
        await pilot.press("c", "enter")  # the first choice: cancel the step
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))
        assert screen.state.steps["slow"].status == "cancelled"


async def test_quit_while_live_asks_then_cancels_the_run(tmp_path: Path) -> None:
    executor = ScriptedExecutor(hold={"slow"})
    app = gated_app(tmp_path, executor, text=RETRY.replace("exit 1", "true"), start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: screen.state.live)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # "Keep running" has the focus: enter cancels nothing
        assert app.screen is screen and screen.state.live
        await pilot.press("q", "right", "enter")  # "Cancel the run and quit"
        await wait_for(pilot, lambda: app.return_value is not None)
    assert app.return_value == 130
    assert screen.state.status == "cancelled"


async def test_the_quit_question_fits_a_60_column_screen(tmp_path: Path) -> None:
    executor = ScriptedExecutor(hold={"slow"})
    app = gated_app(tmp_path, executor, text=RETRY.replace("exit 1", "true"), start=True)
    async with app.run_test(size=(60, 20)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: screen.state.live)
        await pilot.press("q")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        box = dialog.query_one("Vertical").region
        assert box.width <= 60 and dialog.region.contains_region(box), box
        await pilot.press("escape")


async def test_quit_when_idle_exits_at_once(tmp_path: Path) -> None:
    app = gated_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
    assert app.return_value == 0


async def test_actions_without_a_run_explain_themselves(tmp_path: Path) -> None:
    app = gated_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        for key in ("a", "x", "o", "r", "c"):
            await pilot.press(key)
            assert app.screen is app.run_screen
        messages = [n.text for n in app.notices]
        assert messages.count("No run is live. Press s to start one.") == 5


async def test_a_run_that_cannot_start_says_why_in_place(tmp_path: Path) -> None:
    from console.run.lock import LockHolder, WorkflowLock

    name = f"prod-{uuid.uuid4().hex}"
    text = GATED.replace('name = "gated"', f'name = "gated"\nlock = "{name}"')
    lock = WorkflowLock(tmp_path / "runtime", name)
    holder = LockHolder(user="bob", uid=1234, pid=1, run="other", since="2025-01-01T00:00:00Z")
    lock.acquire(holder)
    try:
        app = gated_app(tmp_path, text=text, start=True)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.run_screen
            await wait_for(pilot, lambda: bool(screen.banner_text))
            assert "Run not started" in screen.banner_text
            assert "prod" in screen.banner_text
            await pilot.press("q")
    finally:
        lock.release()
    assert app.return_value == 1


async def test_retry_after_the_run_resumes_it_keeping_its_successes(tmp_path: Path) -> None:
    executor = ScriptedExecutor(exits={"flaky": 1})
    app = gated_app(tmp_path, executor, text=RETRY, start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))
        first = screen.state.run_id
        assert screen.state.status == "failed"
        await pilot.press("escape")
        executor.exits["flaky"] = 0
        screen.dag.set_selected("flaky", by_person=True)
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.state.run_id not in (None, first)
                       and screen.state.status == "succeeded")
        assert screen.state.resumed_from == first
        assert screen.state.steps["slow"].status == "reused"
        assert executor.ran.count("slow") == 1
        assert executor.ran.count("flaky") == 2
