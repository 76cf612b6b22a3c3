"""The client side of a run's control socket, for asyncio: connections, requests, frames.

A run that is over a connection limit answers `busy` and hangs up before reading anything;
nothing was done, so the request is sent again on a new connection, after 0.05 s, then
twice as long each time (at most 0.5 s), until the deadline. Frames from the run are at
most MAX_FRAME_BYTES (docs/control.md, Protocol v2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from console.errors import ControlError
from console.host.protocol import MAX_FRAME_BYTES

_BUSY_FIRST_PAUSE_S = 0.05
_BUSY_MAX_PAUSE_S = 0.5
# The run hangs up on a connection silent for 60 s; one idle this long is opened afresh.
REOPEN_AFTER_IDLE_S = 30.0
ANSWER_TIMEOUT_S = 30.0
# Room for the newline and a little slack over the frame limit.
_READ_LIMIT = MAX_FRAME_BYTES + 1024

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class ProtocolFault(ControlError):
    """The run (or what answers on its socket) sent something that is not a v2 frame."""


def decode_frame(line: bytes) -> dict[str, Any]:
    try:
        frame = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolFault(f"the run sent a line that is not JSON: {line[:120]!r}") from exc
    if not isinstance(frame, dict):
        raise ProtocolFault(f"the run sent a line that is not a JSON object: {line[:120]!r}")
    return frame


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next frame; None when the run closed the connection (a partial line included)."""
    try:
        line = await reader.readline()
    except ValueError as exc:  # over the StreamReader's limit
        raise ProtocolFault(f"the run sent a frame over {MAX_FRAME_BYTES:,} bytes") from exc
    if not line.endswith(b"\n"):
        return None
    return decode_frame(line)


async def open_stream(
    path: Path, request: Mapping[str, Any], deadline: float
) -> tuple[Stream, dict[str, Any]]:
    """Connect, send `request`, and return the connection and the run's answer (its first
    frame). Asks again while the run answers `busy`, until `deadline` (loop time)."""
    loop = asyncio.get_running_loop()
    line = json.dumps(dict(request)).encode("utf-8") + b"\n"
    pause = _BUSY_FIRST_PAUSE_S
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise ControlError(f"the run on {path} did not answer in time; it may be busy")
        try:
            async with asyncio.timeout(remaining):
                reader, writer = await asyncio.open_unix_connection(str(path), limit=_READ_LIMIT)
                try:
                    with contextlib.suppress(ConnectionError):  # a busy run hangs up first
                        writer.write(line)
                        await writer.drain()
                    answer = await read_frame(reader)
                except BaseException:
                    writer.close()
                    raise
        except TimeoutError:
            raise ControlError(
                f"the run on {path} did not answer in time; it may be busy"
            ) from None
        except FileNotFoundError as exc:
            raise ControlError(f"no run listens on {path}: it finished, or never started") from exc
        except ConnectionRefusedError as exc:
            raise ControlError(
                f"nobody listens on {path}: the run ended without removing it (stale socket)"
            ) from exc
        except OSError as exc:
            raise ControlError(f"cannot talk to the run on {path}: {exc.strerror or exc}") from exc
        if answer is None:
            writer.close()
            raise ControlError(f"the run on {path} closed the connection without answering")
        if answer.get("error") != "busy":
            return (reader, writer), answer
        writer.close()
        if loop.time() + pause >= deadline:
            raise ControlError(f"the run on {path} is too busy: {answer.get('message', '')}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, _BUSY_MAX_PAUSE_S)


class RequestChannel:
    """One connection for requests, opened when needed, one request at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: Stream | None = None
        self._lock = asyncio.Lock()
        self._last_used = 0.0

    async def ask(
        self,
        request: Mapping[str, Any],
        *,
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout_s: float = ANSWER_TIMEOUT_S,
    ) -> list[dict[str, Any]]:
        """Send `request`; its answer, and (with `until`, and an answer that is ok) every
        frame after it up to the one `until` accepts or one with `"ok": false`.

        Raises ControlError when the run cannot be reached or stops answering midway.
        """
        async with self._lock:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            stream, answer = await self._send(request, deadline)
            frames = [answer]
            try:
                while until is not None and answer.get("ok") is True:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        frame = await read_frame(stream[0])
                    if frame is None:
                        raise ControlError(f"the run on {self.path} hung up midway")
                    frames.append(frame)
                    if until(frame) or frame.get("ok") is False:
                        break
            except BaseException:
                self.close()
                raise
            self._last_used = loop.time()
            return frames

    async def _send(
        self, request: Mapping[str, Any], deadline: float
    ) -> tuple[Stream, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        stream = self._stream
        stale = loop.time() - self._last_used > REOPEN_AFTER_IDLE_S
        if stream is not None and (stale or stream[0].at_eof() or stream[1].is_closing()):
            self.close()
            stream = None
        if stream is None:
            self._stream, answer = await open_stream(self.path, request, deadline)
            return self._stream, answer
        try:
            stream[1].write(json.dumps(dict(request)).encode("utf-8") + b"\n")
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                await stream[1].drain()
                reply = await read_frame(stream[0])
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ControlError(
                f"no answer from the run on {self.path} ({exc}); it may or may not have acted"
            ) from exc
        if reply is None:
            self.close()
            raise ControlError(
                f"the run on {self.path} hung up before answering; it may or may not have acted"
            )
        return stream, reply

    def close(self) -> None:
        if self._stream is not None:
            self._stream[1].close()
            self._stream = None
