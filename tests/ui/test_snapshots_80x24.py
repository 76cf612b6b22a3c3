"""SVG snapshots of the shipped bluegreen workflow at 80x24 (running, at its gate, failed
with the failed step selected) and of the demo at 60x20: everything important on screen
(issue 12), and bluegreen's params form. Review a changed SVG before accepting it with
`--snapshot-update`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from console.events import RunStarted
from console.ui.app import ConsoleApp
from console.ui.screens.params import ParamsScreen
from console.workflow.loaded import LoadedWorkflow
from console.workflow.loader import load_workflow
from tests.ui.conftest import (
    RUN,
    ScriptedExecutor,
    Story,
    awaiting_story,
    snapshot_app,
    ts,
    wait_for,
)

SnapCompare = Callable[..., bool]
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
BLUEGREEN_STEPS = ("build", "unit-tests", "integration-tests", "deploy-green", "smoke-green",
                   "switch-traffic", "verify", "retire-blue", "rollback", "cleanup")


def bluegreen() -> LoadedWorkflow:
    return load_workflow(WORKFLOWS / "bluegreen.toml")


def bluegreen_started() -> Story:
    return Story([RunStarted(
        run=RUN, ts=ts(0), workflow="payments-bluegreen", workflow_path="/srv/bluegreen.toml",
        file_hashes={}, params={"version": "1.4.2", "env": "staging"}, steps=BLUEGREEN_STEPS,
        user="alice", uid=1000, host="build-01", pid=4242, version="0.1.0", concurrency=3,
        run_dir="/srv/runs",
    )])


def bluegreen_running() -> Story:
    return bluegreen_started().start("build", 1).finish("build", 9.2, 8.2) \
        .start("unit-tests", 10).start("integration-tests", 10, of=2) \
        .finish("unit-tests", 31.5, 21.5)


def bluegreen_awaiting() -> Story:
    return bluegreen_running().finish("integration-tests", 40, 30.0) \
        .start("deploy-green", 40).finish("deploy-green", 52, 12.0) \
        .start("smoke-green", 52, of=3).finish("smoke-green", 55.4, 3.4) \
        .gate("switch-traffic", 56)


def bluegreen_failed() -> Story:
    return bluegreen_running().start("integration-tests", 33, attempt=2, of=2) \
        .finish("integration-tests", 44, 11.0, outcome="failed", exit_code=1, attempt=2) \
        .skip("deploy-green", 44, "needs integration-tests, which failed") \
        .skip("smoke-green", 44, "needs deploy-green, which was skipped") \
        .skip("switch-traffic", 44, "needs smoke-green, which was skipped") \
        .skip("verify", 44, "needs switch-traffic, which was skipped") \
        .skip("retire-blue", 44, "needs verify, which was skipped") \
        .skip("rollback", 44, "needs switch-traffic, which was skipped") \
        .start("cleanup", 44).finish("cleanup", 44.3, 0.3).end("failed", 44.5)


def feed(story: Story) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        app.run_screen.apply_events(story.events)
        app.run_screen.query_one("#dag").focus()
        await pilot.pause()

    return run_before


def test_bluegreen_running(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(bluegreen(), tmp_path), run_before=feed(bluegreen_running()),
                        terminal_size=(80, 24))


def test_bluegreen_awaiting_approval(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(bluegreen(), tmp_path),
                        run_before=feed(bluegreen_awaiting()), terminal_size=(80, 24))


def test_bluegreen_failed_step_selected(snap_compare: SnapCompare, tmp_path: Path) -> None:
    # The failure selects itself; enter opens its detail with the focus in its log.
    assert snap_compare(snapshot_app(bluegreen(), tmp_path), run_before=feed(bluegreen_failed()),
                        terminal_size=(80, 24), press=["enter"])


def test_demo_awaiting_at_60x20(snap_compare: SnapCompare, demo: LoadedWorkflow,
                                tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(demo, tmp_path), run_before=feed(awaiting_story()),
                        terminal_size=(60, 20))


def version_field_focused(app: ConsoleApp) -> bool:
    """The form is up with the focus in its first field: keys pressed now are typed there."""
    focused = app.screen.focused
    return isinstance(app.screen, ParamsScreen) and focused is not None \
        and focused.id == "param-version"


def test_bluegreen_params_form_with_a_problem(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        await wait_for(pilot, lambda: version_field_focused(app))
        await pilot.press(*"1.4", "enter")
        await pilot.pause()

    app = snapshot_app(bluegreen(), tmp_path, executor=ScriptedExecutor(), start=True)
    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))


def test_bluegreen_failed_in_16_colours(snap_compare: SnapCompare, tmp_path: Path) -> None:
    """What a TERM=xterm(-16color) terminal gets: ANSI colours (chosen on mount from the
    terminal's colour system, which a snapshot's is not) give every status its own colour."""
    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, ConsoleApp)
        pilot.app.use_ansi_colours()
        await feed(bluegreen_failed())(pilot)

    assert snap_compare(snapshot_app(bluegreen(), tmp_path), run_before=run_before,
                        terminal_size=(80, 24))
