"""Issue 12, item 5, in a real terminal: at 60x20 the header keeps the run's state, the
footer its keys, a dialog its hint and the summary the whole audit head; with TERM=xterm
every status has a colour of its own; with NO_COLOR the console sends no colour at all."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.tmux_console import REPO, Screen, console_in_tmux
from tests.e2e.tmux_styles import colour_codes, foreground_of, styled_text
from tests.engine.cli_runs import console_env

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

DEMO = str(REPO / "workflows" / "demo.toml")

# Each status, by its icon: two roots that finish at once, one that runs on, a failure's
# dependent (skipped), a gate and what waits behind it (pending).
STATUSES = """
[workflow]
name = "statuses"
concurrency = 8

[steps.fine]
run = "true"

[steps.broken]
run = "exit 1"

[steps.after-broken]
needs = ["broken"]
run = "true"

[steps.slow]
run = "sleep 60"

[steps.gate]
needs = ["fine"]
run = "true"
approval = { approvals = 1 }

[steps.later]
needs = ["gate"]
run = "true"
"""
ICONS = {"✓": "succeeded", "✗": "failed", "↷": "skipped", "▶": "running",
         "◆": "awaiting approval", "○": "pending"}


def many_steps(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "many.toml"
    steps = "".join(
        f'\n[steps.step-{n:02d}]\nrun = "true"\n'
        + (f'needs = ["step-{n - 1:02d}"]\n' if n else "")
        for n in range(count))
    path.write_text(f'[workflow]\nname = "many"\n{steps}')
    return path


def audit_head(tmp_path: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "console", "audit", "head"],
                         env=console_env(tmp_path), capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_at_60x20_the_summary_shows_the_whole_audit_head(tmp_path: Path) -> None:
    # 14 steps: more timeline rows than 20 lines hold; the head once scrolled out of view,
    # cut to 52 hex characters.
    with console_in_tmux(tmp_path, "run", str(many_steps(tmp_path, 14)),
                         size=(60, 20)) as screen:
        shown = screen.wait_for("audit head (keep it", "succeeded in", seconds=40)
        head = audit_head(tmp_path)
        assert re.fullmatch(r"\d+:[0-9a-f]{64}", head), head
        assert head in "".join(shown.split()), shown  # wrapped at 60 columns, never cut
        screen.send("q")
        assert screen.exit_code() == "0"


def test_at_60x20_header_footer_and_dialogs_keep_what_matters(tmp_path: Path) -> None:
    with console_in_tmux(tmp_path, "run", DEMO, size=(60, 20)) as screen:
        shown = screen.wait_for("◆ release", "Approval needed", "a Approve", seconds=40)
        lines = shown.rstrip("\n").split("\n")
        assert "running" in lines[0] and "6/8" in lines[0], lines[0]
        assert all(key in lines[-1] for key in ("a Approve", "/ Filter", "? Help", "q Quit")), \
            lines[-1]
        screen.send("a")
        screen.wait_for("enter approves · escape cancels")
        screen.send("Escape")
        screen.wait_for("escape cancels", gone=True)  # an escape and a key at once: alt+key
        screen.send("x")
        screen.wait_for("enter denies (the step will not run) · escape cancels")
        screen.send("Escape")
        screen.wait_for("escape cancels", gone=True)
        screen.send("Enter")  # the detail, the focus in the log: its keys join the footer
        footer = screen.wait_for("▶ log", "/ Search").rstrip("\n").split("\n")[-1]
        assert footer.endswith("? Help q Quit") and "a Approve" in footer, footer
        screen.send("Escape")
        screen.wait_for("▶ log", gone=True)
        screen.send("b")  # the audit pane: the summary keeps room to say something
        screen.wait_for("gate.opened", "awaiting approval: needs")
        screen.send("b")
        screen.wait_for("gate.opened", gone=True)
        screen.send("q")
        shown = screen.wait_for("Detach", "escape: back")
        box = [line for line in shown.splitlines() if line.startswith("│")]
        assert box and all(line.rstrip().endswith("│") for line in box), shown
        assert "Detach, or cancel it?" in " ".join(" ".join(box).replace("│", " ").split())
        screen.send("Right", "Enter")  # "Cancel the run": nothing is left waiting
        assert screen.exit_code(seconds=40) == "130"


def colours_by_icon(screen: Screen, unselected: str) -> dict[str, set[str | None]]:
    """Each status icon's foreground colours in the DAG (the rows under the header, above
    the notices), once the `unselected` icon's card is no longer drawn reversed."""
    deadline = time.monotonic() + 30
    while True:
        rows = styled_text(screen).splitlines()[1:12]
        found = {icon: {fg for row in rows for fg in foreground_of(row, icon)} for icon in ICONS}
        if found[unselected] - {None} or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("term", ["xterm", "xterm-16color"])
def test_in_16_colours_every_status_has_a_colour_of_its_own(tmp_path: Path, term: str) -> None:
    workflow = tmp_path / "statuses.toml"
    workflow.write_text(STATUSES)
    with console_in_tmux(tmp_path, "run", str(workflow), term=term) as screen:
        screen.wait_for("✗ broken", "↷ after-broken", "▶ slow", "◆ gate", "○ later",
                        "✓ fine", seconds=40)
        screen.send("w")  # the gate selected (drawn reversed): every other card in colour
        colours = colours_by_icon(screen, unselected="✗")
        screen.send("e")  # the failure selected: the gate's card in colour
        colours["◆"] = colours_by_icon(screen, unselected="◆")["◆"]
        for found in colours.values():
            found.discard(None)  # the selected card
        assert all(len(found) == 1 for found in colours.values()), repr(colours)
        by_status = {ICONS[icon]: found.pop() for icon, found in colours.items()}
        assert len(set(by_status.values())) == len(by_status), by_status
        assert all(re.fullmatch(r"3[0-7]|9[0-7]", c or "") for c in by_status.values()), \
            f"ANSI colours, not 256 or truecolour: {by_status}"
        screen.send("q")
        screen.wait_for("Cancel the run")
        screen.send("Right", "Enter")
        assert screen.exit_code(seconds=40) == "130"


def test_no_color_sends_no_colour_at_all(tmp_path: Path) -> None:
    with console_in_tmux(tmp_path, "run", DEMO, no_color=True) as screen:
        screen.wait_for("awaiting 0/1", seconds=40)
        seen = {"the DAG": styled_text(screen)}
        screen.send("Enter")
        screen.wait_for("▶ log")
        seen["the detail"] = styled_text(screen)
        screen.send("Escape")
        screen.wait_for("▶ log", gone=True)
        screen.send("a")
        screen.wait_for("reason (required)")
        seen["the approval dialog"] = styled_text(screen)
        screen.type("no colour")
        screen.wait_for("no colour")
        screen.send("Enter")
        screen.wait_for("audit head (keep it", seconds=40)
        seen["the summary"] = styled_text(screen)
        for where, styled in seen.items():
            assert "\x1b[" in styled, "tmux gave the styles (bold, reverse)"
            assert colour_codes(styled) == set(), f"colour codes on {where}"
        screen.send("q")
        assert screen.exit_code() == "0"
