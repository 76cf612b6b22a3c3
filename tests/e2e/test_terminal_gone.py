"""The UI when its terminal goes away or a stop signal arrives (issue 9), for real: the CLI in
tmux (a private server), real step processes, the audit file on disk.

The run is interrupted and recorded, no step outlives the console, and the process exits
with 130 within the grace plus 5 s, even while its terminal has stopped reading.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from console.exec._watchdog_main import group_alive
from console.run.lifeline import Lifeline
from tests.e2e.test_tmux import REPO, pytestmark  # noqa: F401 (skips without tmux)

GRACE_S = 2.0
BOUND_S = GRACE_S + 5.0

# Started in the pane, it records the console's exit code even once the pane is gone: it
# ignores SIGHUP itself and gives the console the default disposition back, so the console
# sees the terminal go away as it would from a shell.
LAUNCHER = """
import signal, subprocess, sys
signal.signal(signal.SIGHUP, signal.SIG_IGN)
code = subprocess.call(
    sys.argv[2:], preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL)
)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(code))
import os
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
"""

QUICK_THEN_LONG = """
[workflow]
name = "gone"

[steps.quick]
run = "echo quick"

[steps.long]
needs = ["quick"]
run = "sleep 300"
"""

QUICK_THEN_GATE = """
[workflow]
name = "gate"

[steps.quick]
run = "echo quick"

[steps.release]
needs = ["quick"]
run = "echo released"
approval = { approvals = 1, reason = true, timeout = "30m" }
"""

# A step that runs long, and beside it a chain of short steps: every change of state is a
# frame for the terminal, so one that stops reading fills up within moments.
BUSY = """
[workflow]
name = "busy"
concurrency = 4

[steps.long]
run = "sleep 300"
""" + "".join(
    f'\n[steps.s{i:03}]\nrun = "sleep 0.05"\n' + (f'needs = ["s{i - 1:03}"]\n' if i else "")
    for i in range(400)
)


class Console:
    """`console run` in a tmux session of a private tmux server."""

    def __init__(self, tmp_path: Path, workflow: str, *, width: int = 80, height: int = 24):
        self.socket = f"console-gone-{uuid.uuid4().hex[:8]}"
        self.audit = tmp_path / "audit.jsonl"
        self.exit_file = tmp_path / "exit-code"
        path = tmp_path / "workflow.toml"
        path.write_text(workflow)
        env = {
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "CONSOLE_RUNTIME_DIR": str(tmp_path / "runtime"),
            "TERM": "xterm-256color",
        }
        console = [sys.executable, "-m", "console", "run", str(path), "--audit", str(self.audit),
                   "--grace", str(GRACE_S)]
        # Without COLUMNS and LINES (pytest sets them): the size is the pane's.
        argv = ["env", "-u", "COLUMNS", "-u", "LINES", *(f"{k}={v}" for k, v in env.items()),
                sys.executable, "-c", LAUNCHER, str(self.exit_file), *console]
        command = f"cd {shlex.quote(str(REPO))} && {shlex.join(argv)}; sleep 60"
        self.tmux("new-session", "-d", "-s", "main", "-x", str(width), "-y", str(height),
                  command)
        self.server_pid = int(self.tmux("display", "-p", "#{pid}"))

    def tmux(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                             capture_output=True, text=True, check=False, timeout=30)
        return out.stdout

    def records(self) -> list[dict[str, Any]]:
        if not self.audit.exists():
            return []
        lines = self.audit.read_text().splitlines()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # the line being written
                break
        return out

    def record(self, kind: str, step: str | None = None) -> dict[str, Any] | None:
        return next((r for r in self.records()
                     if r["type"] == kind and (step is None or r.get("step") == step)), None)

    def exit_code(self) -> int | None:
        return int(self.exit_file.read_text()) if self.exit_file.exists() else None

    def host_pid(self) -> int:
        """The run host's pid, from its run.started record (the run lives there)."""
        run = wait_for("the run started", lambda: self.record("run.started"), 60)
        return int(run["data"]["pid"])

    def pid(self) -> int:
        """The UI's pid: the launcher's child (the pane's shell runs the launcher)."""
        pid = int(self.tmux("display", "-p", "#{pane_pid}"))
        while True:
            if "console" in Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:3]:
                return pid
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            assert len(children) == 1, children
            pid = int(children[0])

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.server_pid, signal.SIGCONT)  # a stopped server answers nobody
        self.tmux("kill-server")
        run = self.record("run.started")
        if run is not None and self.record("run.finished") is None:
            # The run outlives the UI by design: end it (twice: its cleanups too).
            for _ in range(2):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(run["data"]["pid"]), signal.SIGTERM)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Console]]:
    started: list[Console] = []

    def launch(workflow: str, **size: int) -> Console:
        console = Console(tmp_path, workflow, **size)
        started.append(console)
        return console

    yield launch
    for console in started:
        console.close()


