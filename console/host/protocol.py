"""Protocol v2 on a run's control socket: `hello`, `subscribe` and `log` (docs/control.md).

A viewer never opens the run's files: it asks the run. `subscribe` replays the run's audit
records from the audit file, then sends each new one as the run appends it (from the run's
RecordFeed), the same JSON as the audit lines, and ends with an `end` frame. `log` sends
an attempt's (already masked) log file in base64 chunks, and with `follow` keeps sending
as it grows until the attempt ends. Every frame the run sends here is at most
MAX_FRAME_BYTES; a viewer that falls behind is told (`too_slow`) and dropped.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import stat
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from console.audit.chain import canonical_json
from console.audit.log import read_records
from console.errors import ConsoleError
from console.host.feed import RUN_FINISHED, RecordFeed, Subscription
from console.policy.identity import identity_for_uid
from console.run.control_conn import (
    MAX_REQUEST_BYTES,
    Connection,
    RequestFault,
    encode_frame,
    error_response,
)
from console.run.control_server import OPS
from console.run.state import RunState

PROTOCOL = 2
V2_OPS = ("hello", "subscribe", "log")
MAX_FRAME_BYTES = 1024 * 1024
LOG_CHUNK_BYTES = 64 * 1024
# A followed log is looked at this often for new bytes.
LOG_POLL_S = 0.05
# Records written to a viewer before waiting for it to take them.
SEND_BATCH = 512
# A dropped viewer's connection stays open this long for it to read why, then is cut.
TOO_SLOW_GRACE_S = 5.0


@dataclass
class _Viewer:
    """One subscription being served: what it was sent, and how it ended."""

    conn: Connection
    last: int  # the highest seq written to it (since_seq before the first)
    finished: bool = False  # run.finished was written
    dropped: bool = False  # told too_slow


class RunProtocol:
    """The v2 ops of one run, for its ControlServer (`extra_ops`)."""

    names = V2_OPS

    def __init__(
        self,
        *,
        run_id: str,
        workflow: str,
        feed: RecordFeed,
        audit_path: Path,
        run_dir: Path,
        state: Callable[[], RunState],
        shape: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.feed = feed
        self.audit_path = audit_path
        self.run_dir = run_dir
        self._state = state
        self._shape = shape
        self._ended = False

    async def serve(self, request: Mapping[str, Any], conn: Connection) -> bool:
        op = request.get("op")
        if op == "hello":
            await conn.send(self.hello(conn.peer.uid))
            return True
        if op == "subscribe":
            await self._subscribe(request, conn)
            return False
        return await self._log(request, conn)

    def end(self) -> None:
        """The run has ended: subscriptions get their last records and `end`; logs stop."""
        self._ended = True
        self.feed.close()

    # --- hello ---------------------------------------------------------------------------

    def hello(self, uid: int) -> dict[str, Any]:
        you = identity_for_uid(uid)
        state = self._state()
        return {
            "ok": True,
            "message": f"run {self.run_id} ({self.workflow}) speaks protocol {PROTOCOL}; "
            f"you are {you.user} (uid {uid})",
            "protocol": PROTOCOL,
            "run": self.run_id,
            "workflow": self.workflow,
            "workflow_path": state.workflow_path,
            "started_by": state.user,
            # The workflow's shape, commands masked: a viewer who cannot read the file draws
            # the DAG from this (the run's own files are never sent).
            "shape": self._shape() if self._shape is not None else None,
            "you": {"user": you.user, "uid": uid},
            "status": state.status,
            "last_seq": self.feed.last_seq,
            "ops": [*OPS, *V2_OPS],
            "limits": {
                "frame_bytes": MAX_FRAME_BYTES,
                "request_bytes": MAX_REQUEST_BYTES,
                "pending_records": self.feed.max_pending,
                "log_chunk_bytes": LOG_CHUNK_BYTES,
            },
        }

    # --- subscribe -----------------------------------------------------------------------

    async def _subscribe(self, request: Mapping[str, Any], conn: Connection) -> None:
        since = _count(request, "since_seq", default=0)
        viewer = _Viewer(conn, last=since)
        # Live first, then the file: a record appended meanwhile is in both, and is sent once
        # (by seq); none can fall between the two.
        subscription = self.feed.subscribe(lambda: self._drop(viewer, "fell behind"))
        conn.streaming = True
        watcher = asyncio.create_task(_watch_input(conn, subscription))
        try:
            await conn.send({
                "ok": True,
                "message": f"subscribed to run {self.run_id} after seq {since}",
                "run": self.run_id,
                "since_seq": since,
            })
            await self._replay(viewer)
            if not viewer.dropped and not viewer.finished:
                await self._live(viewer, subscription)
            if subscription.overflowed:
                # Dropped by the feed, whose own call to `_drop` may not have run yet: the
                # viewer is told it fell behind, never that the stream ended.
                self._drop(viewer, "fell behind")
            if viewer.dropped:
                return
            if subscription.stopped is not None and not viewer.finished:
                if subscription.stopped != _CLOSED:
                    await conn.send(error_response("bad_request", subscription.stopped))
                    await conn.hang_up_after_reading()
                return
            await conn.send(self._end_frame(viewer))
        except TimeoutError:
            self._drop(viewer, f"took nothing for {conn.idle_timeout_s:g} s")
        except _FrameTooLong as exc:
            await conn.send(error_response("too_long", str(exc)))
        except ConsoleError as exc:  # the audit file could not be read
            await conn.send(error_response("failed", exc.message))
        finally:
            subscription.close()
            watcher.cancel()

    async def _replay(self, viewer: _Viewer) -> None:
        """This run's records after `viewer.last`, from the audit file."""
        records = _records_of(self.audit_path, self.run_id, viewer.last)
        try:
            while not viewer.dropped:
                batch, done = await asyncio.to_thread(_take, records, SEND_BATCH)
                for seq, line, ends_run in batch:
                    self._write(viewer, seq, line, ends_run)
                await viewer.conn.drain()
                if done or viewer.finished:
                    return
        finally:
            with contextlib.suppress(ValueError):  # still running in its thread: left to GC
                records.close()

    async def _live(self, viewer: _Viewer, subscription: Subscription) -> None:
        finished = self.feed.finished
        if finished is not None and finished.seq <= viewer.last:
            viewer.finished = True  # sent by the replay, or subscribed past the run's end
            return
        while not viewer.dropped:
            batch = await subscription.next_batch(SEND_BATCH)
            if not batch or viewer.dropped:
                return
            for item in batch:
                self._write(viewer, item.seq, item.line, item.ends_run)
            await viewer.conn.drain()
            if viewer.finished:
                return

    def _write(self, viewer: _Viewer, seq: int, line: bytes, ends_run: bool) -> None:
        if seq <= viewer.last or viewer.dropped:
            return
        if len(line) + 1 > MAX_FRAME_BYTES:
            raise _FrameTooLong(
                f"record seq {seq} of run {self.run_id} is {len(line) + 1:,} bytes, over the "
                f"{MAX_FRAME_BYTES:,}-byte frame limit; the subscription ends here"
            )
        viewer.conn.writer.write(line + b"\n")
        viewer.last = seq
        viewer.finished = viewer.finished or ends_run

    def _drop(self, viewer: _Viewer, why: str) -> None:
        """Tell a viewer that fell behind, and hang up (after a grace to read why)."""
        if viewer.dropped or viewer.finished or viewer.conn.closing:
            return
        viewer.dropped = True
        frame = error_response(
            "too_slow",
            f"this viewer {why} (limit {self.feed.max_pending:,} records waiting) and was "
            f"dropped from run {self.run_id}; subscribe again with since_seq={viewer.last} "
            "to go on from here",
        )
        frame["last_seq"] = viewer.last
        writer = viewer.conn.writer
        writer.write(encode_frame(frame))
        writer.close()  # sends what is buffered, then closes
        asyncio.get_running_loop().call_later(TOO_SLOW_GRACE_S, writer.transport.abort)

    def _end_frame(self, viewer: _Viewer) -> dict[str, Any]:
        finished = self.feed.finished
        outcome = None
        if finished is not None:
            data = finished.record.get("data")
            outcome = data.get("outcome") if isinstance(data, Mapping) else None
        return {
            "type": "end",
            "run": self.run_id,
            "reason": "finished" if viewer.finished else "closed",
            "outcome": outcome,
            "last_seq": viewer.last,
        }

    # --- log -----------------------------------------------------------------------------

    async def _log(self, request: Mapping[str, Any], conn: Connection) -> bool:
        step, attempt = self._attempt(request)
        offset = _count(request, "offset", default=0)
        follow = request.get("follow", False)
        if not isinstance(follow, bool):
            raise RequestFault("bad_request", 'log: "follow" must be true or false')
        limit = _count(request, "limit", default=0) or None
        path = self.run_dir / f"{step}.{attempt}.log"
        await conn.send({
            "ok": True,
            "message": f"log of {step} attempt {attempt} from byte {offset}",
            "step": step,
            "attempt": attempt,
            "offset": offset,
        })
        conn.streaming = follow
        fd: int | None = None
        sent = 0
        try:
            while True:
                over = self._ended or self._attempt_over(step, attempt)
                if fd is None:
                    fd = _open_log(path)
                at_end = True
                if fd is not None:
                    at_end, offset, sent = await _send_chunks(conn, fd, offset, sent, limit)
                if not follow or (over and at_end) or (limit is not None and sent >= limit):
                    break
                if conn.closing or conn.reader.at_eof():
                    return False
                await asyncio.sleep(LOG_POLL_S)
            await conn.send({
                "type": "log.end",
                "step": step,
                "attempt": attempt,
                "offset": offset,
                "ended": over and at_end,
            })
        finally:
            if fd is not None:
                os.close(fd)
        return True

    def _attempt(self, request: Mapping[str, Any]) -> tuple[str, int]:
        step = request.get("step")
        if not isinstance(step, str) or not step:
            raise RequestFault("bad_request", 'log needs "step" as a non-empty string')
        found = self._state().steps.get(step)
        # Only a step of this run names a file, and never a path: no client text is opened.
        if found is None or "/" in step or step in (".", "..") or "\0" in step:
            raise RequestFault("bad_request", f"run {self.run_id} has no step {step!r}")
        attempt = request.get("attempt")
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
            raise RequestFault("bad_request", 'log needs "attempt" as a number from 1')
        if attempt > found.attempt:
            started = (
                "has not started yet" if found.attempt == 0
                else f"has had {found.attempt} attempt{'s' if found.attempt != 1 else ''}"
            )
            raise RequestFault("bad_request", f"step {step} {started}; no attempt {attempt}")
        return step, attempt

    def _attempt_over(self, step: str, attempt: int) -> bool:
        found = self._state().steps.get(step)
        return found is None or found.attempt != attempt or found.status != "running"


