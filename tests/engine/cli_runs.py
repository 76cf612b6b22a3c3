"""Start the real `console` CLI as a process and wait on what it writes (no fixed sleeps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def console_process(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "console", *args],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def console_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        CONSOLE_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    env.update(extra)
    return env


def records(audit: Path) -> list[dict[str, Any]]:
    """The audit file's complete, parseable lines (a line being written is left out)."""
    if not audit.exists():
        return []
    out = []
    for line in audit.read_bytes().split(b"\n"):
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def wait_for(what: str, check: Callable[[], T | None], seconds: float = 30.0) -> T:
    """Poll `check` (backing off to 0.1 s) until it returns something true; return that."""
    deadline = time.monotonic() + seconds
    pause = 0.01
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def wait_for_record(
    audit: Path, kind: str, step: str | None = None, seconds: float = 30.0
) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for record in records(audit):
            if record.get("type") == kind and (step is None or record.get("step") == step):
                return record
        return None

    result: dict[str, Any] = wait_for(f"{kind} {step or ''} in {audit}", found, seconds)
    return result


def processes_with(marker: str, steps_only: bool = False) -> list[int]:
    """Live processes whose environment carries `marker` (zombies are not alive): the
    console, its watchdog and its steps, or (`steps_only`, CONSOLE_STEP set) the steps and
    their children alone."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if steps_only and b"CONSOLE_STEP=" not in environ:
            continue
        if needle in environ and ") Z " not in stat:
            found.append(int(entry.name))
    return found
