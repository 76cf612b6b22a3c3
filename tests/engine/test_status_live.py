"""`console status` across users, with real runs: every live run on the host is listed,
whoever started it, and "you may approve" appears exactly where the policy lets the caller
approve. A headless run whose gate waits for someone else says so as the gate opens.

The multi-user tests run as root only: two runs are started by two real Unix users (root
and a user made for the session), and `console status` runs as a third one.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.errors import ControlError
from console.run.control_client import request
from console.run.engine import Engine

from ..multiuser import (
    Account,
    Accounts,
    SharedPython,
    as_user,
    needs_other_users,
    reachable_dir,
    run_as,
)
from .cli_runs import console_env, console_process, wait_for, wait_for_record

SRE, DBA = "console-status-sre", "console-status-dba"
LONG_WORKFLOW = "payments-api-blue-green-deploy-with-canary"
# The run's status says whether the asker may approve once the engine's status() passes the
# asker's uid to its gates (Engine.status(for_uid=...)); see docs/control.md.
ENGINE_JUDGES = "for_uid" in inspect.signature(Engine.status).parameters

ROOT_FLOW = f"""
[workflow]
name = "bluegreen"
[steps.build]
run = "true"
[steps.deploy]
needs = ["build"]
run = "true"
approval = {{ approvers = ["@{SRE}"], separation_of_duties = true }}
"""
OTHER_FLOW = f"""
[workflow]
name = "{LONG_WORKFLOW}"
[steps.migrate]
run = "true"
approval = {{ approvers = ["@{DBA}"], approvals = 2 }}
"""


@dataclass
class LiveRuns:
    """Two live runs waiting at their gates: root's and `starter`'s; `viewer` is a third
    user in @sre (so may approve root's deploy) and not in @dba (so not the migration)."""

    root_run: str
    other_run: str
    starter: Account
    viewer: Account
    runtime: Path
    base: Path

    def status_as(self, user: Account, python: SharedPython, *args: str,
                  columns: int | None = None) -> str:
        env = {"CONSOLE_RUNTIME_DIR": str(self.runtime),
               "XDG_STATE_HOME": str(self.base / "no-state"),
               "XDG_CONFIG_HOME": str(self.base / "no-config"), "HOME": "/"}
        if columns is not None:
            env["COLUMNS"] = str(columns)
        done = run_as(user, python.console("status", *args), env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout


def _owned_dir(path: Path, user: Account) -> Path:
    path.mkdir(mode=0o700)
    os.chown(path, user.uid, user.gid)
    return path


def _stop(procs: Sequence[subprocess.Popen[str]], runs: dict[str, Path]) -> None:
    for run_id, sock in runs.items():
        with contextlib.suppress(ControlError):  # root may cancel any run; it may be over
            request(run_id, {"op": "cancel"}, 10, socket_path=sock)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def live_runs(accounts: Accounts, shared_python: SharedPython) -> Iterator[LiveRuns]:
    starter = accounts.user("releaseengineeringbot", groups=[DBA])
    viewer = accounts.user("viewer", groups=[SRE])
    base = reachable_dir("console-status-live-", 0o755)
    runtime = base / "runtime"
    runtime.mkdir()
    runtime.chmod(0o1777)
    root_flow, other_flow = base / "root.toml", base / "other.toml"
    root_flow.write_text(ROOT_FLOW)
    other_flow.write_text(OTHER_FLOW)
    for flow in (root_flow, other_flow):
        flow.chmod(0o644)
    root_state = base / "root-state"
    other_state = _owned_dir(base / "other-state", starter)
    procs: list[subprocess.Popen[str]] = []
    sockets: dict[str, Path] = {}
    try:
        procs.append(console_process(
            "run", str(root_flow), "--no-tui",
            env=console_env(base, XDG_STATE_HOME=str(root_state), CONSOLE_RUNTIME_DIR=str(runtime)),
        ))
        procs.append(subprocess.Popen(
            as_user(starter, shared_python.console("run", str(other_flow), "--no-tui")),
            env={**os.environ, "CONSOLE_RUNTIME_DIR": str(runtime), "HOME": "/",
                 "XDG_STATE_HOME": str(other_state), "XDG_CONFIG_HOME": str(other_state)},
            cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, text=True,
        ))
        root_run = wait_for_record(root_state / "console" / "audit.jsonl", "gate.opened",
                                   "deploy", seconds=60)["run"]
        other_run = wait_for_record(other_state / "console" / "audit.jsonl", "gate.opened",
                                    "migrate", seconds=60)["run"]
        for run_id in (root_run, other_run):
            sockets[run_id] = runtime / f"{run_id}.sock"
            wait_for(f"{run_id}'s socket", sockets[run_id].exists)
        yield LiveRuns(root_run, other_run, starter, viewer, runtime, base)
    finally:
        _stop(procs, sockets)
        shutil.rmtree(base, ignore_errors=True)


def _row(out: str, run_id: str) -> tuple[str, list[str]]:
    """The run's row and the gate lines under it."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(run_id))
    gates = []
    for line in lines[at + 1:]:
        if not line.startswith("  "):
            break
        gates.append(line.strip())
    return lines[at], gates


@needs_other_users
def test_a_third_user_sees_both_users_live_runs(
    live_runs: LiveRuns, shared_python: SharedPython
) -> None:
    out = live_runs.status_as(live_runs.viewer, shared_python)
    root_row, root_gates = _row(out, live_runs.root_run)
    other_row, other_gates = _row(out, live_runs.other_run)
    assert root_row.split()[1:5] == ["bluegreen", "awaiting", "approval", "1/2"]
    assert root_row.split()[-1] == "root"
    assert other_row.split()[1:5] == [LONG_WORKFLOW, "awaiting", "approval", "0/1"]
    assert other_row.split()[-1] == live_runs.starter.name
    assert root_gates[0].startswith("deploy: awaiting approval 0/1")
    assert other_gates[0].startswith("migrate: awaiting approval 0/2")


@needs_other_users
def test_the_table_fits_80_columns_with_long_names(
    live_runs: LiveRuns, shared_python: SharedPython
) -> None:
    out = live_runs.status_as(live_runs.viewer, shared_python, columns=80)
    assert max(len(line) for line in out.splitlines()) <= 80, out
    other_row, _ = _row(out, live_runs.other_run)
    assert other_row.startswith(f"{live_runs.other_run}  payments-api-")
    assert "…" in other_row  # the long workflow name, cut short on purpose
    assert "awaiting approval" in other_row


@needs_other_users
@pytest.mark.skipif(not ENGINE_JUDGES, reason="Engine.status() does not take for_uid yet")
def test_you_may_approve_exactly_where_the_policy_allows(
    live_runs: LiveRuns, shared_python: SharedPython
) -> None:
    root = Account.named("root")
    views = {who.name: live_runs.status_as(who, shared_python)
             for who in (live_runs.viewer, live_runs.starter, root)}
    expected = {
        # the viewer is in @sre and did not start the root run; not in @dba
        live_runs.viewer.name: ("deploy: awaiting approval 0/1 (you may approve)",
                                f"migrate: awaiting approval 0/2 (not you: you are not in @{DBA}"),
        # the starter is in @dba and the migration has no separation of duties: they may
        # approve their own run there; not in @sre
        live_runs.starter.name: (f"deploy: awaiting approval 0/1 (not you: you are not in @{SRE}",
                                 "migrate: awaiting approval 0/2 (you may approve)"),
        # root started the deploy (separation of duties) and is in neither group
        "root": ("deploy: awaiting approval 0/1 (not you: you started this run)",
                 f"migrate: awaiting approval 0/2 (not you: you are not in @{DBA}"),
    }
    for who, (deploy, migrate) in expected.items():
        _, root_gates = _row(views[who], live_runs.root_run)
        _, other_gates = _row(views[who], live_runs.other_run)
        assert root_gates[0].startswith(deploy), (who, views[who])
        assert other_gates[0].startswith(migrate), (who, views[who])


# --- headless: a gate that waits for someone else says so at once --------------------------


SOD_FLOW = """
[workflow]
name = "two-person"
[steps.switch-traffic]
run = "true"
approval = { approvals = 1, separation_of_duties = true }
"""


def test_a_headless_run_says_at_once_that_its_gate_waits_for_someone_else(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "sod.toml"
    flow.write_text(SOD_FLOW)
    proc = console_process("run", str(flow), "--no-tui", env=console_env(tmp_path))
    lines: list[str] = []
    assert proc.stdout is not None
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")),
                              daemon=True)
    reader.start()
    audit = tmp_path / "state" / "console" / "audit.jsonl"
    run_id = ""
    try:
        run_id = wait_for_record(audit, "gate.opened", "switch-traffic")["run"]
        waiting = wait_for("the waiting line", lambda: [
            line for line in list(lines) if "waiting for" in line])
        assert wait_for_record(audit, "gate.opened")["data"]["initiator_may_approve"] is False
    finally:
        if run_id:
            request(run_id, {"op": "cancel"}, 10,
                    socket_path=tmp_path / "runtime" / f"{run_id}.sock")
        proc.wait(timeout=60)
        reader.join(timeout=10)
    assert waiting[0].rstrip("\n").endswith(
        "switch-traffic: waiting for someone else (not you: you started this run), "
        "1 approval needed")
    at = lines.index(waiting[0])
    assert [line.rstrip("\n") for line in lines[at + 1:at + 3]] == [
        f"  they approve in `console attach {run_id}`, or with:",
        f"  console approve {run_id} switch-traffic"]
    assert not any("approved by" in line for line in lines[:at]), "said before any approval"
    assert proc.returncode == 130, "".join(lines)
