"""The summary after a run: outcome, counts, the timeline and the audit head."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Static

from console.events import (
    Actor,
    Event,
    RunFinished,
    RunStarted,
    StepDenied,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from console.run.state import RunState
from console.ui.screens.summary import SummaryScreen, Timeline, bar

RUN = "20260315T101500-a1b2"
HEAD = "42:" + "9f" * 32


def ts(seconds: float) -> str:
    minute, second = divmod(seconds, 60)
    return f"2026-03-15T10:{15 + int(minute):02d}:{second:09.6f}Z"


def finished_run() -> RunState:
    alice = Actor("alice", 1000, "tui")
    log = "/tmp/runs/x/{}.1.log"

    def ran(step: str, start: float, seconds: float, outcome: str = "succeeded") -> list[Event]:
        return [
            StepStarted(run=RUN, ts=ts(start), step=step, attempt=1, max_attempts=1,
                        command=("make", step), log_path=log.format(step), pid=100),
            StepFinished(run=RUN, ts=ts(start + seconds), step=step, attempt=1,
                         outcome=outcome,  # type: ignore[arg-type]
                         exit_code=0 if outcome == "succeeded" else 2, error=None,
                         duration_s=seconds, log_path=log.format(step), log_size=10,
                         log_sha256="ab" * 32),
        ]

    events: list[Event] = [
        RunStarted(run=RUN, ts=ts(0), actor=alice, workflow="payments-deploy",
                   workflow_path="workflows/payments.toml", file_hashes={}, params={},
                   steps=("build", "test", "lint", "migrate", "switch", "notify"), user="alice",
                   uid=1000, host="build-01", pid=1, version="0.1.0", concurrency=2,
                   run_dir="/tmp/runs/x"),
        *ran("build", 0, 12),
        *ran("test", 12, 30),
        *ran("lint", 12, 4),
        *ran("migrate", 42, 18, outcome="failed"),
        StepSkipped(run=RUN, ts=ts(60), step="switch", reason="needs migrate, which failed"),
        StepDenied(run=RUN, ts=ts(60), step="notify", reason="Friday freeze",
                   policies=("Friday freeze",)),
        RunFinished(run=RUN, ts=ts(60), outcome="failed",
                    counts={"succeeded": 3, "failed": 1, "skipped": 1, "denied": 1},
                    duration_s=60.0),
    ]
    return RunState.from_events(events)


class SummaryHost(App[None]):
    def __init__(self, state: RunState) -> None:
        super().__init__()
        self.state = state
        self.summary_closed = False

    def on_mount(self) -> None:
        self.push_screen(SummaryScreen(self.state, HEAD), callback=self._summary_dismissed)

    def _summary_dismissed(self, _result: None) -> None:
        self.summary_closed = True


def test_bar_scales_to_the_width() -> None:
    assert bar(0, 60, 60, 20) == "█" * 20
    assert bar(30, 30, 60, 20) == " " * 10 + "█" * 10
    assert bar(0, 1, 60, 20) == "▍"  # a third of a cell, to the nearest eighth (3/8)
    assert bar(0, 0.001, 60, 20) == "▏", "a step that ran always shows"
    assert bar(59.9, 10, 60, 20) == " " * 19 + "█", "never past the track's end"


async def test_summary_shows_outcome_counts_timeline_and_head() -> None:
    app = SummaryHost(finished_run())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SummaryScreen)
        outcome = str(screen.query_one("#summary-outcome", Static).render())
        assert outcome == f"payments-deploy · run {RUN} · failed in 1m00s"
        assert screen.query_one("#summary-outcome").has_class("-bad")
        counts = str(screen.query_one("#summary-counts", Static).render())
        assert counts == "6/6 steps finished: 3 succeeded, 1 failed, 1 denied, 1 skipped"
        assert str(screen.query_one("#summary-head", Static).render()) == HEAD
        rows = screen.query_one(Timeline).render().plain.split("\n")
        assert len(rows) == 7
        assert rows[0].rstrip().endswith("1m00s│")
        build, test, lint, migrate, switch, notify = rows[1:]
        assert build.startswith("build   │█") and "✓ succeeded 12.0s" in build
        assert test.index("█") > build.index("█"), "test starts after build"
        assert lint.index("█") == test.index("█"), "lint starts with test"
        assert "✗ failed (exit 2)" in migrate
        assert "↷ skipped" in switch and "█" not in switch
        assert "⊘ denied: Friday freeze" in notify
        assert all(len(row) <= 78 for row in rows)


async def test_escape_closes_the_summary() -> None:
    for key in ("escape",):
        app = SummaryHost(finished_run())
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause()
            assert app.summary_closed
            assert not isinstance(app.screen, SummaryScreen)


def many_steps_run(count: int = 14) -> RunState:
    """A run of `count` steps that never started: more timeline rows than 60x20 holds."""
    steps = tuple(f"step-{n:02d}" for n in range(count))
    return RunState.from_events([
        RunStarted(run=RUN, ts=ts(0), workflow="many", workflow_path="/w.toml",
                   file_hashes={}, params={}, steps=steps, user="alice", uid=1000,
                   host="h", pid=1, version="0.1.0", concurrency=1, run_dir="/r"),
        RunFinished(run=RUN, ts=ts(5), outcome="failed", counts={}, duration_s=5.0),
    ])


async def test_the_head_stays_whole_and_in_view_however_many_steps() -> None:
    """At 60x20 a run of 14 steps overflows the timeline; the head, above it, stays whole."""
    app = SummaryHost(many_steps_run())
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        head = app.screen.query_one("#summary-head", Static)
        assert str(head.render()) == HEAD
        assert head.region.height == 2, "wrapped, not cut"
        assert app.screen.region.contains_region(head.region)
        assert head.region.bottom < app.screen.query_one(Timeline).region.y
