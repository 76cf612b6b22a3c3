"""AttachedRun: a run hosted by another process, seen and acted on through its socket.

It implements RunHandle (console/host/handle.py) over protocol v2 (docs/control.md):
`connect()` says hello on a request connection and subscribes, on a second connection,
to every record of the run since its start. Each record becomes an Event (event_from_json)
folded into `state` with the same RunState.apply the run host uses, so both see the same
state. Actions go as v1 requests on the request connection; the run knows who acts from
the connection itself (SO_PEERCRED), so nothing here names a user.

`live` is False once the run has ended (the `end` frame), once this handle detached
(`interrupt`, `detach`), or when the connection dropped: then `lost` says so ("the run
host went away ..."), which is how a viewer tells a host that died from a run that ended.
A viewer the run dropped for falling behind (`too_slow`) subscribes again from the last
record it has, so no record is missed or seen twice.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from console.errors import ControlError
from console.events import Event, RunOutcome, UnknownEventError, event_from_json
from console.host.channel import (
    ProtocolFault,
    RequestChannel,
    Stream,
    open_stream,
    read_frame,
)
from console.host.protocol import LOG_CHUNK_BYTES, PROTOCOL
from console.policy.verdict import Verdict
from console.run.outcome import run_outcome
from console.run.state import RunState

if TYPE_CHECKING:
    from console.host.handle import RunHandle

CONNECT_TIMEOUT_S = 10.0
# Times in a row a viewer may be dropped for falling behind and subscribe again.
MAX_RESUBSCRIBES = 20
HOST_WENT_AWAY = "the run host went away"


class RunHostLost(ControlError):
    """The connection to the run dropped before the run ended."""


class AttachedRun:
    def __init__(
        self, socket_path: Path, hello: Mapping[str, Any], requests: RequestChannel
    ) -> None:
        self.socket_path = socket_path
        self.hello = dict(hello)
        self._run_id = str(hello.get("run", ""))
        self.workflow = str(hello.get("workflow", ""))
        you = hello.get("you")
        self.you: dict[str, Any] = dict(you) if isinstance(you, Mapping) else {}
        self._state = RunState()
        self._history: list[Event] = []
        self._changed = asyncio.Event()
        self._requests = requests
        self._stream: Stream | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_seq = 0  # the last record received
        self.outcome: RunOutcome | None = None  # set by the `end` frame
        self.ended = False
        self.lost: str | None = None  # why the connection dropped, if it did
        self.detached = False
        self.resubscribes = 0  # times dropped for falling behind, and subscribed again
        self._drops_in_a_row = 0
        self._seq_at_drop = 0
        self.skipped: list[str] = []  # record types this version does not know

    @classmethod
    async def connect(
        cls, socket_path: Path | str, *, timeout: float = CONNECT_TIMEOUT_S
    ) -> AttachedRun:
        """Attach to the run listening on `socket_path`. Raises ControlError if it cannot be
        reached, or speaks an older protocol."""
        path = Path(socket_path)
        deadline = asyncio.get_running_loop().time() + timeout
        requests = RequestChannel(path)
        [hello] = await requests.ask({"op": "hello"}, timeout_s=timeout)
        if hello.get("ok") is not True:
            requests.close()
            if hello.get("error") == "unknown_op":
                raise ControlError(
                    f"the run on {path} is served by an older console (no protocol "
                    f"{PROTOCOL}): use `console status` and `console approve` with it"
                )
            raise ControlError(f"the run on {path} refused to attach: {hello.get('message')}")
        run = cls(path, hello, requests)
        try:
            await run._subscribe(since=0, deadline=deadline)
        except BaseException:
            requests.close()
            raise
        run._task = asyncio.get_running_loop().create_task(run._follow())
        return run

    # --- RunHandle ----------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def live(self) -> bool:
        return not self.ended and self.lost is None and not self.detached

    async def events(self) -> AsyncIterator[Event]:
        seen = 0
        while True:
            while seen < len(self._history):
                seen += 1
                yield self._history[seen - 1]
            if not self.live:
                return
            self._changed.clear()
            await self._changed.wait()

    async def wait(self) -> RunOutcome:
        """The run's outcome once it has ended; raises RunHostLost if the connection
        dropped first, ControlError if this handle detached."""
        while self.live:
            self._changed.clear()
            await self._changed.wait()
        if self.ended:
            return self.outcome or run_outcome(self._state)
        if self.lost is not None:
            raise RunHostLost(f"run {self.run_id}: {self.lost}")
        raise ControlError(f"detached from run {self.run_id}; it goes on without this view")

    async def approve(self, step: str, reason: str | None) -> Verdict:
        return await self._act({"op": "approve", "step": step, "reason": reason})

    async def deny(self, step: str, reason: str) -> Verdict:
        return await self._act({"op": "deny", "step": step, "reason": reason})

    async def override(self, step: str, reason: str) -> Verdict:
        return await self._act({"op": "override", "step": step, "reason": reason})

    async def cancel(self, step: str | None) -> Verdict:
        if step is None:
            return await self._act({"op": "cancel"})
        return await self._act({"op": "cancel", "step": step})

    async def retry(self, step: str) -> Verdict:
        return await self._act({"op": "retry", "step": step})

    async def log(self, step: str, attempt: int, offset: int) -> bytes:
        """Up to 64 KiB of the attempt's (masked) log from `offset`; b"" at its end, and
        when the run cannot say (no such attempt, the run is gone)."""
        request = {"op": "log", "step": step, "attempt": attempt, "offset": offset,
                   "follow": False, "limit": LOG_CHUNK_BYTES}
        try:
            frames = await self._requests.ask(request, until=_is_log_end)
        except ControlError:
            return b""
        return b"".join(_chunk(frame) for frame in frames[1:] if frame.get("type") == "log")

    async def follow_log(self, step: str, attempt: int, offset: int = 0) -> AsyncIterator[bytes]:
        """The attempt's log from `offset` as it grows, on a connection of its own, until
        the attempt ends. Raises ControlError if the run refuses (no such attempt)."""
        request = {"op": "log", "step": step, "attempt": attempt, "offset": offset,
                   "follow": True}
        deadline = asyncio.get_running_loop().time() + CONNECT_TIMEOUT_S
        (reader, writer), answer = await open_stream(self.socket_path, request, deadline)
        try:
            if answer.get("ok") is not True:
                raise ControlError(f"run {self.run_id}: {answer.get('message')}")
            while (frame := await read_frame(reader)) is not None:
                if frame.get("type") == "log":
                    yield _chunk(frame)
                elif _is_log_end(frame):
                    return
                elif frame.get("ok") is False:
                    raise ControlError(f"run {self.run_id}: {frame.get('message')}")
            raise RunHostLost(f"run {self.run_id}: {HOST_WENT_AWAY} while sending the log")
        finally:
            writer.close()

    def interrupt(self, signal_name: str) -> None:
        """The terminal got a stop signal: detach (the run goes on in its host)."""
        self.detach()

    def detach(self) -> None:
        if self.live:
            self.detached = True
        if self._task is not None:
            self._task.cancel()
        self._close_stream()
        self._requests.close()
        self._changed.set()

    async def close(self) -> None:
        """Detach and wait until the subscription is closed."""
        self.detach()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- the subscription ---------------------------------------------------------------

    async def _subscribe(self, since: int, deadline: float) -> None:
        stream, answer = await open_stream(
            self.socket_path, {"op": "subscribe", "since_seq": since}, deadline
        )
        if answer.get("ok") is not True:
            stream[1].close()
            raise ControlError(f"run {self.run_id} refused the subscription: "
                               f"{answer.get('message')}")
        self._stream = stream

    async def _follow(self) -> None:
        try:
            while self._stream is not None:
                frame = await read_frame(self._stream[0])
                if frame is None:
                    self._lose(f"{HOST_WENT_AWAY} (the connection closed before the run ended)")
                    return
                if "seq" in frame:
                    self._take(frame)
                elif frame.get("type") == "end":
                    self._end(frame)
                    return
                elif frame.get("error") == "too_slow" and self._may_catch_up():
                    await self._catch_up()
                elif frame.get("ok") is False:
                    self._lose(f"the run ended this view: {frame.get('message')}")
                    return
        except ProtocolFault as exc:
            self._lose(exc.message)
        except ControlError as exc:  # subscribing again failed
            self._lose(f"{HOST_WENT_AWAY}: {exc.message}")
        except OSError as exc:
            self._lose(f"{HOST_WENT_AWAY} ({exc.strerror or exc})")
        finally:
            self._close_stream()
            self._changed.set()

    def _may_catch_up(self) -> bool:
        """Dropped for falling behind: subscribe again, unless that happened MAX_RESUBSCRIBES
        times in a row without a record in between."""
        if self.last_seq > self._seq_at_drop:
            self._drops_in_a_row = 0
        self._seq_at_drop = self.last_seq
        self._drops_in_a_row += 1
        return self._drops_in_a_row <= MAX_RESUBSCRIBES

    async def _catch_up(self) -> None:
        """Dropped for falling behind: subscribe again after the last record we have."""
        self.resubscribes += 1
        self._close_stream()
        deadline = asyncio.get_running_loop().time() + CONNECT_TIMEOUT_S
        await self._subscribe(since=self.last_seq, deadline=deadline)

    def _take(self, record: Mapping[str, Any]) -> None:
        seq = record.get("seq")
        if not isinstance(seq, int) or seq <= self.last_seq:
            return
        self.last_seq = seq
        try:
            event = event_from_json(record)
        except UnknownEventError:
            self.skipped.append(str(record.get("type")))
            return
        except (TypeError, ValueError, KeyError):
            self.skipped.append(str(record.get("type")))
            return
        self._state.apply(event)
        self._history.append(event)
        self._changed.set()

    def _end(self, frame: Mapping[str, Any]) -> None:
        outcome = frame.get("outcome")
        for known in get_args(RunOutcome):
            if outcome == known:
                self.outcome = known
        self.ended = True

    def _lose(self, why: str) -> None:
        if not self.detached and not self.ended:
            self.lost = why

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream[1].close()
            self._stream = None

    async def _act(self, request: Mapping[str, Any]) -> Verdict:
        try:
            [answer] = await self._requests.ask(request)
        except ControlError as exc:
            return Verdict(False, f"run {self.run_id}: {exc.message}")
        return Verdict(answer.get("ok") is True, str(answer.get("message", "")))


def _is_log_end(frame: Mapping[str, Any]) -> bool:
    return frame.get("type") == "log.end"


def _chunk(frame: Mapping[str, Any]) -> bytes:
    try:
        return base64.b64decode(str(frame.get("data", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolFault("the run sent a log chunk that is not base64") from exc


def _conforms(run: AttachedRun) -> RunHandle:
    """mypy checks here that AttachedRun is a RunHandle."""
    return run
