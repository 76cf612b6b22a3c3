"""Opening the UI on a file: the shell paints first, the workflow loads in a worker after the
first frame (its errors in place of the DAG), unless its plan is kept from an earlier run
(then the first frame has the DAG), and a run then redraws only what it changed."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from textual.widgets import Static

from console.events import StepReady, StepStarted
from console.ui.screens.summary import SummaryScreen
from console.ui.widgets.dag import DagView
from console.workflow.plan_cache import load_for_run
from tests.ui.conftest import (
    GATED,
    RUN,
    ScriptedExecutor,
    Story,
    settings_in,
    snapshot_app,
    ts,
    wait_for,
    write_workflow,
)
from tests.ui.test_screen_keys import detail_text

NO_GATE = GATED.replace("approval = { approvals = 1, reason = true }\n", "")


def screen_texts(app: Any) -> list[str]:
    """The text runs of what the screen shows now (each DAG list row is one run)."""
    found = re.findall(r">([^<]+)<", app.export_screenshot())
    return [html.unescape(t).replace("\xa0", " ") for t in found]


def placeholder_text(app: Any) -> str:
    return str(app.run_screen.query_one("#placeholder-text", Static).content)


async def test_the_shell_paints_then_the_workflow_loads(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, GATED)
    app = snapshot_app(path, tmp_path)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        assert screen.loaded is None
        assert placeholder_text(app) == f"loading {path}…"
        await wait_for(pilot, lambda: screen.loaded is not None)
        await pilot.pause()
        assert list(screen.dag.steps) == ["build", "deploy", "after"]
        assert screen.dag.has_focus
        assert not screen.query("#placeholder")
        assert screen.settings is not None and screen.settings.via == "tui"
        assert screen.settings.audit_path == tmp_path / "state" / "audit.jsonl"


async def test_a_file_with_its_plan_kept_opens_with_the_dag_in_the_first_frame(
    tmp_path: Path
) -> None:
    path = write_workflow(tmp_path, GATED)
    load_for_run(path)  # an earlier run validated these bytes and kept the plan
    app = snapshot_app(path, tmp_path)  # type: ignore[arg-type]
    frames: list[bool] = []
    display = app._display

    def seen(screen: Any, renderable: Any) -> None:
        display(screen, renderable)
        if renderable is not None:
            frames.append(bool(app.run_screen.query("#dag")))

    app._display = seen  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        assert screen.loaded is not None and list(screen.dag.steps) == ["build", "deploy", "after"]
        assert not screen.query("#placeholder")
        await pilot.pause()
        assert screen.settings is not None and screen.settings.via == "tui"
        assert not [w for w in app.workers if w.group == "load"]
        path.write_text(GATED.replace("echo build", "echo build again"))  # new bytes: a worker
    assert frames and all(frames)
    app = snapshot_app(path, tmp_path)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        assert placeholder_text(app) == f"loading {path}…"
        await wait_for(pilot, lambda: app.run_screen.loaded is not None)


def test_the_shell_imports_neither_the_engine_nor_pydantic() -> None:
    code = (
        "import sys\n"
        "from console.ui.app import make_app\n"
        "heavy = ['pydantic', 'console.run.engine', 'console.events',\n"
        "         'console.workflow.model', 'console.ui.widgets.dag']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""


async def test_a_workflow_with_errors_says_so_in_place(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, GATED + "\n[steps.broken\n")
    app = snapshot_app(path, tmp_path)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: screen.load_error is not None)
        text = placeholder_text(app)
        assert text.startswith("workflow.toml has errors; fix them, or press q to quit")
        assert str(path) in text
        for key in ("s", "g", "slash", "escape", "b"):
            await pilot.press(key)
        assert screen.handle is None and screen.loaded is None
        messages = [n.text for n in app.notices]
        assert "workflow.toml has errors; fix them first." in messages
        await pilot.press("q")
    assert app.return_value == 1


async def test_a_fixed_file_loads_without_starting_the_run(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, GATED + "\n[steps.broken\n")
    app = snapshot_app(path, tmp_path, watch=True, start=True,  # type: ignore[arg-type]
                       executor=ScriptedExecutor())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: screen.load_error is not None)
        assert "fix them and save (it loads again)" in placeholder_text(app)
        await pilot.pause(0.3)
        path.write_text(GATED)
        await wait_for(pilot, lambda: screen.loaded is not None)
        await pilot.pause(0.2)
        assert screen.handle is None and screen.exit_code == 0
        await pilot.press("q")
    assert app.return_value == 0


async def test_start_from_a_path_runs_with_settings_from_the_loaded_file(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, NO_GATE)
    seen: list[str] = []

    def settings_for(loaded: Any) -> Any:
        seen.append(loaded.name)
        return settings_in(tmp_path)

    app = snapshot_app(path, tmp_path, start=True, settings=settings_for,  # type: ignore[arg-type]
                       executor=ScriptedExecutor())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen))
        assert app.run_screen.state.status == "succeeded"
        assert seen == ["gated"]
        assert (tmp_path / "state" / "audit.jsonl").is_file()


async def test_a_batch_redraws_the_steps_it_changed(tmp_path: Path) -> None:
    steps = "".join(f'[steps.s{i:03}]\nrun = "true"\n\n' for i in range(400))
    path = write_workflow(tmp_path, f'[workflow]\nname = "wide"\n\n{steps}')
    app = snapshot_app(path, tmp_path)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: screen.loaded is not None)
        await pilot.pause()
        dag = screen.query_one(DagView)
        assert dag.mode == "list"
        screen.apply_events(Story.started(tuple(screen.dag.steps)).events)
        await pilot.pause()
        screen.apply_events([StepReady(run=RUN, step="s002", ts=ts(1)),
                             StepStarted(run=RUN, step="s002", ts=ts(1), attempt=1,
                                         max_attempts=1, command=("true",),
                                         log_path="/nonexistent/s002.log", pid=7)])
        await pilot.pause()
        rows = [t.strip() for t in screen_texts(app) if " L1 " in t]
        assert rows[:3] == ["○ s000  L1   pending", "○ s001  L1   pending",
                            "▶ s002  L1   running 1m14s"]
        screen.apply_events([StepReady(run=RUN, step="s300", ts=ts(2))])  # off screen
        await pilot.pause()
        assert dag.step_state("s300").status == "ready"
        assert not any("s300" in t for t in screen_texts(app))


async def test_a_hidden_detail_catches_up_when_shown(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, NO_GATE)
    app = snapshot_app(path, tmp_path)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await wait_for(pilot, lambda: screen.loaded is not None)
        await pilot.pause()
        assert not screen.detail.display
        screen.apply_events(Story.started(("build", "deploy", "after")).start("build", 1).events)
        await pilot.press("enter")
        await pilot.pause()
        assert screen.detail.display
        assert "running" in detail_text(screen.detail)
