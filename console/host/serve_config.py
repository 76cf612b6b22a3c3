"""Team mode's settings: `/etc/console/serve.toml` (or `$CONSOLE_SERVE_CONFIG`).

One file, read by the service and by every client on the host (it holds no secret: the
credentials live in their own file, readable only by the service user).

```toml
user = "console"                          # the service user: runs the steps, writes the audit
groups = ["deployers"]                    # who may submit; the first owns socket and audit
workflows = ["/etc/console/workflows"]    # the only directories a submitted workflow may be in
socket = "/run/console/serve.sock"        # in a root-owned directory
runtime_dir = "/run/console/runs"         # the run hosts' control sockets and locks
state_dir = "/var/lib/console"            # run directories (step logs)
audit = "/var/log/console/audit.jsonl"    # the host-wide trail, 0640
credentials = "/etc/console/credentials.env"   # KEY=VALUE lines, 0600 of the service user
syslog_socket = "/dev/log"                # where the chain head is sent (journald or syslog)
journal_file = "/var/log/syslog"          # where syslog writes it, for `audit verify`;
                                          # without it, verify asks journalctl
head_interval = "5m"                      # the head is also sent this often
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from console.errors import ConsoleError
from console.host.serve_paths import CONFIG_ENV, DEFAULT_AUDIT, DEFAULT_RUNTIME, config_path
from console.workflow.spec import parse_duration


class ServeConfigError(ConsoleError):
    """The service's config file cannot be read or is wrong."""


def _absolute(value: object) -> object:
    if isinstance(value, str) and not Path(value).is_absolute():
        raise ValueError(f"{value!r} is not an absolute path (start it with /)")
    return value


def _seconds(value: object) -> float:
    return parse_duration(value)


AbsPath = Annotated[Path, BeforeValidator(_absolute)]


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = "console"
    groups: list[str] = Field(min_length=1)
    workflows: list[AbsPath] = Field(min_length=1)
    socket: AbsPath = Path("/run/console/serve.sock")
    runtime_dir: AbsPath = Path(DEFAULT_RUNTIME)
    state_dir: AbsPath = Path("/var/lib/console")
    audit: AbsPath = Path(DEFAULT_AUDIT)
    credentials: AbsPath | None = None
    syslog_socket: AbsPath = Path("/dev/log")
    journal_file: AbsPath | None = None
    head_interval: Annotated[float, BeforeValidator(_seconds)] = 300.0

    @property
    def group(self) -> str:
        """The group that owns the socket and the audit file (may connect, may read)."""
        return self.groups[0]

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"


def load_serve_config(path: Path | None = None) -> ServeConfig:
    """The config at `path` (default: `config_path()`). Raises ServeConfigError, naming the
    file and the key, when it is missing, unreadable or wrong."""
    where = path if path is not None else config_path()
    try:
        raw: dict[str, Any] = tomllib.loads(where.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ServeConfigError(
            f"{where}: no such file — write the service's config there (see docs/team-mode.md)"
            f", or name another with --config or ${CONFIG_ENV}"
        ) from None
    except OSError as exc:
        raise ServeConfigError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ServeConfigError(f"{where}: not valid TOML: {exc}") from None
    try:
        return ServeConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {_short(err)}"
            for err in exc.errors()
        )
        raise ServeConfigError(f"{where}: {problems}") from None


def _short(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (a typo?)"
    message = str(err["msg"])
    return message.removeprefix("Value error, ")


def find_serve_config() -> ServeConfig | None:
    """The config if this host has one; None if there is no file (no team mode here)."""
    path = config_path()
    if not path.exists():
        return None
    return load_serve_config(path)
