"""Issue 12, item 8, in a real 80-column terminal: the command `console run --no-tui` (and
`console status`) prints for a waiting gate is never wrapped, asks for the reason the gate
needs, and works as copied from the screen, one row of it; the audit head at the end is
a row of its own too."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.tmux_console import REPO, Screen, console_in_tmux
from tests.engine.cli_runs import console_env

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

DEMO = str(REPO / "workflows" / "demo.toml")
README = REPO / "README.md"


def copied_row(screen: Screen, starting: str) -> str:
    """The one screen row that starts with `starting`, as a mouse would copy it."""
    rows = [row for row in screen.text().splitlines() if row.startswith(starting)]
    assert len(rows) == 1, screen.text()
    return rows[0].strip()


def run_copied(command: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)  # a cut row leaves an open quote: ValueError
    assert argv[0] == "console", command
    return subprocess.run([sys.executable, "-m", "console", *argv[1:]],
                          env=console_env(tmp_path), capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_approve_command_copied_from_the_screen_works(tmp_path: Path) -> None:
    with console_in_tmux(tmp_path, "run", DEMO, "--no-tui") as screen:
        screen.wait_for("to approve (a reason is required), run:", seconds=40)
        command = copied_row(screen, "  console approve ")
        assert re.fullmatch(r'console approve \S+ release --reason "\.\.\."', command), command
        approved = run_copied(command, tmp_path)
        assert approved.returncode == 0, approved.stdout + approved.stderr
        shown = screen.wait_for("keep it to prove the trail later:", seconds=40)
        assert "approved by" in shown
        assert screen.exit_code() == "0"
        head = subprocess.run([sys.executable, "-m", "console", "audit", "head"],
                              env=console_env(tmp_path), capture_output=True, text=True,
                              check=True).stdout.strip()
        assert copied_row(screen, f"  {head.split(':')[0]}:") == head  # whole, on its own


def test_status_gives_the_command_on_a_row_of_its_own(tmp_path: Path) -> None:
    with console_in_tmux(tmp_path, "run", DEMO, "--no-tui") as screen:
        shown = screen.wait_for("to approve (a reason is required), run:", seconds=40)
        run_id = re.search(r"run (\d{8}-\d{6}-[0-9a-f]+)", shown)
        assert run_id, shown
        status = subprocess.run(
            [sys.executable, "-m", "console", "status", run_id.group(1)],
            env=console_env(tmp_path, COLUMNS="80"), capture_output=True, text=True,
            timeout=60, check=True).stdout
        rows = status.splitlines()
        assert "to approve release (a reason is required), run:" in rows, status
        command = rows[rows.index("to approve release (a reason is required), run:") + 1]
        assert len(command) <= 80 and command.startswith("  console approve "), status
        assert run_copied(command.strip(), tmp_path).returncode == 0
        screen.wait_for("audit head", seconds=40)
        assert screen.exit_code() == "0"


def test_the_readme_asks_for_the_reason_the_demo_asks_for() -> None:
    start = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "reason = true" in (REPO / "workflows" / "demo.toml").read_text()
    said = " ".join(start.split())
    assert "press `a`, type a reason" in said and "`enter`" in said, said
