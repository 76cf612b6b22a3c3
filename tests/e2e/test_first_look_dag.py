"""Issue 12, item 1, in a real terminal: the DAG fits. The demo and bluegreen show every
step's card at 80x24, no label runs into a line, the first layer is on the first row and the
selection is on what needs attention; db-migration takes at most one scroll; with the detail
open the narrowed DAG still shows every name whole."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import own_workflows
from tests.e2e.tmux_console import (
    Screen,
    console_in_tmux,
    reverse_video,
)
from tests.engine.cli_runs import wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

DEMO = ["checkout", "lint", "unit-tests", "docs", "package", "upload", "release", "cleanup"]
BLUEGREEN = ["build", "unit-tests", "integration-tests", "deploy-green", "smoke-green",
             "switch-traffic", "verify", "retire-blue", "rollback", "cleanup"]
DB_MIGRATION = ["preflight", "backup", "migrate", "verify-schema", "backfill", "restore",
                "cleanup"]
ICONS = "○◌◆▶↻✓✗⊘↷■"
LINES = "─│╭╮╰╯┬┴├┤┼"
# A word and a line drawn in adjacent cells: `◆ awaiting approval 0/1├`.
NOTICE = re.compile(r" [!•✗] [A-Z]")  # "! Approval needed: …", "✗ Step failed: …"
RUNS_INTO_A_LINE = re.compile(rf"[^\s{LINES}][{LINES}]|[{LINES}][^\s{LINES}]")


def dag_rows(shown: str) -> list[str]:
    """The rows between the header and the notices or footer, left of the detail if open."""
    rows = shown.splitlines()[1:-1]
    end = next((i for i, row in enumerate(rows) if NOTICE.match(row)), len(rows))
    return [row.split("▏")[0].rstrip() for row in rows[:end]]


def cards(rows: list[str]) -> list[str]:
    """The step names drawn as cards (an icon, a space, the name), whole words only."""
    return re.findall(rf"[{ICONS}] ([\w.-]+)(?!…)\b", "\n".join(rows))


def assert_every_card_whole(rows: list[str], steps: list[str]) -> None:
    drawn = "\n".join(rows)
    assert "…" not in drawn, f"a label is cut:\n{drawn}"
    assert sorted(cards(rows)) == sorted(steps), f"cards missing or cut:\n{drawn}"
    touching = [row for row in rows if RUNS_INTO_A_LINE.search(row)]
    assert not touching, f"a label runs into a line: {touching}"


def selected_names(screen: Screen, steps: list[str]) -> list[str]:
    """The step names on the cards drawn in reverse video (the log's title may be too)."""
    return [name for name in re.findall(rf"[{ICONS}] ([\w.-]+)",
                                        "\n".join(reverse_video(screen))) if name in steps]


def selected(screen: Screen, steps: list[str]) -> str:
    """The name on the one card drawn in reverse video."""
    names = selected_names(screen, steps)
    assert len(names) == 1, f"not one selected card: {reverse_video(screen)}"
    return names[0]


def selection_is(screen: Screen, steps: list[str], name: str) -> None:
    """Wait until `name`'s card is the one selected: on a busy machine the DAG can be
    redrawn a frame after the screen line a test waited for."""
    wait_for(f"{name} selected", lambda: selected_names(screen, steps) == [name])


def approve_and_quit(screen: Screen) -> None:
    screen.send("a")
    screen.wait_for("reason (required)")
    screen.type("seen whole")
    screen.wait_for("seen whole")
    screen.send("Enter")
    screen.wait_for("succeeded in", seconds=40)
    screen.send("q")
    assert screen.exit_code() == "0"


def test_the_demo_fits_at_80x24_opening_on_its_first_layer(tmp_path: Path) -> None:
    with console_in_tmux(tmp_path, "run", "workflows/demo.toml") as screen:
        shown = screen.wait_for("✓ checkout")
        assert "checkout" in dag_rows(shown)[0]  # opens on the first layer, not scrolled
        first = selected(screen, DEMO)
        if first != "checkout":  # a loaded machine: the gate may have opened and taken it
            assert first == "release" and "awaiting 0/1" in screen.text()
        shown = screen.wait_for("awaiting 0/1", seconds=40)
        rows = dag_rows(shown)
        assert_every_card_whole(rows, DEMO)
        assert "checkout" in rows[0]
        selection_is(screen, DEMO, "release")  # what needs attention: the gate
        approve_and_quit(screen)


def test_bluegreen_fits_at_80x24_and_its_names_stay_whole_beside_the_detail(
    tmp_path: Path,
) -> None:
    workflow = own_workflows(tmp_path) / "bluegreen.toml"
    with console_in_tmux(tmp_path, "run", str(workflow), "-p", "version=1.4.2") as screen:
        shown = screen.wait_for("awaiting 0/1", seconds=40)
        rows = dag_rows(shown)
        assert_every_card_whole(rows, BLUEGREEN)
        assert "build" in rows[0]
        selection_is(screen, BLUEGREEN, "switch-traffic")
        screen.send("Enter")  # the detail opens beside a narrower DAG
        shown = screen.wait_for("▶ log")
        narrowed = dag_rows(shown)
        assert max(len(row) for row in narrowed) < 45
        assert_every_card_whole(narrowed, BLUEGREEN)
        selection_is(screen, BLUEGREEN, "switch-traffic")
        screen.send("Escape")
        screen.wait_for("▶ log", gone=True)
        approve_and_quit(screen)


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
def test_db_migration_takes_at_most_one_scroll(tmp_path: Path, size: tuple[int, int]) -> None:
    workflow = own_workflows(tmp_path) / "db-migration.toml"
    with console_in_tmux(tmp_path, "run", str(workflow), "-p", "version=2.0.0", size=size,
                         term="xterm", no_color=True) as screen:
        screen.wait_for("audit head", seconds=40)  # the summary: it ran through
        screen.send("Escape")
        shown = screen.wait_for("s Start")
        seen = cards(dag_rows(shown))
        if sorted(seen) != sorted(DB_MIGRATION):
            screen.send("PageDown")
            shown = screen.wait_for(DB_MIGRATION[-1])
            seen += cards(dag_rows(shown))
        assert set(seen) == set(DB_MIGRATION), shown
        screen.send("Enter")  # the detail: beside the DAG, or in its place when narrow
        shown = screen.wait_for("Command")
        narrowed = dag_rows(shown)
        if any(row.strip() for row in narrowed):
            assert_every_card_whole(narrowed, DB_MIGRATION)
        screen.send("Escape")
        screen.wait_for("Command", gone=True)
        screen.send("q")
        assert screen.exit_code() == "0"
