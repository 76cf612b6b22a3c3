"""The person's settings: `$XDG_CONFIG_HOME/console/config.toml`.

```toml
theme = "high-contrast"          # what `t` last chose, or --theme's default
audit = "~/audit/console.jsonl"  # default audit file (a relative path is relative to this file)
bell = false                     # no terminal bell when a gate waits on you or a step fails
```
Other keys are left alone: `save_theme` rewrites only `theme`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.errors import ConsoleError
from console.paths import config_file, default_audit_path


class ConfigError(ConsoleError):
    """The config file cannot be read, parsed or written."""


@dataclass(frozen=True)
class Config:
    theme: str | None = None
    audit_path: Path | None = None
    bell: bool = True
    source: Path | None = None  # the file these settings came from, for error messages

    @classmethod
    def load(cls, path: Path | None = None) -> Config:
        """Settings from `path` (default: `console.paths.config_file()`); a missing file
        gives the defaults."""
        where = path if path is not None else config_file()
        raw = _read(where)
        if raw is None:
            return cls(source=where)
        theme = raw.get("theme")
        if theme is not None and (not isinstance(theme, str) or not theme):
            raise ConfigError(f"{where}: key 'theme' must be a theme name, e.g. theme = \"dark\"")
        audit = raw.get("audit")
        audit_path: Path | None = None
        if audit is not None:
            if not isinstance(audit, str) or not audit:
                raise ConfigError(
                    f"{where}: key 'audit' must be a file path, e.g. audit = \"~/audit.jsonl\""
                )
            audit_path = Path(audit).expanduser()
            if not audit_path.is_absolute():
                audit_path = where.parent / audit_path
        bell = raw.get("bell", True)
        if not isinstance(bell, bool):
            raise ConfigError(f"{where}: key 'bell' must be true or false, e.g. bell = false")
        return cls(theme=theme, audit_path=audit_path, bell=bell, source=where)


def audit_path(cli_audit: str | None) -> Path:
    """The audit file: `--audit`, else the config file's `audit`, else the XDG default."""
    if cli_audit:  # absolute, so a run host (whose working directory is /) finds it too
        return Path(os.path.abspath(Path(cli_audit).expanduser()))
    return Config.load().audit_path or default_audit_path()


def save_theme(name: str, path: Path | None = None) -> None:
    """Record `name` as the theme, keeping every other key of the file as it was.

    The new file is written beside the old one and renamed over it, so a crash leaves
    either the old file or the new one, never half of one.
    """
    import tomli_w

    where = path if path is not None else config_file()
    raw = _read(where) or {}
    raw["theme"] = name
    _write_atomically(where, tomli_w.dumps(raw).encode("utf-8"))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from exc
    import tomllib  # only with a config file: most runs have none and parse no TOML here

    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the config file is not UTF-8 text ({exc.reason})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc} — fix or remove the file") from exc


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        import tempfile  # only for saving: not on every start-up

        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_name, mode)
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the config file: {exc.strerror or exc}") from exc
