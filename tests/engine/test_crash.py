"""Crash safety with the real CLI: signals, kill -9, locks, orphans, resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .cli_runs import processes_with, records, wait_for
from .conftest import write_workflow

WORKFLOW = """
[workflow]
name = "crashy"
concurrency = 2
lock = "crashy-{unique}"

[steps.a]
run = "sleep 0.2 & wait"
[steps.b]
run = "sleep 0.2 & wait"
[steps.c]
needs = ["a", "b"]
run = "sh -c 'sleep 0.2' & wait"
[steps.d]
needs = ["c"]
run = "sleep 0.1"
"""


def _console(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "console", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )


def _wait_until_gone(marker: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = processes_with(marker)
        if not left:
            return []
        time.sleep(0.05)
    return processes_with(marker)


def _env(tmp_path: Path, marker: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CRASH_MARKER"] = marker
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _last_run_id(audit: Path) -> str | None:
    if not audit.exists():
        return None
    run_id = None
    for line in audit.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("type") == "run.started":
            run_id = record["run"]
    return run_id


def test_sigterm_stops_steps_records_interruption_and_releases_the_lock(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4()}"
    env = _env(tmp_path, marker)
    path = write_workflow(
        tmp_path,
        f'[workflow]\nname = "t"\nlock = "tlock-{uuid.uuid4().hex}"\n'
        '[steps.long]\nrun = "sleep 30 & sleep 30"\n',
    )
    proc = _console("run", str(path), "--no-tui", "--grace", "0.5", env=env)
    deadline = time.monotonic() + 10
    while not processes_with(marker, steps_only=True) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert _wait_until_gone(marker) == []
    audit = tmp_path / "state" / "console" / "audit.jsonl"
    types = [json.loads(line)["type"] for line in audit.read_text().splitlines()]
    assert "run.interrupted" in types
    assert types[-1] == "run.finished"
    assert "lock.released" in types
    again = _console("run", str(path), "--no-tui", env={**env, "CRASH_MARKER": "x"})
    # The second run took the lock: it got as far as starting its step.
    wait_for("the second run's step", lambda: sum(
        1 for r in records(audit) if r["type"] == "step.started") == 2)
    again.send_signal(signal.SIGINT)
    _, err2 = again.communicate(timeout=20)
    assert "locked by" not in err2


def test_second_run_is_refused_while_the_lock_is_held(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4()}"
    env = _env(tmp_path, marker)
    path = write_workflow(
        tmp_path,
        f'[workflow]\nname = "l"\nlock = "shared-{uuid.uuid4().hex}"\n'
        '[steps.s]\nrun = "sleep 30"\n',
    )
    first = _console("run", str(path), "--no-tui", "--grace", "0.5", env=env)
    try:
        deadline = time.monotonic() + 10
        while not processes_with(marker, steps_only=True) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(
            [sys.executable, "-m", "console", "run", str(path), "--no-tui"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert second.returncode == 1
        assert "locked by" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=20)


def test_crash_loop_leaves_no_orphans_and_resume_completes(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    path = write_workflow(tmp_path, WORKFLOW.replace("{unique}", uuid.uuid4().hex))
    audit = tmp_path / "state" / "console" / "audit.jsonl"
    iterations = 20
    for i in range(iterations):
        marker = f"marker-{uuid.uuid4()}"
        env = _env(tmp_path, marker)
        proc = _console("run", str(path), "--no-tui", "--grace", "0.5", env=env)
        time.sleep(rng.uniform(0.3, 1.2))
        proc.kill()
        proc.communicate(timeout=10)
        assert _wait_until_gone(marker) == [], f"iteration {i}: orphans left"

        verify = subprocess.run(
            [sys.executable, "-m", "console", "audit", "verify", str(audit)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if audit.exists():
            assert verify.returncode == 0 or "torn" in (verify.stdout + verify.stderr), (
                verify.stdout + verify.stderr
            )

        run_id = _last_run_id(audit)
        args = ["run", str(path), "--no-tui"] + (["--resume", run_id] if run_id else [])
        resumed = subprocess.run(
            [sys.executable, "-m", "console", *args],
            env={**env, "CRASH_MARKER": f"{marker}-resume"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "Traceback" not in resumed.stderr

    final = subprocess.run(
        [sys.executable, "-m", "console", "audit", "verify", str(audit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert final.returncode == 0, final.stdout + final.stderr
