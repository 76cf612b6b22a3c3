"""`console run --detach`: the run lives in a host process of its own, outliving the terminal."""

from __future__ import annotations

import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .cli_runs import console_env, processes_with, records, wait_for, wait_for_record
from .conftest import write_workflow

GATED = """
[workflow]
name = "detached"
lock = "{lock}"
[steps.build]
run = "echo built"
[steps.deploy]
needs = ["build"]
run = "echo deployed"
approval = {{ approvals = 1 }}
[steps.cleanup]
needs = ["deploy"]
if = "always"
run = "echo cleaned"
"""


def _console(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def _alive(pid: int) -> bool:
    try:
        return ") Z " not in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False


def _started(out: str) -> tuple[str, int]:
    found = re.search(r"run (\S+) started in the background \(pid (\d+)\)", out)
    assert found, out
    return found.group(1), int(found.group(2))


def test_a_detached_run_has_its_own_session_and_finishes_when_approved(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4()}"
    env = console_env(tmp_path, DETACH_MARKER=marker)
    path = write_workflow(tmp_path, GATED.format(lock=f"d-{uuid.uuid4().hex}"))
    audit = tmp_path / "audit.jsonl"
    started = _console("run", str(path), "--detach", "--audit", str(audit), env=env)
    assert started.returncode == 0, started.stderr
    run_id, pid = _started(started.stdout)
    assert f"console attach {run_id}" in started.stdout
    assert os.getsid(pid) == pid  # a session of its own: no terminal can hang it up
    wait_for_record(audit, "gate.opened", "deploy")
    status = _console("status", run_id, "--audit", str(audit), env=env)
    assert "awaiting approval" in status.stdout or "running" in status.stdout, status.stdout
    approved = _console("approve", run_id, "deploy", env=env)
    assert approved.returncode == 0, approved.stderr
    finished = wait_for_record(audit, "run.finished")
    assert finished["data"]["outcome"] == "succeeded"
    assert wait_for("the host to exit", lambda: not _alive(pid), 30)
    assert _console("audit", "verify", str(audit), env=env).returncode == 0
    assert wait_for("no process of the run left", lambda: not processes_with(marker), 10)
    log = (tmp_path / "state" / "console" / "runs" / run_id / "host.log").read_text()
    assert f"run {run_id} succeeded" in log


def test_detach_says_why_the_run_could_not_start(tmp_path: Path) -> None:
    env = console_env(tmp_path)
    lock = f"d-{uuid.uuid4().hex}"
    path = write_workflow(tmp_path, GATED.format(lock=lock))
    audit = tmp_path / "audit.jsonl"
    first = _console("run", str(path), "--detach", "--audit", str(audit), env=env)
    assert first.returncode == 0, first.stderr
    run_id, pid = _started(first.stdout)
    try:
        second = _console("run", str(path), "--detach", "--audit", str(audit), env=env)
        assert second.returncode == 1
        assert f"run {run_id}" in second.stderr and "host.log" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        _console("cancel", run_id, env=env)
        wait_for("the first host to exit", lambda: not _alive(pid), 30)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_detached_run_outlives_the_terminal_that_started_it(tmp_path: Path) -> None:
    env = console_env(tmp_path)
    go = tmp_path / "go"
    path = write_workflow(tmp_path, f"""
        [workflow]
        name = "outlives"
        [steps.wait]
        run = "while [ ! -e {go} ]; do sleep 0.05; done"
        """)
    audit = tmp_path / "audit.jsonl"
    out = tmp_path / "out.txt"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("XDG_", "CONSOLE_", "PATH", "HOME")))
    command = (f"env {exports} {shlex.quote(sys.executable)} -m console run "
               f"{shlex.quote(str(path))} --detach --audit {shlex.quote(str(audit))} "
               f"> {shlex.quote(str(out))} 2>&1; sleep 300")
    tmux = ["tmux", "-L", f"console-detach-{uuid.uuid4().hex[:8]}"]
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", command], check=True)
    try:
        wait_for_record(audit, "step.started", "wait")
        run_id, pid = wait_for("the run id", lambda: out.exists() and _maybe(out.read_text()))
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
    assert _alive(pid)
    assert "run.interrupted" not in [r["type"] for r in records(audit)]
    go.touch()
    finished = wait_for_record(audit, "run.finished")
    assert finished["data"]["outcome"] == "succeeded" and finished["run"] == run_id


def _maybe(text: str) -> tuple[str, int] | None:
    found = re.search(r"run (\S+) started in the background \(pid (\d+)\)", text)
    return (found.group(1), int(found.group(2))) if found else None


def test_a_detached_host_keeps_no_inherited_descriptor_and_a_relative_audit_path(
    tmp_path: Path,
) -> None:
    """`x=$(console run --detach ...)` and an ssh channel return at once: the host holds no
    descriptor it inherited; `--audit rel.jsonl` means the caller's directory, not the host's."""
    env = console_env(tmp_path)
    go = tmp_path / "go"
    path = write_workflow(tmp_path, f"""
        [workflow]
        name = "inherits"
        [steps.wait]
        run = "while [ ! -e {go} ]; do sleep 0.05; done"
        """)
    extra_r, extra_w = os.pipe()
    try:
        started = subprocess.run(
            [sys.executable, "-m", "console", "run", str(path), "--detach", "--audit", "rel.jsonl"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
            pass_fds=(extra_w,),
        )
        os.close(extra_w)
        assert started.returncode == 0, started.stderr
        run_id, pid = _started(started.stdout)
        audit = tmp_path / "rel.jsonl"
        wait_for_record(audit, "step.started", "wait")
        # Every writer of the extra pipe is gone (the caller exited, the host closed it).
        readable, _, _ = select.select([extra_r], [], [], 30)
        assert readable and os.read(extra_r, 1) == b"", "the run host holds the caller's pipe"
    finally:
        os.close(extra_r)
        go.touch()  # the run ends whatever was asserted
    finished = wait_for_record(audit, "run.finished")
    assert finished["data"]["outcome"] == "succeeded" and finished["run"] == run_id
    assert wait_for("the host to exit", lambda: not _alive(pid), 30)
