"""Where console keeps its files. Read from the environment once, passed down as values."""

from __future__ import annotations

import os
from pathlib import Path


def state_home() -> Path:
    """`$XDG_STATE_HOME/console` (default `~/.local/state/console`): audit file and run logs.

    Only a path: whoever writes there creates it with `make_private_dirs` (mode 0700).
    """
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


def make_private_dirs(path: Path) -> None:
    """Create the directory `path`, and any missing parents, with mode 0700.

    The XDG base directory spec asks for 0700 on the directories it creates, and only the
    user should be able to list, add or remove run logs and audit files. Directories that
    already exist are left as they are (`Path.mkdir(parents=True)` would give the parents
    the umask's mode, usually 0755). Raises OSError as `os.mkdir` does.
    """
    try:
        os.mkdir(path, 0o700)
    except FileNotFoundError:
        if path.parent == path:
            raise
        make_private_dirs(path.parent)
        make_private_dirs(path)
    except FileExistsError:
        if not path.is_dir():
            raise


def control_socket_path(run_id: str) -> Path:
    return runtime_dir() / f"{run_id}.sock"
