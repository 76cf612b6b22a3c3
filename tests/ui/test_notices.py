"""Notices, the bell and the jump keys (issue 12, items 2 and 3), driven with Pilot: a gate's
notice lasts as long as the gate and is never raised for a gate already decided; a failure
takes the selection, says so and rings (unless the config says `bell = false`); `e` and `w`
go round the failed steps and the gates, and the footer offers them only when one exists."""

from __future__ import annotations

from pathlib import Path

from console.config import Config
from console.ui.app import ConsoleApp
from console.workflow.loaded import LoadedWorkflow
from tests.ui.conftest import Story, awaiting_story, running_story, snapshot_app


def notices(app: ConsoleApp) -> list[str]:
    return [notice.line() for notice in app.notices]


def footer_keys(app: ConsoleApp) -> set[str]:
    return {str(key.description) for key in app.screen.query("FooterKey").results()
            if hasattr(key, "description")}


def two_failures() -> Story:
    return Story.started().start("build", 1).finish("build", 2, 1.0) \
        .start("test", 3).start("lint", 3) \
        .finish("test", 4, 1.0, outcome="failed", exit_code=2) \
        .finish("lint", 5, 2.0, outcome="failed", exit_code=1) \
        .skip("migrate", 5, "needs test, which failed") \
        .skip("deploy", 5, "needs migrate, which was skipped") \
        .skip("notify", 5, "needs deploy, which was skipped").end("failed", 5.5)


async def test_a_gates_notice_lasts_as_long_as_the_gate(demo: LoadedWorkflow,
                                                        tmp_path: Path) -> None:
    app = snapshot_app(demo, tmp_path)
    rung: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.bell = lambda: rung.append("bell")  # type: ignore[method-assign]
        screen = app.run_screen
        screen.apply_events(running_story().events)
        assert "Next gate" not in footer_keys(app)
        screen.apply_events(awaiting_story().events[len(running_story().events):])
        await pilot.pause()
        assert any(line.startswith("! Approval needed: migrate") for line in notices(app))
        assert rung == ["bell"] and screen.dag.selected == "migrate"
        assert {"Approve", "Deny", "Next gate"} <= footer_keys(app)
        screen.apply_events(Story([]).start("migrate", 50).events)  # the gate passed
        await pilot.pause()
        assert not any("Approval needed" in line for line in notices(app))
        assert "Next gate" not in footer_keys(app)


async def test_a_gate_decided_in_the_same_batch_raises_no_notice_and_no_bell(
    demo: LoadedWorkflow, tmp_path: Path
) -> None:
    # Attaching replays the run: its gate opened long ago, and has passed since.
    app = snapshot_app(demo, tmp_path)
    rung: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.bell = lambda: rung.append("bell")  # type: ignore[method-assign]
        app.run_screen.apply_events(awaiting_story().start("migrate", 50).events)
        await pilot.pause()
        assert not any("Approval needed" in line for line in notices(app))
        assert rung == []


async def test_a_failure_takes_the_selection_says_so_and_rings(demo: LoadedWorkflow,
                                                               tmp_path: Path) -> None:
    app = snapshot_app(demo, tmp_path)
    rung: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.bell = lambda: rung.append("bell")  # type: ignore[method-assign]
        screen = app.run_screen
        assert "Next failed" not in footer_keys(app)
        screen.apply_events(two_failures().events)
        await pilot.pause()
        assert screen.dag.selected == "test"
        assert any(line.startswith("✗ Step failed: test failed (exit 2) (and 1 more)")
                   for line in notices(app))
        assert rung == ["bell"]
        assert {"Next failed", "Retry"} <= footer_keys(app)
        await pilot.press("e")
        assert screen.dag.selected == "lint"
        await pilot.press("e")
        assert screen.dag.selected == "test"  # round again
        await pilot.press("home", "w")  # no gate: the selection stays, a notice says why
        assert screen.dag.selected == "build"
        assert any("No step is waiting at a gate." in line for line in notices(app))


async def test_the_bell_stays_quiet_when_the_config_says_so(demo: LoadedWorkflow,
                                                             tmp_path: Path) -> None:
    app = snapshot_app(demo, tmp_path, config=Config(bell=False))
    rung: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.bell = lambda: rung.append("bell")  # type: ignore[method-assign]
        app.run_screen.apply_events(awaiting_story().events)
        app.run_screen.apply_events(two_failures().events[1:])
        await pilot.pause()
        assert any("Step failed" in line for line in notices(app))
        assert rung == []
