"""The remaining keys and dialogs: help, theme, audit pane, detail, palette, params form,
the workflow watcher and `console` with no subcommand."""

from __future__ import annotations

import asyncio
import io
import tomllib
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Input, Static

from console.commands.ui import find_workflow
from console.errors import UsageError
from console.paths import config_file
from console.ui.screens.help import HelpScreen
from console.ui.screens.params import ParamsScreen
from console.ui.widgets.audit_pane import AuditPane
from console.ui.widgets.step_detail import StepDetail
from console.workflow.loader import load_workflow
from tests.ui.conftest import (
    DEMO,
    GATED,
    ScriptedExecutor,
    running_story,
    snapshot_app,
    wait_for,
    write_workflow,
)


def detail_text(detail: StepDetail) -> str:
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(detail.query_one("#detail-body", Static).content)
    return console.export_text()


async def test_help_lists_every_key(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {key for key, _ in app.screen.rows}
        for key in ("a", "x", "o", "r", "c", "s", "/", "g", "b", "t", "?", "q", "enter",
                    "↑ k", "↓ j", "← h", "→ l", "ctrl+p"):
            assert key in keys, key
        await pilot.press("escape")
        assert app.screen is app.run_screen


async def test_t_cycles_themes_and_remembers_the_choice(tmp_path: Path) -> None:
    config = config_file()
    config.parent.mkdir(parents=True)
    config.write_text('audit = "/tmp/elsewhere.jsonl"\n')
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path, remember_theme=True)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "dark"
        await pilot.press("t")
        assert app.theme == "light"
        await pilot.press("t", "t", "t")
        assert app.theme == "dark"
    saved = tomllib.loads(config.read_text())
    assert saved == {"audit": "/tmp/elsewhere.jsonl", "theme": "dark"}


async def test_b_toggles_the_audit_pane(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("b")
        assert len(app.run_screen.query(AuditPane)) == 1
        await pilot.press("b")
        assert len(app.run_screen.query(AuditPane)) == 0


async def test_enter_opens_the_detail_on_a_narrow_terminal(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        screen.apply_events(running_story().events)
        detail = screen.detail
        assert not detail.display or detail.region.width == 0
        await pilot.press("enter")
        assert detail.region.width > 0
        assert "make build" in detail_text(detail)
        await pilot.press("escape")
        assert detail.region.width == 0


async def test_the_detail_is_always_there_when_wide(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        assert app.run_screen.detail.region.width > 60
        assert "make build 'VERSION={{ params.version }}'" in detail_text(app.run_screen.detail)


async def test_the_command_palette_knows_every_action(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)):
        titles = {c.title for c in app.get_system_commands(app.screen)}
    for title in ("Approve step", "Deny step", "Override policy", "Retry step",
                  "Cancel step or run", "Start run", "Filter steps", "Toggle graph/list",
                  "Toggle audit pane", "Next theme", "Keys", "Quit"):
        assert title in titles


PARAMS = DEMO.replace(
    'version = { type = "string", pattern = \'^\\d+\\.\\d+\\.\\d+$\', default = "1.4.2" }',
    'version = { type = "string", pattern = \'^\\d+\\.\\d+\\.\\d+$\' }\n'
    'env = { type = "choice", choices = ["staging", "prod"], default = "staging" }',
)


async def test_the_params_form_validates_before_the_run_starts(tmp_path: Path) -> None:
    loaded = load_workflow(write_workflow(tmp_path, PARAMS))
    app = snapshot_app(loaded, tmp_path, executor=ScriptedExecutor(), start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsScreen))
        form = app.screen
        await pilot.press("enter")  # version is required
        assert "required" in str(form.query_one("#problem-version").render())
        await pilot.press(*"1.x", "enter")
        assert "does not match" in str(form.query_one("#problem-version").render())
        assert app.screen is form and app.run_screen.handle is None
        form.query_one("#param-version", Input).value = "1.4.3"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_screen.handle is not None)
        assert app.run_screen.handle is not None
        assert app.run_screen.handle.params == {"version": "1.4.3", "env": "staging"}


async def test_given_params_skip_the_form(tmp_path: Path) -> None:
    loaded = load_workflow(write_workflow(tmp_path, PARAMS))
    app = snapshot_app(loaded, tmp_path, executor=ScriptedExecutor(), start=True,
                       params={"version": "2.0.0"})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.run_screen.handle is not None)
        assert not isinstance(app.screen, ParamsScreen)


async def test_an_idle_workflow_reloads_when_the_file_changes(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, GATED)
    app = snapshot_app(load_workflow(path), tmp_path, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await pilot.pause(0.3)
        path.write_text(GATED + '\n[steps.extra]\nneeds = ["after"]\nrun = "true"\n')
        await wait_for(pilot, lambda: "extra" in screen.dag.steps)
        path.write_text(GATED + "\n[steps.broken\n")
        await wait_for(pilot, lambda: "has errors" in screen.banner_text)
        assert "extra" in screen.dag.steps  # the last good DAG stays
        path.write_text(GATED)
        await wait_for(pilot, lambda: "extra" not in screen.dag.steps)
        assert screen.banner_text == ""


async def test_a_change_during_a_run_applies_to_the_next_run(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, GATED)
    app = snapshot_app(load_workflow(path), tmp_path, watch=True,
                       executor=ScriptedExecutor(), start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: screen.state.live)
        await pilot.pause(0.3)
        path.write_text(GATED.replace("echo after", "echo later"))
        await wait_for(pilot, lambda: "next run" in screen.banner_text)
        assert screen.state.live
        assert screen.handle is not None
        await asyncio.sleep(0)


def test_console_finds_the_workflow_here_or_the_only_one_in_workflows(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="console init"):
        find_workflow(tmp_path)
    (tmp_path / "workflows").mkdir()
    only = write_workflow(tmp_path / "workflows", GATED, "deploy.toml")
    assert find_workflow(tmp_path) == only
    write_workflow(tmp_path / "workflows", GATED, "other.toml")
    with pytest.raises(UsageError, match="several workflows"):
        find_workflow(tmp_path)
    here = write_workflow(tmp_path, GATED)
    assert find_workflow(tmp_path) == here


async def test_a_dialogs_footer_offers_the_dialogs_keys_not_the_run_screens(
        tmp_path: Path) -> None:
    """Under the approval dialog the footer read `a Approve x Deny … q Quit`, while `x` and
    `q` went into the reason field: now the footer is the dialog's, and ctrl+q still asks."""
    from console.ui.screens.approval import ApprovalScreen
    from console.ui.screens.confirm import ConfirmScreen
    from tests.ui.conftest import awaiting_story

    def offered() -> set[str]:
        return {str(key.description) for key in app.screen.query("FooterKey").results()
                if hasattr(key, "description")}

    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.run_screen.apply_events(awaiting_story().events)
        await pilot.pause()
        assert {"Approve", "Deny", "Quit"} <= offered()
        step = app.run_screen.state.steps["migrate"]
        app.push_screen(ApprovalScreen(step, "approve", reason_required=True, blink=False))
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.pause()
        assert offered() == {"Cancel"}
        await pilot.press("x", "q")
        assert app.screen.query_one("#reason", Input).value == "xq"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.run_screen)
        await pilot.pause()
        assert {"Approve", "Deny", "Quit"} <= offered()
        app.push_screen(ConfirmScreen("Sure?", [("yes", "Yes"), ("no", "No")]))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        assert offered() == {"Back"}
        await pilot.press("ctrl+q")  # no run is live here: it quits at once
        await wait_for(pilot, lambda: app.return_code is not None)
