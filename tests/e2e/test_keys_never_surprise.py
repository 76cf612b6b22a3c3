"""Issue 12, item 6, in a real terminal at 80x24: no loose scrollbar glyphs beside the
detail, `o` says when there is nothing to override, the quit question's harmless choice
has the focus, `q` on the summary quits at once and says the run, its outcome and the audit
head, and `console` among several workflows offers a picker."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.tmux_console import REPO, console_in_tmux
from tests.engine.cli_runs import console_env

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

DEMO = str(REPO / "workflows" / "demo.toml")
SCROLLBAR_GLYPHS = "▉▊▋▌▍▎"  # a scrollbar thumb's ends (the detail's border is ▏)


def console_says(tmp_path: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "console", *args], env=console_env(tmp_path),
                         capture_output=True, text=True, timeout=60, check=False)
    return out.stdout


def test_the_detail_beside_the_dag_leaves_no_loose_glyphs(tmp_path: Path) -> None:
    with console_in_tmux(tmp_path, "run", DEMO) as screen:
        screen.wait_for("awaiting 0/1", seconds=40)
        screen.send("Enter")  # the detail narrows the DAG, which then scrolls sideways
        shown = screen.wait_for("▶ log", "Waits for someone to approve")
        stray = [(row, line) for row, line in enumerate(shown.splitlines(), 1)
                 if any(glyph in line for glyph in SCROLLBAR_GLYPHS)]
        assert not stray, shown
        screen.send("o")
        screen.wait_for("Nothing to override on release")
        assert "Override" not in screen.text(), "no dialog opened"


def test_quitting_a_live_run_detaches_by_default(tmp_path: Path) -> None:
    with console_in_tmux(tmp_path, "run", DEMO) as screen:
        screen.wait_for("awaiting 0/1", seconds=40)
        screen.send("q")
        screen.wait_for("goes on in its host", "escape: back")
        screen.send("Enter")  # the focused choice: Detach, never "Cancel the run"
        shown = screen.wait_for("still going in its host")
        assert screen.exit_code() == "0"
        run_id = re.search(r"console: run (\S+) running", shown)
        assert run_id, shown
        status = console_says(tmp_path, "status", run_id.group(1))
        assert "running (live)" in status and "needs 1 approval(s), 0 given" in status, status


def test_q_on_the_summary_quits_and_says_how_the_run_ended(tmp_path: Path) -> None:
    with console_in_tmux(tmp_path, "run", DEMO) as screen:
        screen.wait_for("awaiting 0/1", seconds=40)
        screen.send("a")
        screen.wait_for("reason (required)")
        screen.type("one press")
        screen.wait_for("one press")
        screen.send("Enter")
        screen.wait_for("audit head (keep it", seconds=40)
        screen.send("q")  # once
        assert screen.exit_code() == "0"
        said = " ".join(screen.text().split())
        head = console_says(tmp_path, "audit", "head").strip()
        assert re.fullmatch(r"\d+:[0-9a-f]{64}", head), head
        assert re.search(r"console: run \S+ succeeded; audit head", said), said
        assert head in said.replace(" ", ""), said


def test_console_among_several_workflows_offers_a_picker(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    shutil.copy(DEMO, tmp_path / "workflows" / "demo.toml")
    (tmp_path / "workflows" / "tiny.toml").write_text(
        '[workflow]\nname = "tiny"\ndescription = "one step"\n\n[steps.only]\nrun = "true"\n')
    with console_in_tmux(tmp_path, cwd=tmp_path) as screen:
        screen.wait_for("2 workflows in", "demo (8 steps)", "tiny (1 step)")
        screen.send("Down", "Enter")
        screen.wait_for("tiny  idle", "only", "s Start")
        screen.send("q")
        assert screen.exit_code() == "0"
