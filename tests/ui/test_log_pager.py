"""The log pane as a pager: enter gives it the focus (and says so), up / pageup scroll the
log, `[` / `]` reach every attempt of a retried step, `/` `n` `N` search, `f` pauses and
resumes following, `ctrl+s` saves the whole log to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from console.events import StepFinished, StepReady, StepStarted
from console.ui.app import ConsoleApp
from console.ui.screens.log_prompt import LogPrompt
from console.ui.widgets.log_tail import LogTail, attempt_log
from console.workflow.loader import load_workflow
from tests.ui.conftest import RUN, Story, snapshot_app, ts, wait_for, write_workflow


def retried_test(tmp_path: Path) -> Story:
    """`test` failed on attempt 1 and is running attempt 2; both logs are on disk."""
    runs = tmp_path / "runs" / RUN
    runs.mkdir(parents=True)
    first, second = runs / "test.1.log", runs / "test.2.log"
    first.write_text("".join(f"attempt one line {n}\n" for n in range(60))
                     + "connection reset by peer\n")
    second.write_text("".join(f"attempt two line {n}\n" for n in range(80)))
    story = Story.started().start("build", 1).finish("build", 13.4, 12.4)
    story.events += [
        StepReady(run=RUN, step="test", ts=ts(14)),
        StepStarted(run=RUN, step="test", ts=ts(14), attempt=1, max_attempts=2,
                    command=("make", "test"), log_path=str(first), pid=100),
        StepFinished(run=RUN, step="test", ts=ts(20), attempt=1, outcome="failed",
                     exit_code=1, error=None, duration_s=6.0, log_path=str(first),
                     log_size=10, log_sha256="0" * 64, retry_in_s=1.0),
        StepStarted(run=RUN, step="test", ts=ts(21), attempt=2, max_attempts=2,
                    command=("make", "test"), log_path=str(second), pid=101),
    ]
    return story


async def focused_log(pilot: Pilot[Any], app: ConsoleApp, story: Story) -> LogTail:
    await app.workers.wait_for_complete()
    await pilot.pause()
    screen = app.run_screen
    screen.apply_events(story.events)
    screen.dag.set_selected("test", by_person=True)
    screen.dag.focus()
    await pilot.press("enter")
    tail = screen.detail.log_tail
    await wait_for(pilot, lambda: tail.has_focus)
    return tail


async def prompt_ready(pilot: Pilot[Any], app: ConsoleApp) -> LogPrompt:
    """The prompt is up with the focus in its field: keys pressed now are typed there."""
    await wait_for(pilot, lambda: isinstance(app.screen, LogPrompt)
                   and app.screen.focused is not None
                   and app.screen.focused.id == "prompt-input")
    assert isinstance(app.screen, LogPrompt)
    return app.screen


def shown(tail: LogTail) -> list[str]:
    return tail.render().plain.split("\n")


def title(tail: LogTail) -> str:
    return str(tail.border_title)


async def test_enter_focuses_the_log_and_up_scrolls_it_not_the_dag(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        tail = await focused_log(pilot, app, retried_test(tmp_path))
        assert title(tail).startswith("▶ log · attempt 2/2")
        assert shown(tail)[-1].strip() == "attempt two line 79"
        await pilot.press("up", "pageup")
        assert app.run_screen.dag.selected == "test"
        assert "attempt two line 79" not in tail.render().plain
        assert "paused" in title(tail)
        await pilot.press("end")
        assert shown(tail)[-1].strip() == "attempt two line 79"
        assert "paused" not in title(tail)
        await pilot.press("escape")
        assert app.run_screen.dag.has_focus
        assert not title(tail).startswith("▶")


async def test_brackets_switch_attempts_and_a_new_line_waits_while_paused(
    tmp_path: Path,
) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        tail = await focused_log(pilot, app, retried_test(tmp_path))
        await pilot.press("left_square_bracket")
        assert "attempt 1/2" in title(tail)
        assert shown(tail)[-1].strip() == "connection reset by peer"
        await pilot.press("left_square_bracket")  # there is no attempt 0
        assert tail.attempt == 1
        await pilot.press("right_square_bracket")
        assert tail.attempt == 2
        await pilot.press("f")
        assert "paused" in title(tail)
        assert tail.path is not None
        with tail.path.open("a") as log:
            log.write("a line written while paused\n")
        app.run_screen.detail.refresh_log()
        assert "while paused" not in tail.render().plain
        await pilot.press("f")
        assert shown(tail)[-1].strip() == "a line written while paused"


async def test_slash_finds_and_n_steps_through_the_matches(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        tail = await focused_log(pilot, app, retried_test(tmp_path))
        await pilot.press("slash")
        await prompt_ready(pilot, app)
        await pilot.press(*"LINE 1", "enter")
        await wait_for(pilot, lambda: tail.has_focus)
        # "line 1", "line 10".."line 19": 11 matches; the last (newest) one is current
        assert "/LINE 1 11/11" in title(tail)
        assert "attempt two line 19" in tail.render().plain
        await pilot.press("N")
        assert "10/11" in title(tail)
        await pilot.press("n", "n")
        assert "1/11" in title(tail)
        assert "attempt two line 1\n" in tail.render().plain + "\n"
        await pilot.press("slash")
        await prompt_ready(pilot, app)
        await pilot.press(*"nowhere", "enter")
        await wait_for(pilot, lambda: "no match" in title(tail))


async def test_ctrl_s_saves_the_whole_log_and_never_overwrites(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    target = tmp_path / "saved.log"
    async with app.run_test(size=(80, 24)) as pilot:
        tail = await focused_log(pilot, app, retried_test(tmp_path))
        await pilot.press("left_square_bracket", "ctrl+s")
        prompt = await prompt_ready(pilot, app)
        assert prompt.value.endswith(f"{RUN}-test.1.log")
        field = prompt.query_one("#prompt-input")
        field.value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: target.exists())
        assert target.read_text().endswith("connection reset by peer\n")
        assert target.read_text().startswith("attempt one line 0\n")
        await pilot.press("ctrl+s")
        field = (await prompt_ready(pilot, app)).query_one("#prompt-input")
        field.value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: tail.has_focus)
        assert target.read_text().startswith("attempt one line 0\n")


def test_attempt_logs_sit_beside_the_latest() -> None:
    latest = Path("/runs/r1/deploy.eu.3.log")
    assert attempt_log(latest, 3, 1) == Path("/runs/r1/deploy.eu.1.log")


async def test_a_new_attempt_leaves_an_older_one_chosen_in_view(tmp_path: Path) -> None:
    logs = [tmp_path / f"deploy.{n}.log" for n in (1, 2, 3)]
    for number, log in enumerate(logs, 1):
        log.write_text(f"attempt {number}\n")
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tail = app.run_screen.detail.log_tail
        tail.show(logs[1], 2)
        tail.show_attempt(1)
        tail.show(logs[2], 3)  # attempt 3 began while attempt 1 was being read
        assert tail.path == logs[0] and "attempt 1/3" in title(tail)
        tail.show_attempt(3)
        tail.show(logs[2], 3)
        assert tail.path == logs[2]
        tail.show(tmp_path / "other.1.log", 1)  # another step: its own latest log
        assert tail.path == tmp_path / "other.1.log" and tail.attempt == 1


def test_snapshot_the_first_attempt_searched_at_80x24(snap_compare: Any, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        tail = await focused_log(pilot, app, retried_test(tmp_path))
        await pilot.press("left_square_bracket", "slash")
        await prompt_ready(pilot, app)
        await pilot.press(*"line 5", "enter")
        await wait_for(pilot, lambda: tail.has_focus and "/line 5" in title(tail))
        await pilot.press("N")

    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))


async def test_under_80_columns_the_footer_keeps_room_for_help_and_quit(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        tail = await focused_log(pilot, app, retried_test(tmp_path))
        await pilot.pause()
        keys = [k for k, b in app.screen.active_bindings.items() if b.binding.show]
        assert "slash" in keys and "question_mark" in keys and "q" in keys
        assert "f" not in keys and "ctrl+s" not in keys
        await pilot.press("f")  # still answers
        assert not tail.following
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        keys = [k for k, b in app.screen.active_bindings.items() if b.binding.show]
        assert "f" in keys and "ctrl+s" in keys
