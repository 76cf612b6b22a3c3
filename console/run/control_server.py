"""A live run's control socket: `console approve` and friends from another terminal.

One JSON object per line each way. Who is asking comes from the kernel (SO_PEERCRED on
the connection), never from the request: a request's "user" or "uid" is ignored, and
USER/LOGNAME play no part. The socket file is mode 0666 so any local user can reach the
run; whether they may do anything is the run's own decision, made on that uid.

The v1 ops (status and the actions) are answered here; protocol v2's ops (hello,
subscribe, log) by the `ExtraOps` the run host passes in (console/host/protocol.py).
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
from pathlib import Path
from typing import Any

from console.errors import ConsoleError, ControlError
from console.policy.verdict import Verdict
from console.run.actions import RunActions
from console.run.control_conn import (
    IDLE_TIMEOUT_S,
    MAX_REQUEST_BYTES,
    Connection,
    ExtraOps,
    PeerCredentials,
    RequestFault,
    error_response,
)
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

SOCKET_MODE = 0o666
VIA = "socket"
OPS = ("status", "approve", "deny", "override", "cancel", "retry")

_PEERCRED_FORMAT = "3i"
_TURN_AWAY_READ = 4096
_TOO_DEEP = "request is nested too deeply; send a flat JSON object"
# After the run has ended, streaming clients get this long to take their last frames.
STREAM_LINGER_S = 5.0

__all__ = [
    "IDLE_TIMEOUT_S",
    "MAX_REQUEST_BYTES",
    "OPS",
    "ControlServer",
    "PeerCredentials",
    "error_response",
    "peer_credentials",
    "run_state_to_json",
]


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
        extra_ops: ExtraOps | None = None,
    ) -> None:
        self.actions = actions
        self.path = path
        self._status = status
        self._extra = extra_ops
        self.ops = OPS + (extra_ops.names if extra_ops is not None else ())
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
        self._connections: dict[asyncio.Task[None], Connection | None] = {}
        self._closing = False
        self._linger_timer: asyncio.TimerHandle | None = None

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
        """Stop listening, hang up on connected clients and remove the socket file.

        Streaming clients (a subscription, a followed log) stay connected so that the run's
        last records reach them: `close_streams()` ends them once the run has ended, and at
        the latest STREAM_LINGER_S from now they are hung up on all the same.
        """
        self._closing = True
        self._stop_listening()
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        waiting = []
        for task, conn in list(self._connections.items()):
            if conn is not None and conn.streaming:
                continue
            if conn is not None:
                conn.writer.close()
            waiting.append(task)
        if waiting:
            await asyncio.wait(waiting, timeout=5.0)
        if self._connections and self._loop is not None and self._linger_timer is None:
            self._linger_timer = self._loop.call_later(STREAM_LINGER_S, self._hang_up_all)
        self._log.flush()
        self._remove_socket_file()

    async def close_streams(self, timeout_s: float = STREAM_LINGER_S) -> None:
        """The run has ended: end every stream (each gets its last frames), then hang up on
        whoever is still connected. Call after `close()` and the run's last record."""
        if self._extra is not None:
            self._extra.end()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=timeout_s)
        self._hang_up_all()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=1.0)
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None

    def _hang_up_all(self) -> None:
        self._linger_timer = None
        for conn in self._connections.values():
            if conn is not None:
                conn.writer.transport.abort()

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
        self._connections[task] = None
        task.add_done_callback(self._forget)
        return True

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)

    # --- serving -----------------------------------------------------------------------

    async def _serve_connection(self, sock: socket.socket, peer: PeerCredentials) -> None:
        """One client, start to end. Nothing raised here may reach asyncio's handler (which
        would print a traceback on the run's terminal): errors end this connection only."""
        conn: Connection | None = None
        try:
            if self._closing:
                return
            reader, writer = await asyncio.open_unix_connection(
                sock=sock, limit=MAX_REQUEST_BYTES
            )
            conn = Connection(reader, writer, peer, self.idle_timeout_s)
            task = asyncio.current_task()
            if task is not None and task in self._connections:
                self._connections[task] = conn
            if not self._closing:
                await self._converse(conn)
        except (ConnectionError, OSError, TimeoutError):
            pass  # the client went away; nothing was acted on for a line we did not finish
        except Exception as exc:
            self._log.internal_error(exc)
        finally:
            self.count.release(peer.uid)
            if conn is None:
                sock.close()
            else:
                conn.writer.close()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.idle_timeout_s):
                        await conn.writer.wait_closed()

    async def _converse(self, conn: Connection) -> None:
        while not self._closing:
            try:
                line = await conn.read_request()
            except RequestFault as fault:
                await conn.send(error_response(fault.kind, fault.message))
                await conn.hang_up_after_reading()
                return
            if line is None:
                return
            request, refusal = self._parse(line)
            if request is None:
                await conn.send(refusal)
                continue
            if self._extra is not None and request.get("op") in self._extra.names:
                try:
                    if not await self._extra.serve(request, conn):
                        return
                except RequestFault as fault:
                    await conn.send(error_response(fault.kind, fault.message))
                except OSError:  # the client went away (or never read): end the connection
                    raise
                except Exception as exc:  # a bug in one op: say so, end this connection only
                    message = f"internal error: {type(exc).__name__}: {exc}"
                    await conn.send(error_response("internal", message))
                    return
                finally:
                    conn.streaming = False
                continue
            await conn.send(self._act(request, conn.peer.uid))

    def answer(self, line: bytes, uid: int) -> dict[str, Any]:
        """The response to one v1 request line from a peer the kernel says is `uid`."""
        request, refusal = self._parse(line)
        if request is None:
            return refusal
        return self._act(request, uid)

    def _parse(self, line: bytes) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(the request as a JSON object, {}), or (None, the error answer saying why not)."""
        try:
            request = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return None, error_response("bad_json", f"request is not a JSON object: {exc}")
        except ValueError:  # an integer of more digits than int() converts
            return None, error_response(
                "bad_request",
                f"request has a number of more than {sys.get_int_max_str_digits()} digits",
            )
        except RecursionError:
            return None, error_response("bad_request", _TOO_DEEP)
        if not isinstance(request, dict):
            return None, error_response("bad_json", "request is not a JSON object")
        return request, {}

    def _act(self, request: Mapping[str, Any], uid: int) -> dict[str, Any]:
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
        expected = ", ".join(self.ops)
        if op is None:
            raise _BadRequest(f"request has no \"op\"; expected one of: {expected}")
        return error_response("unknown_op", f"unknown op {op!r}; expected one of: {expected}")


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
