"""A run host works in its workflow's directory, so the steps that run there start through
posix_spawn (console/host/process.py `enter_workdir`); what the steps see stays the same."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from console.host.process import start_host_process

from ..multiuser import Account, SharedPython, needs_other_users, run_as
from .cli_runs import console_env, records, wait_for, wait_for_record
from .conftest import settings_in, write_workflow

# What a step shows of itself: its signal mask and ignored signals, its directory, its
# descriptors, its environment (less what differs between two steps of one run by design).
# The shell's builtins read them, so no child it forks is caught with the shell's transient
# state (dash blocks every signal around a fork; a pipeline's ends are open in it for a
# moment); the glob's own directory is descriptor 3.
SHOW = ("while read -r key value; do case $key in SigBlk:|SigIgn:) echo $value;; esac; "
        "done < /proc/self/status; pwd -P; cd /proc/self/fd && echo *; "
        "env | grep -v -E '^(PWD|OLDPWD|CONSOLE_STEP|_)=' | sort")
# glibc's posix_spawn leaves its two internal signals (32, 33) ignored in the child; the
# Popen path does not (see tests/engine/test_executor.py).
GLIBC_INTERNAL = (1 << 31) | (1 << 32)


def _console(*args: str, env: dict[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "console", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _host_pid(out: str) -> int:
    found = re.search(r"started in the background \(pid (\d+)\)", out)
    assert found, out
    return int(found.group(1))


def _gone(pid: int) -> bool:
    try:
        return ") Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True


def _log(tmp_path: Path, run: str, step: str) -> str:
    return (tmp_path / "state" / "console" / "runs" / run / f"{step}.1.log").read_text()


def _seen(log: str) -> dict[str, str]:
    lines = log.splitlines()
    return {"blocked": lines[0], "ignored": lines[1], "cwd": lines[2], "fds": lines[3],
            "env": "\n".join(lines[4:])}


def test_a_detached_host_works_in_the_workflows_directory_and_its_steps_see_the_same(
    tmp_path: Path,
) -> None:
    marker = f"marker-{uuid.uuid4()}"
    env = console_env(tmp_path, WORKDIR_MARKER=marker)
    directory = tmp_path / "wf"
    (directory / "sub").mkdir(parents=True)
    go = tmp_path / "go"
    path = write_workflow(directory, f"""
        [workflow]
        name = "workdir"
        [steps.here]
        run = "while [ ! -e {go} ]; do sleep 0.05; done; {SHOW}"
        [steps.there]
        needs = ["here"]
        cwd = "sub"
        run = "{SHOW}"
        """)
    audit = tmp_path / "audit.jsonl"
    pid = _host_pid(_console("run", str(path), "--detach", "--audit", str(audit), env=env,
                             cwd=tmp_path))
    try:
        wait_for_record(audit, "step.started", "here")
        assert os.readlink(f"/proc/{pid}/cwd") == os.path.realpath(directory)
    finally:
        go.touch()
    finished = wait_for_record(audit, "run.finished")
    assert finished["data"]["outcome"] == "succeeded"
    assert wait_for("the host to exit", lambda: _gone(pid))
    here = _seen(_log(tmp_path, finished["run"], "here"))  # posix_spawn: the host's directory
    there = _seen(_log(tmp_path, finished["run"], "there"))  # Popen: another directory
    assert here["cwd"] == os.path.realpath(directory)
    assert there["cwd"] == os.path.realpath(directory / "sub")
    assert here["fds"] == there["fds"] == "0 1 2 3"
    assert here["blocked"] == there["blocked"] == "0000000000000000"
    assert int(here["ignored"], 16) & ~GLIBC_INTERNAL == int(there["ignored"], 16)
    assert here["env"] == there["env"] and f"WORKDIR_MARKER={marker}" in here["env"]


def test_the_hosts_of_the_ui_and_the_service_work_in_the_workflows_directory(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "wf"
    directory.mkdir()
    go = tmp_path / "go"
    path = write_workflow(directory, f"""
        [workflow]
        name = "started"
        [steps.wait]
        run = "while [ ! -e {go} ]; do sleep 0.05; done; pwd -P"
        """)
    settings = settings_in(tmp_path)
    started = start_host_process(path, {}, settings)
    try:
        assert os.readlink(f"/proc/{started.pid}/cwd") == os.path.realpath(directory)
    finally:
        go.touch()
    finished = wait_for_record(settings.audit_path, "run.finished")
    assert finished["data"]["outcome"] == "succeeded"
    log = settings.runs_dir / started.run_id / "wait.1.log"
    assert log.read_text().strip() == os.path.realpath(directory)
    assert wait_for("the host to exit", lambda: _gone(started.pid))


def test_a_removed_workflow_directory_fails_the_steps_that_would_run_there(
    tmp_path: Path,
) -> None:
    env = console_env(tmp_path)
    directory = tmp_path / "wf"
    directory.mkdir()
    path = write_workflow(directory, f"""
        [workflow]
        name = "removed"
        [steps.remove]
        run = "rm -r {directory}"
        [steps.after]
        needs = ["remove"]
        run = "echo ran"
        [steps.elsewhere]
        needs = ["remove"]
        cwd = "{tmp_path}"
        run = "echo ran elsewhere"
        """)
    audit = tmp_path / "audit.jsonl"
    pid = _host_pid(_console("run", str(path), "--detach", "--audit", str(audit), env=env))
    finished = wait_for_record(audit, "run.finished")
    assert finished["data"]["outcome"] == "failed"
    ended = {r["step"]: r["data"] for r in records(audit) if r["type"] == "step.finished"}
    assert ended["remove"]["outcome"] == "succeeded"
    assert ended["elsewhere"]["outcome"] == "succeeded"
    assert ended["after"]["outcome"] == "error"
    assert ended["after"]["error"] == (
        f"could not start: [Errno 2] No such file or directory: '{directory}'"
    )
    assert wait_for("the host to exit", lambda: _gone(pid))
    host_log = (tmp_path / "state" / "console" / "runs" / finished["run"] / "host.log")
    assert "Traceback" not in host_log.read_text()


def test_steps_follow_the_directorys_path_not_the_directory_the_host_holds(
    tmp_path: Path,
) -> None:
    """A step that moves the workflow's directory aside and makes a new one (a release
    switch): the next steps run in the new one, as they would from a host in `/`."""
    env = console_env(tmp_path)
    directory = tmp_path / "wf"
    directory.mkdir()
    path = write_workflow(directory, f"""
        [workflow]
        name = "moved"
        [steps.switch]
        run = "mv {directory} {directory}.old && mkdir {directory} && echo new > {directory}/m"
        [steps.after]
        needs = ["switch"]
        run = "pwd -P; cat m"
        """)
    audit = tmp_path / "audit.jsonl"
    _console("run", str(path), "--detach", "--audit", str(audit), env=env)
    finished = wait_for_record(audit, "run.finished")
    assert finished["data"]["outcome"] == "succeeded"
    assert _log(tmp_path, finished["run"], "after").split() == [str(directory), "new"]


def test_relative_state_directories_mean_the_callers_directory(tmp_path: Path) -> None:
    caller = tmp_path / "caller"
    caller.mkdir()
    directory = tmp_path / "wf"
    directory.mkdir()
    path = write_workflow(directory, """
        [workflow]
        name = "relative"
        [steps.one]
        run = "true"
        """)
    env = console_env(tmp_path, XDG_STATE_HOME="state", CONSOLE_RUNTIME_DIR="runtime")
    pid = _host_pid(_console("run", str(path), "--detach", env=env, cwd=caller))
    finished = wait_for_record(caller / "state" / "console" / "audit.jsonl", "run.finished")
    assert finished["data"]["outcome"] == "succeeded"
    run_dir = caller / "state" / "console" / "runs" / finished["run"]
    assert f"log {run_dir}/one.1.log" in (run_dir / "host.log").read_text()
    assert wait_for("the host to exit", lambda: _gone(pid))
    assert sorted(p.name for p in directory.iterdir()) == ["wf.toml"]


ENTER = ("import os, sys; from pathlib import Path; from console.host.process import "
         "enter_workdir; enter_workdir(Path(sys.argv[1])); print(os.getcwd())")


def test_a_directory_the_host_cannot_enter_leaves_it_in_the_root(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", ENTER, str(tmp_path / "missing")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "/\n", done.stderr


@needs_other_users
def test_a_directory_the_services_user_may_not_search_leaves_it_in_the_root(
    tmp_path: Path, shared_python: SharedPython,
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    done = run_as(Account.named("nobody"), shared_python.argv("-c", ENTER, str(private)))
    assert done.returncode == 0 and done.stdout == "/\n", done.stderr
