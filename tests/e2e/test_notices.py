"""Issue 12, item 2, in a real terminal: notices never cover what matters and go when they
stop being true. The summary shows the audit head whole with the notices below it; the
"Approval needed" notice goes once the gate is decided (here or from another terminal) or
the run has ended; a dialog, the selected step and the audit pane's rows stay whole, at
80x24 and at 120x40."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import own_workflows
from tests.e2e.tmux_console import (
    REPO,
    console_in_tmux,
    reverse_video,
)
from tests.engine.cli_runs import wait_for, wait_for_record

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

NOTICE = "Approval needed: release is waiting"


def audit_lines(tmp_path: Path) -> list[dict[str, object]]:
    audit = tmp_path / "state" / "console" / "audit.jsonl"
    return [json.loads(line) for line in audit.read_text().splitlines()]


def console_cli(tmp_path: Path, *args: str) -> str:
    """`console ARGS` from another terminal of the same user; what it printed."""
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "CONSOLE_RUNTIME_DIR": str(tmp_path / "runtime")}
    done = subprocess.run([sys.executable, "-m", "console", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def rows_of(shown: str, *texts: str) -> list[int]:
    """The index of the first row showing each of `texts`."""
    rows = shown.splitlines()
    return [next(i for i, row in enumerate(rows) if text in row) for text in texts]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_summary_shows_the_audit_head_whole_above_the_notices(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    workflow = own_workflows(tmp_path) / "db-migration.toml"
    with console_in_tmux(tmp_path, "run", str(workflow), "-p", "version=2.0.0",
                         size=size) as screen:
        shown = screen.wait_for("audit head", "Run finished", seconds=40)
        last = audit_lines(tmp_path)[-1]
        head = f"{last['seq']}:{last['hash']}"
        rows = shown.splitlines()
        head_row, notice_row = rows_of(shown, head, "Run finished")
        assert rows[head_row].strip() == head  # whole, and nothing drawn over it
        assert notice_row > head_row
        screen.send("q")
        assert screen.exit_code() == "0"


@pytest.mark.parametrize("how", ["approve", "deny", "approved elsewhere", "cancelled elsewhere"])
def test_the_approval_notice_goes_once_the_gate_is_decided_or_the_run_ended(
    tmp_path: Path, how: str
) -> None:
    with console_in_tmux(tmp_path, "run", "workflows/demo.toml") as screen:
        screen.wait_for(NOTICE, seconds=40)
        run = str(audit_lines(tmp_path)[0]["run"])
        if how in ("approve", "deny"):
            screen.send("a" if how == "approve" else "x")
            screen.wait_for("reason (required)")
            screen.type("decided here")
            screen.wait_for("decided here")
            screen.send("Enter")
        elif how == "approved elsewhere":
            console_cli(tmp_path, "approve", run, "release", "--reason", "from elsewhere")
        else:
            console_cli(tmp_path, "cancel", run)
        outcome = {"approve": "succeeded", "approved elsewhere": "succeeded",
                   "deny": "denied", "cancelled elsewhere": "cancelled"}[how]
        shown = screen.wait_for(f"· {outcome} in", seconds=40)  # the summary
        assert "Approval needed" not in shown
        screen.send("Escape")
        shown = screen.wait_for("s Start")  # the run screen, its gate decided
        assert "Approval needed" not in shown
        assert "Next gate" not in shown
        screen.send("q")
        assert screen.exit_code() == {"succeeded": "0", "denied": "3"}.get(outcome, "130")


def assert_dialog_whole(shown: str) -> None:
    """Every row of the approval dialog has both its borders: nothing is drawn over it."""
    rows = shown.splitlines()
    title, hint = rows_of(shown, "│ Approve release", "enter approves · escape cancels")
    left = rows[title].index("│ Approve release")
    right = rows[title].index("│", left + 1)
    for row in rows[title - 1:hint + 2]:
        assert row[left] in "│╭╰" and row[right] in "│╮╯", f"the dialog is covered:\n{shown}"
    assert all(not title - 1 <= i <= hint + 1 for i in rows_of(shown, NOTICE)), shown


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_no_notice_covers_a_dialog_the_selected_step_or_the_audit_rows(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    with console_in_tmux(tmp_path, "run", "workflows/demo.toml", size=size) as screen:
        shown = screen.wait_for(NOTICE, "awaiting 0/1", seconds=40)

        def on_the_gate() -> bool:
            selected = reverse_video(screen)
            return (bool(selected) and selected[0].startswith("◆ release")
                    and any("awaiting 0/1" in row for row in selected))  # its status row too

        wait_for("the gate's card selected", on_the_gate)
        screen.send("b")  # the audit pane
        shown = screen.wait_for("Audit · verified", "gate.opened")
        rows = shown.splitlines()
        opened, notice = rows_of(shown, "gate.opened", NOTICE)
        bottom = next(i for i in range(opened, len(rows)) if "╰─" in rows[i])
        assert "release     awaiting approval" in rows[opened]
        assert rows[opened].rstrip().endswith("│")  # the row reaches the pane's border
        assert opened < bottom < notice
        screen.send("a")
        shown = screen.wait_for("reason (required)")
        assert_dialog_whole(shown)
        screen.type("all in view")
        screen.wait_for("all in view")
        screen.send("Enter")
        screen.wait_for("succeeded in", seconds=40)
        screen.send("q")
        assert screen.exit_code() == "0"


def test_attaching_after_the_gate_was_decided_shows_no_approval_notice(tmp_path: Path) -> None:
    # The replay holds the gate's opening and its approval: nothing waits on anyone.
    console_cli(tmp_path, "run", "workflows/demo.toml", "--detach")
    audit = tmp_path / "state" / "console" / "audit.jsonl"
    run = str(wait_for_record(audit, "gate.opened", "release", seconds=40)["run"])
    console_cli(tmp_path, "approve", run, "release", "--reason", "before anyone attached")
    wait_for_record(audit, "run.finished")
    with console_in_tmux(tmp_path, "attach", run) as screen:
        shown = screen.wait_for("· succeeded in", "audit head")
        assert "Approval needed" not in shown
        screen.send("Escape")
        shown = screen.wait_for("/ Filter")
        assert "Approval needed" not in shown and "Traceback" not in shown
        screen.send("q")
        assert screen.exit_code() == "0"
