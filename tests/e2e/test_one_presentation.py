"""Issue 12, item 9, in a real terminal: one console/present.py says things for the CLI and
the UI, so an audit record reads the same in the UI's audit pane as in `console audit tail`,
and the run's duration is written the same way in the header, the summary, the pane and
the tail."""

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
COLUMNS = ("time", "actor", "type", "step", "summary")


def pane_rows(screen: str) -> list[dict[str, str]]:
    """The audit pane's rows, cell by cell, cut where its header's columns start."""
    lines = screen.splitlines()
    head = next(i for i, line in enumerate(lines) if "time" in line and "summary" in line)
    starts = [lines[head].index(name) for name in COLUMNS]
    rows = []
    for line in lines[head + 1:]:
        if not line.startswith("│"):
            break
        body = line.rstrip().removesuffix("│")
        cells = [body[a:b].strip() for a, b in zip(starts, [*starts[1:], len(body)],
                                                   strict=True)]
        rows.append(dict(zip(COLUMNS, cells, strict=True)))
    return rows


def tail_summaries(tmp_path: Path, run_id: str) -> dict[tuple[str, str], list[str]]:
    """`console audit tail --run RUN`: each record's words, by (type, step)."""
    out = subprocess.run([sys.executable, "-m", "console", "audit", "tail", "--run", run_id],
                         env=console_env(tmp_path), capture_output=True, text=True,
                         timeout=60, check=True).stdout
    said: dict[tuple[str, str], list[str]] = {}
    for line in out.splitlines():
        # date time actor type step summary (no run column: one run asked for)
        _date, _time, _actor, kind, step, summary = line.split(None, 5)
        said.setdefault((kind, "" if step == "-" else step), []).append(summary)
    return said


def test_a_record_reads_the_same_in_the_pane_and_in_audit_tail(tmp_path: Path) -> None:
    with console_in_tmux(tmp_path, "run", DEMO, size=(120, 40)) as screen:
        screen.wait_for("awaiting 0/1", seconds=40)
        screen.send("a")
        screen.wait_for("reason (required)")
        screen.type("the same words")
        screen.wait_for("the same words")
        screen.send("Enter")
        summary = screen.wait_for("audit head (keep it", seconds=40)
        took = re.search(r"run (\S+) · succeeded in (\S+)", summary)
        assert took, summary
        run_id, duration = took.groups()
        screen.send("Escape")
        header = screen.wait_for("s Start", f"succeeded {duration}").splitlines()[0]
        assert header.startswith(f" demo  succeeded {duration}  8/8"), header
        screen.send("b")
        shown = screen.wait_for("run.finished", "gate.closed")
        rows = pane_rows(shown)
        tail = tail_summaries(tmp_path, run_id)
        for row in rows:
            said = tail[(row["type"], row["step"])]
            cut = row["summary"].removesuffix("…")
            assert any(words.startswith(cut) for words in said), (row, said)
        finished = next(row for row in rows if row["type"] == "run.finished")
        assert finished["summary"].startswith(f"run {run_id} succeeded in {duration}")
        assert tail[("run.finished", "")] == [f"run {run_id} succeeded in {duration} "
                                              "(8 succeeded)"]
        assert "gate approved: the same words" in [row["summary"] for row in rows]
        ran = [(row["step"], re.match(r"succeeded after (\S+?),", row["summary"]))
               for row in rows if row["type"] == "step.finished"]
        assert ran, rows
        for step, took_step in ran:  # the DAG's card says the step's time as the pane does
            assert took_step, (step, rows)
            card = shown.index(f"✓ {step}")
            assert shown[card:].split("\n", 2)[1].strip().startswith(
                f"succeeded {took_step.group(1)}"), shown
        screen.send("q")
        assert screen.exit_code() == "0"
