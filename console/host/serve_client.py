"""The client side of `console serve`'s socket: is a service here, and submit a run to it."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from console.errors import ConsoleError
from console.host.serve_config import ServeConfig, ServeConfigError, find_serve_config

SUBMIT_TIMEOUT_S = 60.0  # the service answers once the run host has started
MAX_ANSWER_BYTES = 1024 * 1024


class ServiceError(ConsoleError):
    """The service could not be asked, or refused."""


def served_runtime_dir() -> Path | None:
    """Where the service's runs listen, if this host has a service config; else None."""
    try:
        config = find_serve_config()
    except ServeConfigError:
        return None
    return None if config is None else config.runtime_dir


def reachable(path: Path) -> bool:
    """True if something listens on the service socket `path`. A socket we may not connect
    to counts: the service is there, and `ask` says who may use it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(str(path))
        except PermissionError:
            return True
        except OSError:
            return False
    return True


def ask(config: ServeConfig, request: Mapping[str, Any],
        timeout_s: float = SUBMIT_TIMEOUT_S) -> dict[str, Any]:
    """One request, one answer. Raises ServiceError when the service cannot be reached, or
    its answer is not `ok` (with the service's message)."""
    path = config.socket
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps(dict(request)).encode("utf-8") + b"\n")
            data = b""
            while not data.endswith(b"\n") and len(data) < MAX_ANSWER_BYTES:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise ServiceError(f"console serve on {path} did not answer within "
                               f"{timeout_s:g}s") from None
        except PermissionError:
            raise ServiceError(
                f"you may not connect to console serve on {path}: only members of "
                + ", ".join(f"@{g}" for g in config.groups)
                + " may submit runs (an admin adds you: usermod -aG GROUP USER, then log in "
                "again); --local runs as yourself"
            ) from None
        except OSError as exc:
            raise ServiceError(
                f"cannot reach console serve on {path}: {exc.strerror or exc} "
                "(is it running? `systemctl status console-serve`; --local runs as yourself)"
            ) from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise ServiceError(f"console serve on {path} closed the connection without "
                           "answering") from None
    if not isinstance(answer, dict):
        raise ServiceError(f"console serve on {path} sent something that is not an answer")
    if answer.get("ok") is not True:
        raise ServiceError(f"the service refused: {answer.get('message', answer)}")
    return answer
