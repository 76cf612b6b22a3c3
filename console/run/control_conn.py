"""One client of a run's control socket: who it is, its request lines, the frames it is sent.

Requests are read as lines of at most MAX_REQUEST_BYTES; a line that is longer, a line the
client never finishes (it closed its side, or went silent), ends the connection with an
error that says so, and nothing is acted on. Ops beyond the v1 set (protocol v2: hello,
subscribe, log) are answered by an `ExtraOps` from a layer above (console/host/protocol.py),
which gets the Connection to write its frames on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

MAX_REQUEST_BYTES = 64 * 1024
IDLE_TIMEOUT_S = 60.0
# How long a refused client may go on sending before it is hung up on (see hang_up_after_reading).
HANG_UP_READ_S = 1.0
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int


class RequestFault(Exception):
    """The client's input cannot become a request: answer `kind` and close the connection."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def error_response(kind: str, message: str) -> dict[str, Any]:
    """A request the server could not act on (as opposed to a Verdict refusing it)."""
    return {"ok": False, "error": kind, "message": message}


def encode_frame(frame: Mapping[str, Any]) -> bytes:
    """One frame as sent: JSON on one line and a newline."""
    return json.dumps(frame, default=str).encode("utf-8") + b"\n"


class Connection:
    """A served client: its reader and writer, and whether it is streaming.

    A streaming connection (a subscription, a followed log) is left open when the server
    stops listening, so the run's last records still reach it; the server ends it when the
    run has ended (ControlServer.close_streams).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: PeerCredentials,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.idle_timeout_s = idle_timeout_s
        self.streaming = False
        self._buffer = bytearray()
        self._scanned = 0

    async def read_request(self) -> bytes | None:
        """The next request line, newline included; None when the client is done (it closed,
        or stayed silent for the idle timeout, with nothing unfinished).

        Raises RequestFault for a line over MAX_REQUEST_BYTES (`too_long`) and for a line
        the client never finished (`incomplete`: it closed, or went silent, mid-line).
        """
        while True:
            newline = self._buffer.find(b"\n", self._scanned)
            if newline >= 0:
                if newline > MAX_REQUEST_BYTES:
                    raise _too_long()
                line = bytes(self._buffer[: newline + 1])
                del self._buffer[: newline + 1]
                self._scanned = 0
                return line
            self._scanned = len(self._buffer)
            if len(self._buffer) > MAX_REQUEST_BYTES:
                raise _too_long()
            try:
                async with asyncio.timeout(self.idle_timeout_s):
                    chunk = await self.reader.read(_READ_CHUNK)
            except TimeoutError:
                if self._buffer:
                    raise RequestFault(
                        "incomplete",
                        f"request not finished (no newline) within {self.idle_timeout_s:g} s;"
                        " nothing was done",
                    ) from None
                return None
            if not chunk:
                if self._buffer:
                    raise RequestFault(
                        "incomplete", "request ended without a newline; nothing was done"
                    )
                return None
            self._buffer += chunk

    async def send(self, frame: Mapping[str, Any]) -> None:
        """Write one frame and wait until the client takes it (see `drain`)."""
        self.writer.write(encode_frame(frame))
        await self.drain()

    async def drain(self) -> None:
        """Wait for the client to read what was written; a client that reads nothing for the
        idle timeout is hung up on (TimeoutError), so never reading cannot hold a connection."""
        async with asyncio.timeout(self.idle_timeout_s):
            await self.writer.drain()

    async def hang_up_after_reading(self, seconds: float = HANG_UP_READ_S) -> None:
        """Before closing on a client that may still be sending (a 10 MiB line): end our
        side, then read and drop what comes for a moment. Closing with unread input would
        reset the connection, and the client would never read the answer that says why."""
        with contextlib.suppress(OSError, RuntimeError):
            if self.writer.can_write_eof():
                self.writer.write_eof()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(seconds):
                while await self.reader.read(_READ_CHUNK):
                    pass

    @property
    def closing(self) -> bool:
        return self.writer.is_closing()


class ExtraOps(Protocol):
    """Ops answered above the run layer (protocol v2, console/host/protocol.py)."""

    @property
    def names(self) -> tuple[str, ...]: ...

    async def serve(self, request: Mapping[str, Any], conn: Connection) -> bool:
        """Answer `request` on `conn`; False when the connection must be closed after it."""
        ...

    def end(self) -> None:
        """The run has ended: bring every stream to its end (the server then waits)."""
        ...


def _too_long() -> RequestFault:
    return RequestFault(
        "too_long",
        f"request longer than {MAX_REQUEST_BYTES // 1024} KiB; send one JSON object per line",
    )
