"""The other end of a run's control socket: one request, one answer, plain blocking socket.

The client sends no identity: the server reads it from the connection (SO_PEERCRED).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from console.errors import ControlError
from console.paths import control_socket_path

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_LIST_HINT = "`console status` lists live runs"
# A run answers "busy" when a connection limit is reached; ask again after these pauses.
_BUSY_FIRST_PAUSE_S = 0.05
_BUSY_MAX_PAUSE_S = 0.5


def request(
    run_id: str,
    payload: Mapping[str, Any],
    timeout: float = 10.0,
    *,
    socket_path: Path | None = None,
) -> dict[str, Any]:
    """Send `payload` to run `run_id`'s control socket and return its JSON answer.

    `socket_path` defaults to the run's socket in this host's runtime directory.
    Raises ControlError with what to do when the run cannot be reached or answers badly.
    """
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ControlError(
            f"{run_id!r} is not a run id (letters, digits, '.', '_' and '-'); {_LIST_HINT}"
        )
    path = socket_path if socket_path is not None else control_socket_path(run_id)
    try:
        os.stat(path)
    except PermissionError as exc:
        raise ControlError(
            f"you may not reach {path}: a directory on the way is closed to you ({exc.strerror}); "
            "ask the run's owner to use a runtime directory others can enter "
            "(CONSOLE_RUNTIME_DIR), e.g. the shared /tmp/console-runs"
        ) from exc
    except OSError:
        pass
    if not path.exists():
        raise ControlError(
            f"run {run_id} has no control socket in {path.parent}: it finished, or runs on "
            f"another host; {_LIST_HINT}"
        )
    deadline = time.monotonic() + timeout
    line = json.dumps(dict(payload)).encode("utf-8") + b"\n"
    pause = _BUSY_FIRST_PAUSE_S
    while True:
        answer = _ask_once(run_id, path, line, timeout, deadline)
        if answer is not None and answer.get("error") != "busy":
            return answer
        # Busy: over a connection limit, or the backlog is full. Try again while time is left.
        if time.monotonic() + pause >= deadline:
            why = str(answer.get("message", "")) if answer is not None else "its backlog is full"
            raise ControlError(
                f"run {run_id} is too busy to answer on {path} ({why}); try again, or see "
                f"`console status {run_id}`"
            )
        time.sleep(pause)
        pause = min(pause * 2, _BUSY_MAX_PAUSE_S)


def _ask_once(
    run_id: str, path: Path, line: bytes, timeout: float, deadline: float
) -> dict[str, Any] | None:
    """One connection, one request, one answer; None if the listener's backlog is full."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                conn.connect(str(path))
            except BlockingIOError:
                return None  # EAGAIN: the backlog is full
            # The run may have answered (busy) and hung up before reading: read it anyway.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.sendall(line)
            raw = _read_line(conn, deadline)
        except TimeoutError as exc:
            raise ControlError(
                f"run {run_id} did not answer within {timeout:g}s on {path}; it may be busy: "
                f"try again, or see `console status {run_id}`"
            ) from exc
        except OSError as exc:
            raise _connection_error(run_id, path, exc) from exc
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError(f"run {run_id} answered with something that is not JSON: {exc}") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise ControlError(f"run {run_id} answered with an unexpected message: {raw[:200]!r}")
    return answer


def _read_line(conn: socket.socket, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        conn.settimeout(remaining)
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionAbortedError(errno.ECONNABORTED, "closed without answering")
        newline = chunk.find(b"\n")
        if newline >= 0:
            chunks.append(chunk[:newline])
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ControlError(f"answer longer than {MAX_RESPONSE_BYTES} bytes; giving up")


def _connection_error(run_id: str, path: Path, exc: OSError) -> ControlError:
    if isinstance(exc, ConnectionRefusedError):
        return ControlError(
            f"run {run_id}'s control socket {path} refuses connections: the run ended "
            f"without removing it (stale socket); {_LIST_HINT}"
        )
    if isinstance(exc, FileNotFoundError):
        return ControlError(
            f"run {run_id} has no control socket in {path.parent}: it finished, or runs on "
            f"another host; {_LIST_HINT}"
        )
    if isinstance(exc, PermissionError):
        return ControlError(
            f"not allowed to connect to {path} (permission denied); ask the run's owner to "
            "check the runtime directory's permissions"
        )
    if isinstance(exc, ConnectionAbortedError | ConnectionResetError | BrokenPipeError):
        return ControlError(
            f"run {run_id} closed the connection without answering (it may have just "
            f"finished); {_LIST_HINT}"
        )
    return ControlError(f"cannot talk to run {run_id} on {path}: {exc.strerror or exc}")
