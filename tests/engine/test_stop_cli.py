"""Stopping the real CLI: cancels, signals, nohup and a full audit disk (real processes)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import own_workflows
from .cli_runs import (
    console_env,
    console_process,
    processes_with,
    records,
    wait_for,
    wait_for_record,
)
from .conftest import write_workflow

GRACE_S = 1.0
# How long the process may take to go after the signal: the grace, the engine's 5 s, and
# room for a loaded machine to start and stop a Python process.
STOP_BOUND_S = GRACE_S + 5.0 + 5.0


def _outcome(audit: Path) -> str:
    last = records(audit)[-1]
    assert last["type"] == "run.finished", last
    return str(last["data"]["outcome"])


def _steps_started(audit: Path) -> list[str]:
    return [r["step"] for r in records(audit) if r["type"] == "step.started"]


def test_cancelling_bluegreen_at_its_gate_is_a_cancel_and_cleanup_runs(tmp_path: Path) -> None:
    env = console_env(tmp_path, TMPDIR=str(tmp_path))
    audit = tmp_path / "audit.jsonl"
    run = console_process(
        "run", str(own_workflows(tmp_path) / "bluegreen.toml"), "-p", "version=1.4.2", "--no-tui",
        "--audit", str(audit), "--grace", str(GRACE_S), env=env,
    )
    try:
        opened = wait_for_record(audit, "gate.opened", "switch-traffic", seconds=60)
        cancel = subprocess.run(
            [sys.executable, "-m", "console", "cancel", opened["run"], "switch-traffic"],
            env=env, capture_output=True, text=True, timeout=30,
        )
        assert cancel.returncode == 0, cancel
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 130, (out, err)
    assert "switch-traffic: cancelled: cancelled by " in out
    assert "payments-bluegreen" in out and " cancelled in " in out.splitlines()[-3]  # then the head
    assert _outcome(audit) == "cancelled"
    assert "switch-traffic" not in _steps_started(audit)
    assert _steps_started(audit)[-1] == "cleanup"
    finished = {r["step"]: r["data"]["outcome"] for r in records(audit)
                if r["type"] == "step.finished"}
    assert finished["cleanup"] == "succeeded"


def test_an_ignored_sighup_stays_ignored(tmp_path: Path) -> None:
    go = tmp_path / "go"
    path = write_workflow(tmp_path, f"""
        [workflow]
        name = "nohup"
        [steps.wait]
        run = "while [ ! -e {go} ]; do sleep 0.02; done"
        [steps.after]
        needs = ["wait"]
        run = "true"
        """)
    audit = tmp_path / "audit.jsonl"
    run = console_process(
        "run", str(path), "--no-tui", "--audit", str(audit), env=console_env(tmp_path),
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    try:
        wait_for_record(audit, "step.started", "wait")
        run.send_signal(signal.SIGHUP)
        go.touch()
        out, err = run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == 0, (out, err)
    assert "run.interrupted" not in [r["type"] for r in records(audit)]
    assert _outcome(audit) == "succeeded"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_at_a_gate_ends_the_run_in_time(tmp_path: Path, sig: signal.Signals) -> None:
    path = write_workflow(tmp_path, """
        [workflow]
        name = "gate"
        [steps.deploy]
        run = "true"
        approval = { approvals = 1 }
        """)
    audit = tmp_path / "audit.jsonl"
    run = console_process(
        "run", str(path), "--no-tui", "--audit", str(audit), "--grace", str(GRACE_S),
        env=console_env(tmp_path),
    )
    try:
        wait_for_record(audit, "gate.opened", "deploy")
        run.send_signal(sig)
        run.communicate(timeout=STOP_BOUND_S)
    finally:
        run.kill()
    assert run.returncode == 130
    assert _outcome(audit) == "interrupted"


def test_a_second_sigterm_skips_a_stuck_cleanup_and_ends_the_run_in_time(
    tmp_path: Path,
) -> None:
    marker = f"marker-{uuid.uuid4()}"
    path = write_workflow(tmp_path, """
        [workflow]
        name = "stuck-cleanup"
        [steps.long]
        run = "sleep 300"
        [steps.cleanup]
        needs = ["long"]
        if = "always"
        run = "trap '' TERM; sleep 300"
        """)
    audit = tmp_path / "audit.jsonl"
    run = console_process(
        "run", str(path), "--no-tui", "--audit", str(audit), "--grace", str(GRACE_S),
        env=console_env(tmp_path, STOP_MARKER=marker),
    )
    try:
        wait_for_record(audit, "step.started", "long")
        run.send_signal(signal.SIGTERM)
        wait_for_record(audit, "step.started", "cleanup")
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=STOP_BOUND_S)
    finally:
        run.kill()
    assert run.returncode == 130, err
    assert "SIGTERM again: cleanups skipped (cleanup)" in out
    types = [r["type"] for r in records(audit)]
    assert "run.cleanups_skipped" in types
    assert _outcome(audit) == "interrupted"
    assert wait_for("the steps to be gone", lambda: not processes_with(marker), 10)


@contextlib.contextmanager
def _tiny_disk(where: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, so the audit file's disk can really fill up."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(where)],
        capture_output=True, text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root"
)
def test_a_full_audit_disk_stops_the_run_fail_closed(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4()}"
    go, ran = tmp_path / "go", tmp_path / "ran"
    ran.mkdir()
    # A chain long enough to outlast the few bytes tmpfs keeps in the audit file's last page.
    chain = "".join(
        f'[steps.s{i}]\nneeds = ["{"wait" if i == 0 else f"s{i - 1}"}"]\n'
        f'run = "touch {ran}/s{i}"\n'
        for i in range(40)
    )
    path = write_workflow(tmp_path, f"""
[workflow]
name = "full-disk"
concurrency = 2
[steps.wait]
run = "while [ ! -e {go} ]; do sleep 0.02; done"
[steps.long]
run = "sleep 300"
{chain}
[steps.cleanup]
needs = ["s39"]
if = "always"
run = "touch {ran}/cleanup"
""")
    with _tiny_disk(tmp_path / "disk") as disk:
        audit = disk / "audit.jsonl"
        run = console_process(
            "run", str(path), "--no-tui", "--audit", str(audit), "--grace", str(GRACE_S),
            env=console_env(tmp_path, STOP_MARKER=marker),
        )
        try:
            wait_for_record(audit, "step.started", "wait")
            wait_for_record(audit, "step.started", "long")
            _fill(disk)
            go.touch()
            out, err = run.communicate(timeout=STOP_BOUND_S + 10)
            recorded = records(audit)
        finally:
            run.kill()
    assert run.returncode == 1, (out, err)
    assert str(audit) in err and "disk full" in err
    assert "the run was stopped (fail closed)" in err
    assert f"not recorded in {audit}: " in err and "run.finished" in err.splitlines()[-1]
    assert "Traceback" not in err
    # Nothing ran that neither the trail nor the terminal shows; no cleanup ran.
    started = {r["step"] for r in recorded if r["type"] == "step.started"}
    missing = err.splitlines()[-1].split(f"not recorded in {audit}: ", 1)[1].split(", ")
    started |= {m.split()[1] for m in missing if m.startswith("step.started ")}
    assert {p.name for p in ran.iterdir()} <= started
    assert not (ran / "cleanup").exists()
    assert wait_for("the steps to be gone", lambda: not processes_with(marker), 10)