def wait_for(what: str, condition: Callable[[], object], seconds: float,
             console: Console | None = None) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            screen = console.tmux("capture-pane", "-p") if console is not None else ""
            raise AssertionError(f"{what}: not within {seconds} s\n{screen}")
        time.sleep(0.05)


def started_step(console: Console, step: str) -> int:
    """Wait for `step` to start; its process group."""
    started = wait_for(f"{step} started", lambda: console.record("step.started", step), 60)
    return int(started["data"]["pid"])


def assert_run_goes_on(console: Console, step_group: int | None = None) -> None:
    """The UI left; its run did not notice: nothing interrupted, the host and step live."""
    types = [r["type"] for r in console.records()]
    assert "run.interrupted" not in types and "run.finished" not in types, types
    host = console.host_pid()
    assert ") Z " not in Path(f"/proc/{host}/stat").read_text()
    if step_group is not None:
        assert group_alive(step_group)
    verify = subprocess.run(
        [sys.executable, "-m", "console", "audit", "verify", str(console.audit)],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_killing_the_terminal_detaches_the_ui_and_the_run_goes_on(
    start: Callable[..., Console],
) -> None:
    console = start(QUICK_THEN_LONG)
    step_group = started_step(console, "long")

    console.tmux("kill-server")  # the terminal goes away: SIGHUP, SIGCONT, then EIO
    gone_at = time.monotonic()

    wait_for("the console exited", lambda: console.exit_code() is not None, BOUND_S + 5)
    assert time.monotonic() - gone_at < BOUND_S
    assert console.exit_code() == 0  # detached: the run is not the UI's to stop
    assert_run_goes_on(console, step_group)


def test_sigterm_at_a_gate_ends_the_ui_within_the_grace_and_gives_the_terminal_back(
    start: Callable[..., Console],
) -> None:
    console = start(QUICK_THEN_GATE)
    wait_for("the gate opened", lambda: console.record("gate.opened", "release"), 60)
    wait_for("the UI shows the gate", lambda: "awaiting" in console.tmux(
        "capture-pane", "-p"), 30, console)
    pid = console.pid()
    assert console.tmux("display", "-p", "#{alternate_on}").strip() == "1"

    os.kill(pid, signal.SIGTERM)
    signalled_at = time.monotonic()

    wait_for("the console exited", lambda: console.exit_code() is not None, BOUND_S + 5)
    assert time.monotonic() - signalled_at < BOUND_S
    assert console.exit_code() == 0
    assert console.tmux("display", "-p", "#{alternate_on}").strip() == "0"
    assert_run_goes_on(console)


def test_sigterm_ends_the_ui_even_while_its_terminal_does_not_read(
    start: Callable[..., Console],
) -> None:
    console = start(BUSY)
    step_group = started_step(console, "long")
    wait_for("the UI shows the chain", lambda: "s00" in console.tmux("capture-pane", "-p"), 30,
             console)
    pid = console.pid()
    os.kill(console.server_pid, signal.SIGSTOP)  # the terminal stops reading
    wait_for("the console's event loop is stuck writing", lambda: loop_stuck(pid), 60)

    os.kill(pid, signal.SIGTERM)
    signalled_at = time.monotonic()

    wait_for("the console exited", lambda: console.exit_code() is not None, BOUND_S + 5)
    assert time.monotonic() - signalled_at < BOUND_S
    assert group_alive(step_group)  # the run's step, in the run's host: not the UI's to stop


def loop_stuck(pid: int) -> bool:
    """Whether the console's main thread (its event loop) has been waiting on a lock for
    half a second while another of its threads sleeps in a write to the terminal: Textual's
    queue of writes is full."""
    tasks = Path(f"/proc/{pid}/task")
    for _ in range(10):
        try:
            main = (tasks / str(pid) / "wchan").read_text()
            writing = any(_wchan(task) == "wait_woken" for task in tasks.iterdir())
        except OSError:
            return False
        if main != "futex_do_wait" or not writing:
            return False
        time.sleep(0.05)
    return True


def _wchan(task: Path) -> str:
    try:
        return (task / "wchan").read_text()
    except OSError:
        return ""


def test_the_lifeline_deadline_a_signal_sets_gives_way_to_the_runs_then_only_moves_earlier(
) -> None:
    lifeline = Lifeline(lambda: None, lambda: 60.0)
    try:
        _check_deadline_rules(lifeline)
    finally:
        lifeline.close()  # armed in pytest's own process: it must never fire here


def _check_deadline_rules(lifeline: Lifeline) -> None:
    lifeline.arm(50, firm=False)
    provisional = lifeline.due
    assert provisional is not None
    lifeline.arm(70, firm=False)
    assert lifeline.due == provisional  # a later provisional one changes nothing
    lifeline.arm(300)  # the run needs longer (cleanups): the first firm deadline wins
    firm = lifeline.due
    assert firm is not None and firm > provisional
    lifeline.arm(10, firm=False)
    lifeline.arm(400)
    assert lifeline.due == firm
    lifeline.arm(20)
    assert lifeline.due is not None and lifeline.due < firm
