"""Issue 12, item 3, in a real terminal: failures and gates find you. A step that fails for
good takes the selection, a notice names it and the terminal bell rings (not when the config
says `bell = false`); `e` and `w` jump to the next failed step and the next gate, and the
footer offers them only while one exists; a gate's deadline counts down on its card and in
the header."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import own_workflows
from tests.e2e.tmux_console import (
    Screen,
    bell_rung,
    console_in_tmux,
    reverse_video,
)
from tests.engine.cli_runs import wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

COUNTDOWN = re.compile(r"\b(29|30)m\b")  # the demo's gate: 30 minutes


def failing_demo(tmp_path: Path) -> Path:
    """The demo, with an upload that fails on every attempt (not only the first)."""
    demo = own_workflows(tmp_path) / "demo.toml"
    demo.write_text(demo.read_text().replace('"${CONSOLE_ATTEMPT:-1}" -lt 2', "1 -lt 2"))
    return demo


def selected(screen: Screen) -> str:
    """What the selected card says, its rows joined."""
    return " ".join(reverse_video(screen))


def selection_reads(screen: Screen, start: str) -> None:
    """Wait until the selected card starts with `start`: the footer can be redrawn a frame
    before the DAG on a busy machine, so a screen line that shows is no proof of the other."""
    wait_for(f"the selection on {start!r}", lambda: selected(screen).startswith(start))


def footer(shown: str) -> str:
    return shown.splitlines()[-1]


def test_a_failure_takes_the_selection_names_itself_rings_and_e_finds_it(
    tmp_path: Path,
) -> None:
    with console_in_tmux(tmp_path, "run", str(failing_demo(tmp_path))) as screen:
        shown = screen.wait_for("Step failed: upload failed (exit 1)", "· failed in",
                                seconds=40)
        wait_for("the bell", lambda: bell_rung(screen), seconds=5)
        screen.send("Escape")  # from the summary to the run screen
        shown = screen.wait_for("e Next failed")
        assert "Step failed: upload failed (exit 1)" in shown
        selection_reads(screen, "✗ upload")
        assert "r Retry" in footer(shown) and "Next gate" not in footer(shown)
        screen.send("Home")
        shown = screen.wait_for("r Retry", gone=True)  # checkout cannot be retried
        selection_reads(screen, "✓ checkout")
        assert "e Next failed" in footer(shown)
        screen.send("e")
        screen.wait_for("r Retry")
        selection_reads(screen, "✗ upload")
        screen.send("q")
        assert screen.exit_code() == "1"


@pytest.mark.parametrize("size", [(80, 24), (60, 20), (120, 40)])
def test_a_gate_rings_counts_down_on_its_card_and_in_the_header_and_w_finds_it(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    with console_in_tmux(tmp_path, "run", "workflows/demo.toml", size=size) as screen:
        shown = screen.wait_for("w Next gate", "◆ release", seconds=40)
        wait_for("the bell", lambda: bell_rung(screen), seconds=5)
        header = shown.splitlines()[0]
        assert re.search(r"◆ release denied in (29|30)m", header), header
        selection_reads(screen, "◆ release")
        card = selected(screen)
        assert COUNTDOWN.search(card), card
        assert "Next failed" not in footer(shown)  # upload retried, nothing failed
        screen.send("Home")
        screen.wait_for("a Approve", gone=True)  # checkout has no gate to approve
        selection_reads(screen, "✓ checkout")
        screen.send("w")
        screen.wait_for("a Approve")
        selection_reads(screen, "◆ release")
        screen.send("a")
        screen.wait_for("reason (required)")
        screen.type("found it")
        screen.wait_for("found it")
        screen.send("Enter")
        screen.wait_for("· succeeded in", seconds=40)
        screen.send("Escape")
        shown = screen.wait_for("s Start")
        assert "Next gate" not in footer(shown) and "denied in" not in shown
        screen.send("q")
        assert screen.exit_code() == "0"


def test_no_bell_when_the_config_says_so(tmp_path: Path) -> None:
    config = tmp_path / "config" / "console" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("bell = false\n")
    with console_in_tmux(tmp_path, "run", str(failing_demo(tmp_path)), term="xterm",
                         no_color=True) as screen:
        screen.wait_for("Step failed: upload failed (exit 1)", "· failed in", seconds=40)
        assert not bell_rung(screen)
        screen.send("Escape")
        screen.wait_for("e Next failed")
        selection_reads(screen, "✗ upload")  # reverse video, without colour too
        assert not bell_rung(screen)
        screen.send("q")
        assert screen.exit_code() == "1"
