"""A live run's control socket: `console approve` and friends from another terminal.

One JSON object per line each way. Who is asking comes from the kernel (SO_PEERCRED on
the connection), never from the request: a request's "user" or "uid" is ignored, and
USER/LOGNAME play no part. The socket file is mode 0666 so any local user can reach the
run; whether they may do anything is the run's own decision, made on that uid.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.errors import ConsoleError, ControlError
from console.run.actions import RunActions, Verdict
from console.run.runtime_dir import clear_socket_path, ensure_runtime_dir
from console.run.state import RunState

MAX_REQUEST_BYTES = 64 * 1024
SOCKET_MODE = 0o666
IDLE_TIMEOUT_S = 60.0
VIA = "socket"
OPS = ("status", "approve", "deny", "override", "cancel", "retry")

_PEERCRED_FORMAT = "3i"


@dataclass(frozen=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: Any) -> PeerCredentials:
    """The connecting process's pid, uid and gid, as the kernel recorded them at connect()."""
    raw = sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(_PEERCRED_FORMAT)
    )
    pid, uid, gid = struct.unpack(_PEERCRED_FORMAT, raw)
    return PeerCredentials(pid=pid, uid=uid, gid=gid)


def run_state_to_json(state: RunState) -> dict[str, Any]:
    """The run's state as plain JSON data: what the socket's `status` op returns."""
    data: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(state)))
    return data


def error_response(kind: str, message: str) -> dict[str, Any]:
    """A request the server could not act on (as opposed to a Verdict refusing it)."""
    return {"ok": False, "error": kind, "message": message}


class ControlServer:
    """Listens on `path` for one live run and forwards each request to its RunActions."""

    def __init__(
        self,
        actions: RunActions,
        path: Path,
        status: Callable[[], dict[str, Any]],
        *,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.actions = actions
        self.path = path
        self._status = status
        # A client silent this long is hung up on, so idle connections cannot pile up.
        self.idle_timeout_s = idle_timeout_s
        self._server: asyncio.AbstractServer | None = None
        self._inode: tuple[int, int] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False

    async def start(self) -> None:
        ensure_runtime_dir(self.path.parent)
        clear_socket_path(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            info = os.lstat(self.path)
            self._inode = (info.st_dev, info.st_ino)
            os.chmod(self.path, SOCKET_MODE)
            self._server = await asyncio.start_unix_server(
                self._serve_connection, sock=listener, limit=MAX_REQUEST_BYTES
            )
        except OSError as exc:
            listener.close()
            self._remove_socket_file()
            raise ControlError(
                f"cannot listen on control socket {self.path}: {exc.strerror or exc}"
            ) from exc

    async def close(self) -> None:
        """Stop listening, hang up on connected clients and remove the socket file."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5.0)
        if server is not None:
            await server.wait_closed()
        self._remove_socket_file()

    def _remove_socket_file(self) -> None:
        """Unlink the socket only if it is still the one we bound (never someone else's)."""
        if self._inode is None:
            return
        with contextlib.suppress(OSError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._inode:
                os.unlink(self.path)
        self._inode = None

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        self._writers.add(writer)
        try:
            if not self._closing:
                peer = peer_credentials(writer.get_extra_info("socket"))
                await self._converse(reader, writer, peer)
        except (ConnectionError, OSError):
            pass  # the client went away; nothing was acted on for a line we did not finish
        finally:
            if task is not None:
                self._connections.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: PeerCredentials
    ) -> None:
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout_s):
                    line = await reader.readline()
            except TimeoutError:
                return
            except ValueError:
                await _send(writer, error_response(
                    "too_long",
                    f"request longer than {MAX_REQUEST_BYTES // 1024} KiB; "
                    "send one JSON object per line",
                ))
                return
            if not line:
                return
            if not line.endswith(b"\n"):
                # The client closed its side mid-line: never act on a truncated request.
                await _send(writer, error_response(
                    "incomplete", "request ended without a newline; nothing was done"
                ))
                return
            await _send(writer, self.answer(line, peer.uid))

    def answer(self, line: bytes, uid: int) -> dict[str, Any]:
        """The response to one request line from a peer the kernel says is `uid`."""
        try:
            request = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return error_response("bad_json", f"request is not a JSON object: {exc}")
        if not isinstance(request, dict):
            return error_response("bad_json", "request is not a JSON object")
        try:
            return self._dispatch(request, uid)
        except _BadRequest as exc:
            return error_response("bad_request", str(exc))
        except ConsoleError as exc:
            return error_response("failed", exc.message)
        except Exception as exc:  # a bug in one request must not take the run's socket down
            return error_response("internal", f"internal error: {type(exc).__name__}: {exc}")

    def _dispatch(self, request: Mapping[str, Any], uid: int) -> dict[str, Any]:
        op = request.get("op")
        if op == "status":
            return {
                "ok": True,
                "message": f"status of run {self.actions.run_id}",
                "status": self._status(),
            }
        if op == "approve":
            step = _text(request, "step")
            return _verdict(self.actions.approve(step, uid, VIA, _optional_text(request)))
        if op == "deny":
            step = _text(request, "step")
            return _verdict(self.actions.deny(step, uid, VIA, _text(request, "reason")))
        if op == "override":
            step = _text(request, "step")
            return _verdict(self.actions.override(step, uid, VIA, _text(request, "reason")))
        if op == "cancel":
            if request.get("step") is None:
                return _verdict(self.actions.cancel_run(uid, VIA))
            return _verdict(self.actions.cancel_step(_text(request, "step"), uid, VIA))
        if op == "retry":
            return _verdict(self.actions.retry_step(_text(request, "step"), uid, VIA))
        if op is None:
            raise _BadRequest(f"request has no \"op\"; expected one of: {', '.join(OPS)}")
        return error_response("unknown_op", f"unknown op {op!r}; expected one of: {', '.join(OPS)}")


class _BadRequest(Exception):
    pass


def _text(request: Mapping[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value.strip():
        op = request.get("op")
        raise _BadRequest(f"{op} needs \"{key}\" as a non-empty string")
    return value


def _optional_text(request: Mapping[str, Any]) -> str | None:
    value = request.get("reason")
    if value is None:
        return None
    if not isinstance(value, str):
        raise _BadRequest("\"reason\" must be a string")
    return value or None


def _verdict(verdict: Verdict) -> dict[str, Any]:
    return {"ok": bool(verdict.ok), "message": verdict.message}


async def _send(writer: asyncio.StreamWriter, response: Mapping[str, Any]) -> None:
    writer.write(json.dumps(response, default=str).encode("utf-8") + b"\n")
    await writer.drain()