class _FrameTooLong(Exception):
    pass


_CLOSED = "the viewer closed its side"


async def _watch_input(conn: Connection, subscription: Subscription) -> None:
    """A subscribed connection takes no more requests: read what comes (so a viewer that
    leaves is noticed at once) and ignore it, up to MAX_REQUEST_BYTES."""
    taken = 0
    try:
        while chunk := await conn.reader.read(4096):
            taken += len(chunk)
            if taken > MAX_REQUEST_BYTES:
                subscription.stop(
                    "a subscribed connection takes no requests; open another connection "
                    "for them"
                )
                return
    except OSError:
        pass
    subscription.stop(_CLOSED)


def _records_of(
    path: Path, run_id: str, after: int
) -> Generator[tuple[int, bytes, bool], None, None]:
    """run_id's records with seq > after, in file order, as (seq, line, ends the run)."""
    for record in read_records(path):
        seq = record.get("seq")
        if record.get("run") != run_id or not isinstance(seq, int) or seq <= after:
            continue
        line = canonical_json(record).encode("utf-8")
        yield seq, line, record.get("type") == RUN_FINISHED


def _take(
    records: Iterator[tuple[int, bytes, bool]], limit: int
) -> tuple[list[tuple[int, bytes, bool]], bool]:
    """Up to `limit` records, and whether there are no more. Runs in a worker thread, so
    the loop (the engine) goes on while the file is read and parsed."""
    found = list(islice(records, limit))
    return found, len(found) < limit


def _open_log(path: Path) -> int | None:
    """The log file open for reading (a regular file, never through a link); None if the
    attempt has written nothing yet."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RequestFault("failed", f"cannot read the log {path.name}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RequestFault("failed", f"the log {path.name} is not a regular file")
    return fd


async def _send_chunks(
    conn: Connection, fd: int, offset: int, sent: int, limit: int | None
) -> tuple[bool, int, int]:
    """Send the log from `offset` to its current end (or `limit` bytes in all): whether the
    end was reached, the new offset and the bytes sent so far."""
    while True:
        want = LOG_CHUNK_BYTES if limit is None else min(LOG_CHUNK_BYTES, limit - sent)
        if want <= 0:
            return False, offset, sent
        data = os.pread(fd, want, offset)
        if not data:
            return True, offset, sent
        chunk = {"type": "log", "offset": offset, "data": base64.b64encode(data).decode("ascii")}
        conn.writer.write(encode_frame(chunk))
        offset += len(data)
        sent += len(data)
        await conn.drain()


def _count(request: Mapping[str, Any], key: str, *, default: int) -> int:
    value = request.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        op = request.get("op")
        raise RequestFault("bad_request", f'{op}: "{key}" must be a whole number from 0')
    return value
