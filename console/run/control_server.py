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
import errno
import inspect
import json
import os
import socket
import struct
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.errors import ConsoleError, ControlError
from console.policy.verdict import Verdict
from console.run.actions import RunActions
from console.run.control_limits import (
    ACCEPT_BATCH,
    ACCEPT_PAUSE_S,
    FD_RESERVE,
    LISTEN_BACKLOG,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_UID,
    BurstLog,
    ConnectionCount,
    busy_response,
    warn_on_stderr,
)
from console.run.fd_limits import free_fds
from console.run.runtime_dir import clear_socket_path, ensure_runtime_dir
from console.run.state import RunState

MAX_REQUEST_BYTES = 64 * 1024
SOCKET_MODE = 0o666
IDLE_TIMEOUT_S = 60.0
VIA = "socket"
OPS = ("status", "approve", "deny", "override", "cancel", "retry")

_PEERCRED_FORMAT = "3i"
_TURN_AWAY_READ = 4096
_TOO_DEEP = "request is nested too deeply; send a flat JSON object"


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
    """Listens on `path` for one live run and forwards each request to its RunActions.

    The server runs its own accept loop (not asyncio's) so it decides, per connection,
    before a task exists: over a limit, one `busy` line and the connection is closed; short
    of descriptors, it stops accepting for a moment. Nothing it turns away, and nothing a
    connection raises, prints a traceback: bursts are reported by a BurstLog, one line each.
    """

    def __init__(
        self,
        actions: RunActions,
        path: Path,
        status: Callable[..., dict[str, Any]],  # may take `for_uid`: see _status_for
        *,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_per_uid: int = MAX_CONNECTIONS_PER_UID,
        max_connections: int = MAX_CONNECTIONS,
        fd_reserve: int = FD_RESERVE,
        warn: Callable[[str], None] = warn_on_stderr,
    ) -> None:
        self.actions = actions
        self.path = path
        self._status = status
        # A client silent this long is hung up on, so idle connections cannot pile up.
        self.idle_timeout_s = idle_timeout_s
        self.fd_reserve = fd_reserve
        self.count = ConnectionCount(max_per_uid, max_connections)
        self._log = BurstLog(warn, self.count, fd_reserve)
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False
        self._resume_timer: asyncio.TimerHandle | None = None
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
            listener.listen(LISTEN_BACKLOG)
            listener.setblocking(False)
        except OSError as exc:
            listener.close()
            self._remove_socket_file()
            raise ControlError(
                f"cannot listen on control socket {self.path}: {exc.strerror or exc}"
            ) from exc
        self._loop = asyncio.get_running_loop()
        self._listener = listener
        self._listen()

    async def close(self) -> None:
        """Stop listening, hang up on connected clients and remove the socket file."""
        self._closing = True
        self._stop_listening()
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        for writer in list(self._writers):
            writer.close()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5.0)
        self._log.flush()
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

    # --- accepting -------------------------------------------------------------------

    def _listen(self) -> None:
        if self._accepting or self._closing or self._listener is None or self._loop is None:
            return
        self._loop.add_reader(self._listener.fileno(), self._accept_ready)
        self._accepting = True

    def _stop_listening(self) -> None:
        if self._accepting and self._listener is not None and self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
        self._accepting = False

    def _pause(self) -> None:
        """Accept nothing for ACCEPT_PAUSE_S (connections wait in the kernel's backlog)."""
        self._stop_listening()
        if self._resume_timer is None and self._loop is not None:
            self._resume_timer = self._loop.call_later(ACCEPT_PAUSE_S, self._resume)

    def _resume(self) -> None:
        self._resume_timer = None
        self._listen()

    def _accept_ready(self) -> None:
        """The listener is readable: take up to ACCEPT_BATCH connections off its backlog."""
        listener = self._listener
        if listener is None:
            return
        free = free_fds() if self.fd_reserve > 0 else None
        for _ in range(ACCEPT_BATCH):
            if free is not None and free <= self.fd_reserve:
                self._log.reserve_reached(free)
                self._pause()
                return
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue  # the client gave up before we got to it
                # EMFILE, ENFILE, ENOBUFS, ENOMEM: out of a resource. Wait, do not spin.
                self._log.accept_failed(exc)
                self._pause()
                return
            if self._admit(conn) and free is not None:
                free -= 1

    def _admit(self, conn: socket.socket) -> bool:
        """Serve `conn`, or turn it away with one `busy` line; True if it is being served."""
        try:
            conn.setblocking(False)
            peer = peer_credentials(conn)
        except OSError:
            conn.close()
            return False
        hit = self.count.limit_hit(peer.uid)
        if hit is not None:
            message = self.count.busy_message(self.actions.run_id, peer.uid, hit)
            _turn_away(conn, busy_response(message))
            self._log.refused(peer.uid, hit)
            return False
        assert self._loop is not None
        self.count.admit(peer.uid)
        task = self._loop.create_task(self._serve_connection(conn, peer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        return True

    # --- serving -----------------------------------------------------------------------

    async def _serve_connection(self, conn: socket.socket, peer: PeerCredentials) -> None:
        """One client, start to end. Nothing raised here may reach asyncio's handler (which
        would print a traceback on the run's terminal): errors end this connection only."""
        writer: asyncio.StreamWriter | None = None
        try:
            if self._closing:
                return
            reader, writer = await asyncio.open_unix_connection(
                sock=conn, limit=MAX_REQUEST_BYTES
            )
            self._writers.add(writer)
            if not self._closing:
                await self._converse(reader, writer, peer)
        except (ConnectionError, OSError, TimeoutError):
            pass  # the client went away; nothing was acted on for a line we did not finish
        except Exception as exc:
            self._log.internal_error(exc)
        finally:
            self.count.release(peer.uid)
            if writer is None:
                conn.close()
            else:
                self._writers.discard(writer)
                writer.close()
                with contextlib.suppress(Exception):
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
                await self._send(writer, error_response(
                    "too_long",
                    f"request longer than {MAX_REQUEST_BYTES // 1024} KiB; "
                    "send one JSON object per line",
                ))
                return
            if not line:
                return
            if not line.endswith(b"\n"):
                # The client closed its side mid-line: never act on a truncated request.
                await self._send(writer, error_response(
                    "incomplete", "request ended without a newline; nothing was done"
                ))
                return
            await self._send(writer, self.answer(line, peer.uid))

    async def _send(self, writer: asyncio.StreamWriter, response: Mapping[str, Any]) -> None:
        """Write one answer; a client that does not read it within the idle timeout is
        hung up on (TimeoutError), so it cannot hold a connection by never reading."""
        writer.write(json.dumps(response, default=str).encode("utf-8") + b"\n")
        async with asyncio.timeout(self.idle_timeout_s):
            await writer.drain()

    def answer(self, line: bytes, uid: int) -> dict[str, Any]:
        """The response to one request line from a peer the kernel says is `uid`."""
        try:
            request = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return error_response("bad_json", f"request is not a JSON object: {exc}")
        except ValueError:  # an integer of more digits than int() converts
            return error_response(
                "bad_request",
                f"request has a number of more than {sys.get_int_max_str_digits()} digits",
            )
        except RecursionError:
            return error_response("bad_request", _TOO_DEEP)
        if not isinstance(request, dict):
            return error_response("bad_json", "request is not a JSON object")
        try:
            return self._dispatch(request, uid)
        except _BadRequest as exc:
            return error_response("bad_request", str(exc))
        except ConsoleError as exc:
            return error_response("failed", exc.message)
        except RecursionError:  # a value nested just shallow enough to parse
            return error_response("bad_request", _TOO_DEEP)
        except Exception as exc:  # a bug in one request must not take the run's socket down
            return error_response("internal", f"internal error: {type(exc).__name__}: {exc}")

    def _dispatch(self, request: Mapping[str, Any], uid: int) -> dict[str, Any]:
        op = request.get("op")
        if op == "status":
            return {
                "ok": True,
                "message": f"status of run {self.actions.run_id}",
                "status": _status_for(self._status, uid),
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


def _status_for(status: Callable[..., dict[str, Any]], uid: int) -> dict[str, Any]:
    """The run's status as the peer `uid` sees it: a status callable that takes `for_uid`
    is given it (the gates then say whether that person may approve), others are called
    bare."""
    try:
        takes_uid = "for_uid" in inspect.signature(status).parameters
    except (TypeError, ValueError):
        takes_uid = False
    return status(for_uid=uid) if takes_uid else status()


def _verdict(verdict: Verdict) -> dict[str, Any]:
    return {"ok": bool(verdict.ok), "message": verdict.message}


def _turn_away(conn: socket.socket, response: Mapping[str, Any]) -> None:
    """Answer `response` on a connection we will not serve, and close it at once."""
    with contextlib.suppress(OSError):
        conn.send(json.dumps(response).encode("utf-8") + b"\n")
    with contextlib.suppress(OSError):
        # Read what the client already sent: closing on unread data resets the
        # connection, and the client should see our answer and a clean end instead.
        conn.recv(_TURN_AWAY_READ)
    conn.close()
