"""Where team mode's config is: cheap to ask, so `console run` pays nothing without one."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CONFIG = Path("/etc/console/serve.toml")
CONFIG_ENV = "CONSOLE_SERVE_CONFIG"
DEFAULT_RUNTIME = "/run/console/runs"
DEFAULT_AUDIT = "/var/log/console/audit.jsonl"


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def may_submit(local: bool, service: bool) -> bool:
    """Whether `console run` should look for a service at all (it has a config file)."""
    return not local and (service or config_path().exists())


def served_paths() -> tuple[Path, Path] | None:
    """The service's runtime directory (its runs' sockets) and audit file, read from its
    config without validating it (`console serve` does that); None without a config."""
    import tomllib  # only here: `console run` without a service never parses TOML config

    try:
        raw = tomllib.loads(config_path().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    runtime, audit = raw.get("runtime_dir", DEFAULT_RUNTIME), raw.get("audit", DEFAULT_AUDIT)
    if not isinstance(runtime, str) or not isinstance(audit, str):
        return None
    return Path(runtime), Path(audit)


def served_socket(run_id: str, personal_runtime: Path) -> Path | None:
    """The control socket of run `run_id` if the service hosts it (and not the caller)."""
    if (personal_runtime / f"{run_id}.sock").exists():
        return None
    served = served_paths()
    if served is None:
        return None
    path = served[0] / f"{run_id}.sock"
    return path if path.exists() else None
