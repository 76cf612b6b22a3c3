"""The bare `console` command and stray OS errors reach the person as messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_bare_console_without_a_workflow_says_what_to_do(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "console"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "no workflow here" in out.stderr
    assert "console init" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_subcommand_is_a_usage_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "console", "frobnicate"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_the_config_files_audit_path_is_where_audit_commands_look(tmp_path: Path) -> None:
    import os

    from console.audit.log import AuditLog

    trail = tmp_path / "elsewhere" / "trail.jsonl"
    with AuditLog(trail) as log:
        record = log.append({"run": "r", "type": "step.ready", "step": "a", "data": {}})
    config = tmp_path / "config" / "console" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'audit = "{trail}"\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run(
        [sys.executable, "-m", "console", "audit", "head"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"1:{record['hash']}"
