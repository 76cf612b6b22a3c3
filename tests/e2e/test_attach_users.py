"""Two real users, each in a terminal of their own, approve a two-person gate by keypress.

The run is root's, hosted in its own process; its workflow file is one the approvers cannot
read, so their UIs draw the DAG from the shape the run sends. Each approval is taken as the
attaching user (SO_PEERCRED), and each screen shows the other's approval.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_tmux import pytestmark  # noqa: F401 (skips without tmux)
from tests.engine.cli_runs import records, wait_for, wait_for_record
from tests.multiuser import Account, Accounts, SharedPython, as_user, needs_other_users

TWO_PERSON = """
[workflow]
name = "two-person"
[steps.build]
run = "echo built"
[steps.release]
needs = ["build"]
run = "echo released"
tags = ["prod"]
[steps.cleanup]
needs = ["release"]
if = "always"
run = "echo cleaned"

[[policy]]
name = "prod needs two people"
match = {{ tags = ["prod"] }}
effect = "require_approval"
approvals = 2
approvers = ["@{group}"]
separation_of_duties = true
"""


class UserPane:
    """A tmux server run by `user`, one 80x24 pane running `console attach RUN` as them."""

    def __init__(self, user: Account, argv: list[str], env: dict[str, str]) -> None:
        self.user = user
        self.socket = f"console-u-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = f"cd / && env {exports} {shlex.join(argv)}; sleep 60"
        self._tmux("new-session", "-d", "-x", "80", "-y", "24", command)

    def _tmux(self, *args: str) -> str:
        argv = as_user(self.user, ["tmux", "-L", self.socket, "-f", "/dev/null", *args])
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30,
                              env={"PATH": os.environ["PATH"], "TMUX_TMPDIR": "/tmp"})
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p")

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def wait_for(self, text: str, seconds: float = 30.0) -> str:
        def shown() -> str | None:
            screen = self.screen()
            return screen if text in screen else None

        found: str = wait_for(f"{text!r} on {self.user.name}'s screen", shown, seconds)
        return found

    def kill(self) -> None:
        self._tmux("kill-server")


@pytest.fixture
def panes() -> Iterator[list[UserPane]]:
    made: list[UserPane] = []
    yield made
    for pane in made:
        pane.kill()


@needs_other_users
def test_two_other_users_approve_by_keypress_and_each_sees_the_other(
    tmp_path: Path, accounts: Accounts, shared_python: SharedPython, shared_dir: Path,
    panes: list[UserPane],
) -> None:
    group = accounts.group(f"ct{uuid.uuid4().hex[:6]}")
    alice = accounts.user("alice", groups=[group])
    bob = accounts.user("bob", groups=[group])
    path = tmp_path / "wf.toml"  # under pytest's 0700 tmp: the approvers cannot read it
    path.write_text(TWO_PERSON.format(group=group))
    audit = tmp_path / "audit.jsonl"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"),
           "CONSOLE_RUNTIME_DIR": str(shared_dir)}
    started = subprocess.run(
        [sys.executable, "-m", "console", "run", str(path), "--detach", "--audit", str(audit)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert started.returncode == 0, started.stderr
    found = re.search(r"run (\S+) started in the background", started.stdout)
    assert found, started.stdout
    run_id = found.group(1)
    wait_for_record(audit, "gate.opened", "release")

    for user in (alice, bob):
        home = shared_dir / f"home-{user.name}"
        home.mkdir()
        os.chown(home, user.uid, -1)
        user_env = {"CONSOLE_RUNTIME_DIR": str(shared_dir), "XDG_STATE_HOME": str(home),
                    "XDG_CONFIG_HOME": str(home), "HOME": str(home), "TERM": "xterm-256color"}
        panes.append(UserPane(user, shared_python.console("attach", run_id), user_env))
    root_env = {"CONSOLE_RUNTIME_DIR": str(shared_dir), "XDG_STATE_HOME": str(tmp_path / "state"),
                "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path),
                "TERM": "xterm-256color"}
    starter = UserPane(Account.named("root"), shared_python.console("attach", run_id), root_env)
    first, second = panes
    panes.append(starter)
    for pane in panes:
        pane.wait_for("awaiting")
    # The starter is told at once that the gate waits for others, and how they approve;
    # `a` says so again instead of asking for a reason it would then refuse.
    told = " ".join(starter.wait_for(f"waits for @{group}").split())
    assert "you started this run" in told and f"console attach {run_id}" in told
    starter.send("a")
    assert "reason (required)" not in starter.wait_for("Refused")

    first.send("a")
    first.wait_for("reason")
    first.send("-l", "alice checked")
    first.send("Enter")
    wait_for_record(audit, "approval.given", "release")
    second.wait_for("awaiting approval 1/2", seconds=5)  # the other screen shows it, live

    second.send("a")
    second.wait_for("reason")
    second.send("-l", "bob checked")
    second.send("Enter")
    finished = wait_for_record(audit, "run.finished")
    assert finished["data"]["outcome"] == "succeeded"
    given = [r for r in records(audit) if r["type"] == "approval.given"]
    assert [(r["actor"]["user"], r["actor"]["via"]) for r in given] == [
        (alice.name, "socket"), (bob.name, "socket")]
    for pane in panes:
        pane.wait_for("succeeded", seconds=10)
    verify = subprocess.run([sys.executable, "-m", "console", "audit", "verify", str(audit)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
