"""The systemd units that ship in the package (console/host/units/), filled in from the
service's config: `console serve --install-unit` prints them or writes them."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from importlib import resources
from pathlib import Path

from console.host.serve_config import ServeConfig

UNIT_NAMES = ("console-serve.socket", "console-serve.service")
_MANAGED = {"RuntimeDirectory": Path("/run"), "StateDirectory": Path("/var/lib"),
            "LogsDirectory": Path("/var/log")}


def _managed_name(path: Path, base: Path) -> str:
    """`path` relative to `base`, for systemd's *Directory= settings; '' if not under it."""
    return str(path.relative_to(base)) if path.is_relative_to(base) and path != base else ""


def exec_start() -> str:
    """How systemd starts console: the installed script, else this interpreter."""
    script = shutil.which("console")
    return shlex.quote(script) if script else f"{shlex.quote(sys.executable)} -m console"


def render_units(config: ServeConfig, config_path: Path) -> dict[str, str]:
    values = {
        "user": config.user, "group": config.group, "socket": str(config.socket),
        "config": shlex.quote(str(config_path)), "exec_start": exec_start(),
        "state_dir": str(config.state_dir), "audit_dir": str(config.audit.parent),
        "runtime_dir": str(config.runtime_dir),
        "runtime_name": _managed_name(config.runtime_dir, _MANAGED["RuntimeDirectory"]),
        "state_name": _managed_name(config.state_dir, _MANAGED["StateDirectory"]),
        "logs_name": _managed_name(config.audit.parent, _MANAGED["LogsDirectory"]),
    }
    units = {}
    for name in UNIT_NAMES:
        text = resources.files("console.host").joinpath("units", name).read_text("utf-8")
        filled = text.format(**values)
        # A directory outside systemd's own trees is not managed by it: leave it to root.
        empty = [key for key in _MANAGED if values[_key(key)] == ""]
        units[name] = "".join(
            line for line in filled.splitlines(keepends=True)
            if not any(re.match(rf"{key}\w*=", line) for key in empty)
        )
    return units


def _key(setting: str) -> str:
    return {"RuntimeDirectory": "runtime_name", "StateDirectory": "state_name",
            "LogsDirectory": "logs_name"}[setting]


def write_units(units: dict[str, str], directory: Path) -> list[Path]:
    written = []
    for name, text in units.items():
        path = directory / name
        path.write_text(text)
        path.chmod(0o644)
        written.append(path)
    return written
