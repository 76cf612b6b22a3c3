"""The headless live table in a terminal that goes away: the run stops, honestly recorded."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from console.run.history import fold_audit
from tests.engine.cli_runs import processes_with, records, wait_for, wait_for_record

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return ") Z " not in stat


def test_killing_the_terminal_interrupts_the_run_and_starts_nothing_new(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4()}"
    cleaned = tmp_path / "cleaned"
    workflow = tmp_path / "wf.toml"
    workflow.write_text(f"""
[workflow]
name = "hangup"
[steps.long]
run = "sleep 300"
[steps.after]
needs = ["long"]
run = "true"
[steps.cleanup]
needs = ["after"]
if = "always"
run = "touch {cleaned}"
""")
    audit = tmp_path / "audit.jsonl"
    env = {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CONSOLE_RUNTIME_DIR": str(tmp_path / "runtime"),
        "TERM": "xterm-256color",
        "HANGUP_MARKER": marker,
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = (
        f"env {exports} {shlex.quote(sys.executable)} -m console run {shlex.quote(str(workflow))}"
        f" --no-tui --grace 1 --audit {shlex.quote(str(audit))}"
    )
    server = f"console-hup-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", server]
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", command], check=True)
    try:
        started = wait_for_record(audit, "run.started")
        wait_for_record(audit, "step.started", "long")
        subprocess.run([*tmux, "kill-server"], check=False)
        pid = int(started["data"]["pid"])
        wait_for("the console to exit", lambda: not _alive(pid), seconds=30)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)

    kinds = [(r["type"], r.get("step")) for r in records(audit)]
    assert ("run.interrupted", None) in kinds
    assert ("step.started", "after") not in kinds
    assert ("step.started", "cleanup") in kinds and cleaned.exists()
    last = records(audit)[-1]
    assert last["type"] == "run.finished" and last["data"]["outcome"] == "interrupted"
    run_id = str(started["run"])
    assert fold_audit(audit, run_id)[run_id].status == "interrupted"
    status = subprocess.run(
        [sys.executable, "-m", "console", "status", run_id, "--json", "--audit", str(audit)],
        capture_output=True, text=True, env={**os.environ, **env}, check=False,
    )
    assert json.loads(status.stdout)["state"]["status"] == "interrupted", status
    assert wait_for("the steps to be gone", lambda: not processes_with(marker), 10)
