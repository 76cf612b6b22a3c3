"""Issue 12, item 4, in a real terminal at 80x24: the log pane takes the focus and says so,
up scrolls the log (not the steps), `[` reaches the retried step's first attempt, `/`
searches it and `ctrl+s` saves it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.tmux_console import console_in_tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def test_a_retried_steps_first_attempt_is_found_searched_and_saved(tmp_path: Path) -> None:
    saved = tmp_path / "upload-attempt-1.log"
    with console_in_tmux(tmp_path, "run", "workflows/demo.toml") as screen:
        screen.wait_for("awaiting 0/1", seconds=40)  # release waits; upload has retried
        screen.send("Up")  # release -> upload (the DAG flows top to bottom at 80 columns)
        screen.send("Enter")
        shown = screen.wait_for("▶ log · attempt 2/2", "/ Search")  # the log's keys
        assert "upload: done on attempt 2" in shown
        screen.send("[")
        shown = screen.wait_for("attempt 1/2", "upload: connection reset by peer")
        screen.send("PageUp")
        shown = screen.wait_for("· paused")
        assert "upload " in shown  # the selection stayed on upload
        screen.send("/")
        screen.wait_for("Find in the log")
        screen.type("RESET")
        screen.wait_for("RESET")  # typed into the field
        screen.send("Enter")
        screen.wait_for("/RESET 1/1")
        screen.send("C-s")
        screen.wait_for("Save the whole log upload.1.log to:")
        screen.send("C-u")
        # Text typed in the same instant as ctrl+u can reach the field before ctrl+u's
        # action runs, and be cleared with the default; type once the field is empty.
        screen.wait_for("-upload.1.log", gone=True)
        screen.type(str(saved))
        screen.wait_for("upload-attempt-1.log")  # typed into the field
        screen.send("Enter")
        screen.wait_for("Saved the log to")
        assert saved.read_text() == "upload: connection reset by peer\n"
        screen.send("Escape")
        screen.wait_for("▶ log", gone=True)
        screen.send("w", "a")
        screen.wait_for("reason (required)")
        screen.type("log read")
        screen.send("Enter")
        screen.wait_for("succeeded in", seconds=40)
        screen.send("q")
        assert screen.exit_code() == "0"
