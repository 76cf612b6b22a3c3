"""`console attach` in a real terminal: a run hosted elsewhere, seen and approved by keypress."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_tmux import REPO, pytestmark  # noqa: F401 (skips without tmux)
from tests.engine.cli_runs import processes_with, records, wait_for, wait_for_record

GATED = """
[workflow]
name = "attached"
[steps.build]
run = "echo built"
[steps.deploy]
needs = ["build"]
run = "echo deployed"
approval = {{ approvals = 1, reason = true }}
[steps.cleanup]
needs = ["deploy"]
if = "always"
run = "echo cleaned > {cleaned}"
"""


class Pane:
    """One tmux server of our own, one 80x24 pane running a command."""

    def __init__(self, command: str) -> None:
        self.tmux = ["tmux", "-L", f"console-attach-{uuid.uuid4().hex[:8]}"]
        subprocess.run([*self.tmux, "new-session", "-d", "-x", "80", "-y", "24", command],
                       check=True)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p"], capture_output=True,
                              text=True, check=False).stdout

    def send(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", *keys], check=True)

    def wait_for(self, text: str, seconds: float = 30.0) -> str:
        def shown() -> str | None:
            screen = self.screen()
            return screen if text in screen else None

        found: str = wait_for(f"{text!r} on the screen", shown, seconds)
        return found

    def kill(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], check=False, capture_output=True)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")},
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CONSOLE_RUNTIME_DIR": str(tmp_path / "runtime"),
        "TERM": "xterm-256color",
        "ATTACH_MARKER": f"marker-{uuid.uuid4()}",
    }


@pytest.fixture
def panes() -> Iterator[list[Pane]]:
    made: list[Pane] = []
    yield made
    for pane in made:
        pane.kill()


def _console(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def _detach(tmp_path: Path, env: dict[str, str]) -> tuple[str, int, Path]:
    path = tmp_path / "wf.toml"
    path.write_text(GATED.format(cleaned=tmp_path / "cleaned"))
    started = _console("run", str(path), "--detach", env=env)
    assert started.returncode == 0, started.stderr
    found = re.search(r"run (\S+) started in the background \(pid (\d+)\)", started.stdout)
    assert found, started.stdout
    audit = tmp_path / "state" / "console" / "audit.jsonl"
    return found.group(1), int(found.group(2)), audit


def _attach_pane(run_id: str, env: dict[str, str], tmp_path: Path) -> tuple[Pane, Path]:
    done = tmp_path / f"exit-{uuid.uuid4().hex[:6]}"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("XDG_", "CONSOLE_", "TERM", "ATTACH_", "PATH", "HOME")))
    command = (f"cd {shlex.quote(str(REPO))} && env {exports} {shlex.quote(sys.executable)} "
               f"-m console attach {run_id}; echo $? > {shlex.quote(str(done))}; sleep 60")
    return Pane(command), done


def _attached_at_the_gate(
    tmp_path: Path, env: dict[str, str], panes: list[Pane]
) -> tuple[str, int, Path, Pane, Path]:
    """A detached run waiting at its gate, and a pane attached to it showing the gate."""
    run_id, pid, audit = _detach(tmp_path, env)
    wait_for_record(audit, "gate.opened", "deploy")
    pane, done = _attach_pane(run_id, env, tmp_path)
    panes.append(pane)
    pane.wait_for("awaiting")
    return run_id, pid, audit, pane, done


def _alive(pid: int) -> bool:
    try:
        return ") Z " not in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False


def test_attach_shows_the_run_and_approves_by_keypress(
    tmp_path: Path, env: dict[str, str], panes: list[Pane]
) -> None:
    _run_id, pid, audit, pane, done = _attached_at_the_gate(tmp_path, env, panes)
    pane.send("a")
    pane.wait_for("reason (required)")
    pane.send("-l", "diff reviewed")
    pane.send("Enter")
    finished = wait_for_record(audit, "run.finished")
    assert finished["data"]["outcome"] == "succeeded"
    given = [r for r in records(audit) if r["type"] == "approval.given"]
    assert given[0]["actor"]["via"] == "socket" and given[0]["data"]["reason"] == "diff reviewed"
    pane.wait_for("succeeded in")
    assert (tmp_path / "cleaned").exists()
    assert _console("audit", "verify", str(audit), env=env).returncode == 0
    pane.send("Escape")
    pane.wait_for("Filter")  # the summary closed: the run screen's footer
    pane.send("q")
    assert wait_for("the viewer to exit", lambda: done.exists() and done.read_text().strip())
    assert wait_for("the host to exit", lambda: not _alive(pid))
    assert wait_for("no console process left",
                    lambda: not processes_with(env["ATTACH_MARKER"]), 10)


def test_d_detaches_and_the_run_goes_on(
    tmp_path: Path, env: dict[str, str], panes: list[Pane]
) -> None:
    run_id, pid, audit, pane, done = _attached_at_the_gate(tmp_path, env, panes)
    pane.send("d")
    assert wait_for("the viewer to exit", lambda: done.exists() and done.read_text().strip()) \
        == "0"
    assert _alive(pid)
    assert "run.finished" not in [r["type"] for r in records(audit)]
    assert _console("approve", run_id, "deploy", "--reason", "ok", env=env).returncode == 0
    assert wait_for_record(audit, "run.finished")["data"]["outcome"] == "succeeded"


def test_a_host_that_dies_is_said_in_place_and_the_run_resumes(
    tmp_path: Path, env: dict[str, str], panes: list[Pane]
) -> None:
    run_id, pid, audit = _detach(tmp_path, env)
    wait_for_record(audit, "gate.opened", "deploy")
    viewers = [_attach_pane(run_id, env, tmp_path)[0] for _ in range(2)]
    panes.extend(viewers)
    for pane in viewers:
        pane.wait_for("awaiting")
    os.kill(pid, signal.SIGKILL)
    for pane in viewers:  # both viewers say the host died, and how to finish the run
        screen = " ".join(pane.wait_for("went away").split())
        assert f"--resume {run_id}" in screen
    assert wait_for("no step left", lambda: not processes_with(
        env["ATTACH_MARKER"], steps_only=True), 10)
    resumed = subprocess.Popen(
        [sys.executable, "-m", "console", "run", str(tmp_path / "wf.toml"), "--no-tui",
         "--resume", run_id], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        opened = wait_for("the resumed run's gate", lambda: next(
            (r for r in records(audit) if r["type"] == "gate.opened" and r["run"] != run_id),
            None))
        assert _console("approve", opened["run"], "deploy", "--reason", "again",
                        env=env).returncode == 0
        out, err = resumed.communicate(timeout=60)
    finally:
        resumed.kill()
    assert resumed.returncode == 0, (out, err)


def test_a_finished_run_opens_read_only(
    tmp_path: Path, env: dict[str, str], panes: list[Pane]
) -> None:
    run_id, _pid, audit = _detach(tmp_path, env)
    wait_for_record(audit, "gate.opened", "deploy")
    assert _console("deny", run_id, "deploy", "--reason", "no", env=env).returncode == 0
    wait_for_record(audit, "run.finished")
    pane, _done = _attach_pane(run_id, env, tmp_path)
    panes.append(pane)
    pane.wait_for("denied")


def test_without_run_a_picker_lists_the_live_runs_and_enter_attaches(
    tmp_path: Path, env: dict[str, str], panes: list[Pane]
) -> None:
    first, first_pid, audit = _detach(tmp_path, env)
    second, second_pid, _ = _detach(tmp_path, env)
    wait_for("both gates", lambda: sum(
        1 for r in records(audit) if r["type"] == "gate.opened") == 2)
    pane, done = _attach_pane("", env, tmp_path)
    panes.append(pane)
    screen = pane.wait_for("2 live runs")
    assert first in screen and second in screen and "you may approve" in screen
    pane.send("Enter")
    pane.wait_for("awaiting")
    pane.send("d")
    assert wait_for("the viewer to exit", lambda: done.exists() and done.read_text().strip()) \
        == "0"
    for run_id, pid in ((first, first_pid), (second, second_pid)):
        _console("cancel", run_id, env=env)
        wait_for("the host to exit", lambda pid=pid: not _alive(pid))


def test_bluegreen_outlives_its_terminal_and_is_approved_from_a_new_one(
    tmp_path: Path, env: dict[str, str], panes: list[Pane]
) -> None:
    """The issue's walk-through: start bluegreen in the UI in tmux, kill that tmux mid-run,
    the run goes on; attach from a new tmux, approve with a + reason + enter."""
    audit = tmp_path / "state" / "console" / "audit.jsonl"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("XDG_", "CONSOLE_", "TERM", "ATTACH_", "PATH", "HOME")))
    first = Pane(f"cd {shlex.quote(str(REPO))} && env {exports} TMPDIR={tmp_path} "
                 f"{shlex.quote(sys.executable)} -m console run workflows/bluegreen.toml "
                 f"-p version=1.4.2; sleep 60")
    panes.append(first)
    started = wait_for_record(audit, "step.started", "unit-tests", seconds=60)
    run_id = str(started["run"])
    first.kill()  # the terminal goes away mid-run
    host = int(next(r for r in records(audit) if r["type"] == "run.started")["data"]["pid"])
    assert _alive(host)
    assert "run.interrupted" not in [r["type"] for r in records(audit)]
    status = _console("status", env=env)
    assert run_id in status.stdout, status.stdout

    wait_for_record(audit, "gate.opened", "switch-traffic", seconds=90)
    second, done = _attach_pane(run_id, env, tmp_path)
    panes.append(second)
    second.wait_for("awaiting")
    second.send("a")
    second.wait_for("reason (required)")
    second.send("-l", "green looks healthy")
    second.send("Enter")
    finished = wait_for_record(audit, "run.finished", seconds=90)
    assert finished["data"]["outcome"] == "succeeded"
    assert not [r for r in records(audit) if r["type"] == "step.finished"
                and r["data"]["outcome"] != "succeeded"]
    assert _console("audit", "verify", str(audit), env=env).returncode == 0
    second.wait_for("succeeded in")
    second.send("Escape")
    second.wait_for("Filter")
    second.send("q")
    assert wait_for("the viewer to exit", lambda: done.exists() and done.read_text().strip())
    assert wait_for("the host to exit", lambda: not _alive(host))
    assert wait_for("no console process left",
                    lambda: not processes_with(env["ATTACH_MARKER"]), 10)
