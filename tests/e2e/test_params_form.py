"""Issue 12, item 7, in a real terminal at 80x24 without colour: the params form shows the
whole description, a placeholder that says what to type, a problem that quotes the pattern
as written and goes once the value is right, and a switch that reads on or off."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.tmux_console import console_in_tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def test_db_migration_params_read_without_colour(tmp_path: Path) -> None:
    with console_in_tmux(tmp_path, "run", "workflows/db-migration.toml",
                         no_color=True) as screen:
        shown = screen.wait_for("Params for payments-db-migration")
        words = " ".join(line.strip(" │") for line in shown.splitlines())
        assert "the schema version to migrate to" in words  # wrapped, not cut
        assert r"required: text matching ^\d+\.\d+\.\d+$" in shown
        assert "off (false)" in shown  # dry_run's switch, in words
        screen.type("1.2")
        screen.wait_for("1.2")  # typed into the field
        screen.send("C-s")
        shown = screen.wait_for("does not match the pattern")
        assert r"1.2 does not match the pattern ^\d+\.\d+\.\d+$" in shown
        screen.type(".3")
        screen.wait_for("1.2.3")
        screen.wait_for("does not match", gone=True)
        screen.send("Tab")
        screen.send("Tab")
        screen.send("Space")
        screen.wait_for("on (true)")
        screen.send("Escape")
        screen.wait_for("Params for payments-db-migration", gone=True)
        screen.wait_for("s Start")
        screen.send("q")
        assert screen.exit_code() == "0"
