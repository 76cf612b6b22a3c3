"""`console run --no-tui` as a real process: an audit path unfit for the trail stops the run
before it starts, with one clear message; a fresh state directory is private."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

WORKFLOW = """\
[workflow]
name = "tiny"

[steps.hello]
run = ["true"]
"""


def run_console(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    workflow = tmp_path / "wf.toml"
    workflow.write_text(WORKFLOW)
    return subprocess.run(
        [sys.executable, "-m", "console", "run", "--no-tui", *args, str(workflow)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_dangling_link_as_audit_stops_the_run_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    target = tmp_path / "elsewhere" / "audit.jsonl"
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    result = run_console(tmp_path, "--audit", str(link))
    assert result.returncode == 1
    assert result.stderr.startswith(f"console: {link} is a symbolic link to {target}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "started" not in result.stdout
    assert not target.exists()
    assert not (tmp_path / "state" / "console" / "runs").exists()  # the run never began


def test_an_audit_file_everyone_can_write_stops_the_run(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    audit.write_bytes(b"")
    audit.chmod(0o666)
    result = run_console(tmp_path, "--audit", str(audit))
    assert result.returncode == 1
    assert f"{audit} can be written by group and others (mode 0666)" in result.stderr
    assert f"chmod 600 {audit}" in result.stderr
    assert audit.read_bytes() == b""
    audit.chmod(0o600)
    assert run_console(tmp_path, "--audit", str(audit)).returncode == 0
    assert audit.read_bytes().count(b"\n") > 2


def test_a_fresh_default_state_directory_is_private(tmp_path: Path) -> None:
    state = tmp_path / "fresh" / "state"
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    result = run_console(tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    audit = state / "console" / "audit.jsonl"
    assert f"({audit})" in result.stdout
    assert mode_of(state) == 0o700
    assert mode_of(state / "console") == 0o700
    assert mode_of(audit) == 0o600
