"""SVG snapshots of the key screens at 80x24, with the clock and durations frozen.

Each state is built from scripted events (tests/ui/conftest.py); review a changed SVG
before accepting it with `--snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from console.ui.app import ConsoleApp
from console.ui.screens.approval import ApprovalScreen
from console.workflow.loaded import LoadedWorkflow
from tests.ui.conftest import (
    Story,
    awaiting_story,
    denied_story,
    failed_story,
    running_story,
    snapshot_app,
)

SnapCompare = Callable[..., bool]


def feed(story: Story | None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        if story is not None:
            app.run_screen.apply_events(story.events)
        app.run_screen.query_one("#dag").focus()

    return run_before


def test_idle(snap_compare: SnapCompare, demo: LoadedWorkflow, tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(demo, tmp_path), run_before=feed(None))


def test_running(snap_compare: SnapCompare, demo: LoadedWorkflow, tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(demo, tmp_path), run_before=feed(running_story()))


def test_awaiting_approval(snap_compare: SnapCompare, demo: LoadedWorkflow,
                           tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(demo, tmp_path), run_before=feed(awaiting_story()))


def test_approval_dialog(snap_compare: SnapCompare, demo: LoadedWorkflow, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await feed(awaiting_story())(pilot)
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        step = app.run_screen.state.steps["migrate"]
        app.push_screen(ApprovalScreen(step, "approve", reason_required=True, blink=False))

    assert snap_compare(snapshot_app(demo, tmp_path), run_before=run_before)


def test_denied(snap_compare: SnapCompare, demo: LoadedWorkflow, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await feed(denied_story())(pilot)
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        app.run_screen.dag.set_selected("migrate", by_person=True)

    assert snap_compare(snapshot_app(demo, tmp_path), run_before=run_before)


def test_failed_with_detail(snap_compare: SnapCompare, demo: LoadedWorkflow,
                            tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await feed(failed_story())(pilot)
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        app.run_screen.dag.set_selected("test", by_person=True)

    assert snap_compare(snapshot_app(demo, tmp_path), run_before=run_before, press=["enter"])


def test_help(snap_compare: SnapCompare, demo: LoadedWorkflow, tmp_path: Path) -> None:
    app = snapshot_app(demo, tmp_path)
    assert snap_compare(app, run_before=feed(None), press=["question_mark"])


def test_list_view_at_120x40(snap_compare: SnapCompare, demo: LoadedWorkflow,
                             tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(demo, tmp_path), run_before=feed(awaiting_story()),
                        press=["g"], terminal_size=(120, 40))
