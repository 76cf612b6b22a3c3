"""Where console keeps its files. Read from the environment once, passed down as values."""

from __future__ import annotations

import os
from pathlib import Path


def state_home() -> Path:
    """`$XDG_STATE_HOME/console` (default `~/.local/state/console`): audit file and run logs."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "console"


def config_file() -> Path:
    """`$XDG_CONFIG_HOME/console/config.toml` (default `~/.config/console/config.toml`)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "console" / "config.toml"


def default_audit_path() -> Path:
    return state_home() / "audit.jsonl"


def runs_dir() -> Path:
    """Per-run directories (`runs/<run-id>/`) with each step attempt's log file."""
    return state_home() / "runs"


def runtime_dir() -> Path:
    """Control sockets and lock files of live runs: `$CONSOLE_RUNTIME_DIR` or one per host."""
    return Path(os.environ.get("CONSOLE_RUNTIME_DIR") or "/tmp/console-runs")


def control_socket_path(run_id: str) -> Path:
    return runtime_dir() / f"{run_id}.sock"
