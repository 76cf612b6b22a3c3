"""The real command in a real terminal: tmux at 80x24, keys sent as a person would type them."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    def __init__(self, session: str) -> None:
        self.session = session

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.session, "capture-pane", "-p", "-t", self.session],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout

    def send(self, *keys: str) -> None:
        subprocess.run(
            ["tmux", "-L", self.session, "send-keys", "-t", self.session, *keys], check=True
        )

    def wait_for(self, text: str, seconds: float = 30.0) -> str:
        deadline = time.monotonic() + seconds
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[tuple[Terminal, Path]]:
    session = f"console-e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CONSOLE_RUNTIME_DIR": str(tmp_path / "runtime"),
        "TERM": "xterm-256color",
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    done = tmp_path / "exit-code"
    command = (
        f"cd {shlex.quote(str(REPO))} && env {exports} {shlex.quote(sys.executable)} -m console "
        f"run workflows/demo.toml; echo $? > {shlex.quote(str(done))}; sleep 30"
    )
    subprocess.run(
        ["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
         command],
        check=True,
    )
    try:
        yield Terminal(session), tmp_path
    finally:
        subprocess.run(["tmux", "-L", session, "kill-server"], check=False)


def test_demo_approved_with_a_then_enter_at_80x24(terminal: tuple[Terminal, Path]) -> None:
    term, tmp_path = terminal
    term.wait_for("Approval needed", seconds=40)
    term.send("a")
    term.wait_for("reason (required)")
    term.send("-l", "ship it")
    term.send("Enter")
    term.wait_for("succeeded in", seconds=40)
    term.send("Escape")
    term.wait_for("s Start")  # the summary closed: the run screen's footer is back
    term.send("q")
    exit_file = tmp_path / "exit-code"
    deadline = time.monotonic() + 20
    while not exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert exit_file.read_text().strip() == "0", term.screen()

    audit = tmp_path / "state" / "console" / "audit.jsonl"
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    approvals = [r for r in records if r["type"] == "approval.given"]
    assert len(approvals) == 1
    assert approvals[0]["step"] == "release"
    assert approvals[0]["actor"]["uid"] == os.getuid()
    # The UI's run lives in a run host: the approval reached it through the socket.
    assert approvals[0]["actor"]["via"] == "socket"
    started = next(r for r in records if r["type"] == "run.started")
    assert started["actor"]["via"] == "host"
    assert approvals[0]["data"]["reason"] == "ship it"
    assert records[-1]["type"] == "run.finished"
    assert records[-1]["data"]["outcome"] == "succeeded"
    verify = subprocess.run(
        [sys.executable, "-m", "console", "audit", "verify", str(audit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_headless_on_a_terminal_shows_the_live_table_and_the_approve_command(
    tmp_path: Path,
) -> None:
    session = f"console-e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "CONSOLE_RUNTIME_DIR": str(tmp_path / "runtime"),
        "TERM": "xterm-256color",
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    done = tmp_path / "exit-code"
    command = (
        f"cd {shlex.quote(str(REPO))} && env {exports} {shlex.quote(sys.executable)} -m console "
        f"run workflows/demo.toml --no-tui; echo $? > {shlex.quote(str(done))}; sleep 30"
    )
    subprocess.run(
        ["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
         command],
        check=True,
    )
    term = Terminal(session)
    try:
        screen = term.wait_for("to approve (a reason is required), run:", seconds=40)
        assert "awaiting approval" in screen
        approve = next(
            line.split()[:4]  # console approve RUN STEP, on a line of its own
            for line in screen.splitlines()
            if line.startswith("  console approve ")
        )
        answer = subprocess.run(
            [sys.executable, "-m", *approve, "--reason", "from another terminal"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert answer.returncode == 0, answer.stdout + answer.stderr
        screen = term.wait_for("keep it to prove the trail later:", seconds=40)
        assert "succeeded" in screen
        deadline = time.monotonic() + 10
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.read_text().strip() == "0", term.screen()
    finally:
        subprocess.run(["tmux", "-L", session, "kill-server"], check=False)
