"""Stopping steps on hosts: a lost connection, a step that ignores SIGTERM, a cancel in the
middle of a wave, a console killed with -9 (nothing left running on the targets, and
--resume runs again only the hosts that did not finish), secrets kept off the targets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

from ..engine.cli_runs import (
    console_env,
    console_process,
    processes_with,
    records,
    wait_for,
    wait_for_record,
)
from ..sshd import Fleet
from .test_waves import _of


def _workflow(tmp_path: Path, fleet: Fleet, steps: str) -> Path:
    (tmp_path / "hosts.toml").write_text(fleet.inventory())
    path = tmp_path / "fleet.toml"
    path.write_text('[workflow]\nname = "fleet"\ninventory = "hosts.toml"\n'
                    + textwrap.dedent(steps))
    return path


def test_a_dropped_connection_fails_the_attempt_and_the_retry_reconnects(
    tmp_path: Path, own_fleet: Callable[[int], Fleet],
) -> None:
    fleet = own_fleet(2)
    gate = tmp_path / "go"
    path = _workflow(tmp_path, fleet, f"""
        [steps.deploy]
        run = '''touch {tmp_path}/started-$CONSOLE_ATTEMPT
                 while [ ! -e {gate} ]; do sleep 0.05; done'''
        on = "@web"
        retry = {{ attempts = 2 }}
        """)
    audit = tmp_path / "audit.jsonl"
    run = console_process("run", str(path), "--no-tui", "--audit", str(audit),
                          env=console_env(tmp_path))
    wait_for("both first attempts", lambda: len(_of(records(audit), "step.started")) == 2)
    wait_for("the steps to run", lambda: (tmp_path / "started-1").exists())
    assert fleet.kill_sessions() >= 2
    wait_for("the retries", lambda: len(_of(records(audit), "step.started")) == 4)
    gate.touch()
    assert run.wait(60) == 0, run.stderr.read() if run.stderr else ""
    recs = records(audit)
    first = [r for r in _of(recs, "step.finished") if r["data"]["attempt"] == 1]
    assert {r["data"]["outcome"] for r in first} == {"error"}
    assert all("connection lost" in r["data"]["error"] for r in first), first
    assert all(r["data"]["error"].startswith(("web-01 (127.0.0.30", "web-02 (127.0.0.31"))
               for r in first)
    second = [r for r in _of(recs, "step.finished") if r["data"]["attempt"] == 2]
    assert {r["data"]["outcome"] for r in second} == {"succeeded"}


def test_a_step_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path, fleet: Fleet) -> None:
    marker = f"m{uuid.uuid4().hex}"
    path = _workflow(tmp_path, fleet, f"""
        [steps.deploy]
        run = "trap '' TERM; echo stubborn; sleep 60 & wait; sleep 60"
        on = ["web-03"]
        timeout = "1s"
        env = {{ MARKER = "{marker}" }}
        """)
    audit = tmp_path / "audit.jsonl"
    done = subprocess.run([sys.executable, "-m", "console", "run", str(path), "--no-tui",
                           "--audit", str(audit), "--grace", "1"],
                          env=console_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    finished = _of(records(audit), "step.finished", "deploy[web-03]")[0]["data"]
    assert finished["outcome"] == "error" and finished["error"] == "timed out after 1s"
    assert finished["duration_s"] < 10
    assert wait_for("nothing left on the host", lambda: not processes_with(marker), 15) is True


def test_cancel_in_the_middle_of_a_wave_stops_it_and_starts_no_other(
    tmp_path: Path, fleet: Fleet,
) -> None:
    marker = f"m{uuid.uuid4().hex}"
    path = _workflow(tmp_path, fleet, f"""
        [steps.deploy]
        run = "sleep 60"
        on = "@web"
        env = {{ MARKER = "{marker}" }}
        strategy = {{ waves = [2] }}
        """)
    audit = tmp_path / "audit.jsonl"
    env = console_env(tmp_path)
    run = console_process("run", str(path), "--no-tui", "--audit", str(audit), env=env)
    wait_for("the first wave running",
             lambda: len(_of(records(audit), "step.started")) == 2 and processes_with(marker))
    run_id = records(audit)[0]["run"]
    cancel = subprocess.run([sys.executable, "-m", "console", "cancel", run_id, "deploy"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert cancel.returncode == 0, cancel.stderr
    assert run.wait(60) == 130
    recs = records(audit)
    assert len(_of(recs, "wave.started")) == 1
    assert {r["data"]["outcome"] for r in _of(recs, "step.finished")} == {"cancelled"}
    cancelled = {r["step"] for r in _of(recs, "step.cancelled")}
    assert cancelled == {f"deploy[web-{n:02d}]" for n in range(3, 21)}
    assert _of(recs, "group.finished")[0]["data"]["outcome"] == "cancelled"
    assert wait_for("nothing left on the hosts", lambda: not processes_with(marker), 15)


def test_kill_9_mid_wave_leaves_nothing_on_the_targets_and_resume_reruns_the_rest(
    tmp_path: Path, fleet: Fleet,
) -> None:
    marker = f"m{uuid.uuid4().hex}"
    gate = tmp_path / "go"
    path = _workflow(tmp_path, fleet, f"""
        [steps.deploy]
        run = '[ "$CONSOLE_HOST" = web-01 ] || while [ ! -e {gate} ]; do sleep 0.05; done'
        on = "@web"
        env = {{ MARKER = "{marker}" }}
        strategy = {{ waves = [1, 3, "100%"] }}
        """)
    audit = tmp_path / "audit.jsonl"
    env = console_env(tmp_path)
    run = console_process("run", str(path), "--no-tui", "--audit", str(audit), env=env,
                          start_new_session=True)
    wait_for("the second wave running", lambda: len(processes_with(marker, True)) >= 3)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(10)
    assert wait_for("no step left on any target", lambda: not processes_with(marker), 30)
    old = records(audit)
    run_id = old[0]["run"]
    assert {r["step"] for r in _of(old, "step.finished")} == {"deploy[web-01]"}
    gate.touch()
    resumed = subprocess.run([sys.executable, "-m", "console", "run", str(path), "--no-tui",
                              "--audit", str(audit), "--resume", run_id],
                             env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    new = [r for r in records(audit) if r["run"] != run_id]
    assert {r["step"] for r in _of(new, "step.reused")} == {"deploy[web-01]"}
    ran = {r["step"] for r in _of(new, "step.started")}
    assert ran == {f"deploy[web-{n:02d}]" for n in range(2, 21)}
    waves = [w["data"]["hosts"] for w in _of(new, "wave.started")]
    assert waves[0] == ["web-02"] and sum(len(w) for w in waves) == 19


def test_a_secret_reaches_the_step_but_no_remote_ps_log_or_audit_line(
    tmp_path: Path, fleet: Fleet,
) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    gate = tmp_path / "go"
    path = _workflow(tmp_path, fleet, f"""
        [steps.deploy]
        run = '''echo "token=$TOKEN ${{MACHINE_ONLY:-absent}}"; [ "$TOKEN" = "$EXPECTED" ] || exit 9
                 while [ ! -e {gate} ]; do sleep 0.05; done'''
        on = ["web-04"]
        env = {{ TOKEN = "${{secret:DEPLOY_TOKEN}}", EXPECTED = "${{secret:DEPLOY_TOKEN}}" }}
        """)
    audit = tmp_path / "audit.jsonl"
    # This machine's environment never reaches a host: only the step's own does.
    env = console_env(tmp_path, DEPLOY_TOKEN=secret, MACHINE_ONLY="leaked")
    run = console_process("run", str(path), "--no-tui", "--audit", str(audit), env=env)
    wait_record = wait_for_record(audit, "step.started", "deploy[web-04]")
    assert wait_record["data"]["host"] == "web-04"
    wait_for("the step on the host", lambda: processes_with(f"TOKEN={secret}", True))
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert secret not in ps
    gate.touch()
    assert run.wait(60) == 0
    log = Path(_of(records(audit), "step.finished", "deploy[web-04]")[0]["data"]["log_path"])
    assert log.read_text() == "token=*** absent\n"
    assert secret not in audit.read_text()
    assert secret not in (run.stdout.read() if run.stdout else "")


def test_one_connection_per_host_serves_every_step_on_it(
    tmp_path: Path, own_fleet: Callable[[int], Fleet],
) -> None:
    fleet = own_fleet(1)
    marker = f"m{uuid.uuid4().hex}"
    gate = tmp_path / "go"
    path = _workflow(tmp_path, fleet, f"""
        [steps.first]
        run = "echo first"
        on = ["web-01"]
        [steps.second]
        needs = ["first"]
        run = "while [ ! -e {gate} ]; do sleep 0.05; done"
        on = ["web-01"]
        env = {{ MARKER = "{marker}" }}
        """)
    audit = tmp_path / "audit.jsonl"
    run = console_process("run", str(path), "--no-tui", "--audit", str(audit),
                          env=console_env(tmp_path))
    try:
        wait_for("the second step on the host", lambda: processes_with(marker, True))
        assert len(fleet.session_pids()) == 1  # the first step's connection, reused
    finally:
        gate.touch()
    assert run.wait(60) == 0
    keys = {r["data"]["host_key"] for r in _of(records(audit), "step.started")}
    assert len(keys) == 1


def test_a_step_bigger_than_an_environment_string_still_runs(
    tmp_path: Path, fleet: Fleet,
) -> None:
    """Past 96 KiB the payload goes to the step's shell on a pipe (Linux refuses one
    environment string over 128 KiB)."""
    padding = "# " + "x" * 200_000
    path = _workflow(tmp_path, fleet, f"""
        [steps.big]
        run = '''echo "big step on $CONSOLE_HOST"
        {padding}
        echo done'''
        on = ["web-05"]
        """)
    audit = tmp_path / "audit.jsonl"
    done = subprocess.run([sys.executable, "-m", "console", "run", str(path), "--no-tui",
                           "--audit", str(audit)], env=console_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    finished = _of(records(audit), "step.finished", "big[web-05]")[0]["data"]
    assert Path(finished["log_path"]).read_text() == "big step on web-05\ndone\n"
