"""RecordFeed: each audit record of a run, handed to its live viewers as it is appended.

The run host writes its audit through a `FeedingAuditLog`, which gives every record it
appended (seq and hash included) to the run's RecordFeed. Each viewer subscribed to the
feed has a bounded queue: publishing appends to it and, at most, sets an asyncio.Event —
constant work per viewer, never a wait, never an exception — so a viewer can never delay
the engine. A viewer whose queue is full has fallen behind: it is dropped from the feed
(its queue is freed) and told so by its `on_overflow` callback, scheduled on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from console.audit.chain import canonical_json
from console.audit.log import AuditLog

# Records a viewer may have waiting before it counts as fallen behind and is dropped.
MAX_PENDING_RECORDS = 10_000
RUN_FINISHED = "run.finished"


class Published:
    """One appended record, shared by every viewer's queue; its line is made once, lazily."""

    __slots__ = ("_line", "record", "seq")

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record
        self.seq = int(record.get("seq", 0))
        self._line: bytes | None = None

    @property
    def line(self) -> bytes:
        """The record as its audit line holds it (canonical JSON), without the newline."""
        if self._line is None:
            self._line = canonical_json(self.record).encode("utf-8")
        return self._line

    @property
    def ends_run(self) -> bool:
        return self.record.get("type") == RUN_FINISHED


class Subscription:
    """One viewer's queue. Read it with `next_batch`; `close` when done."""

    def __init__(
        self,
        feed: RecordFeed,
        max_pending: int,
        on_overflow: Callable[[], None] | None,
    ) -> None:
        self._feed = feed
        self._max_pending = max_pending
        self._on_overflow = on_overflow
        self._pending: deque[Published] = deque()
        self._wake = asyncio.Event()
        self.overflowed = False
        self.ended = False  # the feed closed: nothing more will come
        self.stopped: str | None = None  # why the reader side gave up (the client left)

    def offer(self, item: Published) -> None:
        """From the feed: queue `item`, or find the viewer fallen behind and drop it."""
        if len(self._pending) >= self._max_pending:
            self.overflowed = True
            self._pending.clear()
            self._feed.unsubscribe(self)
            self._wake.set()
            loop = self._feed.loop
            if self._on_overflow is not None and loop is not None:
                loop.call_soon(self._on_overflow)
            return
        self._pending.append(item)
        if not self._wake.is_set():
            self._wake.set()

    def end(self) -> None:
        self.ended = True
        self._wake.set()

    def stop(self, why: str) -> None:
        """The reader side is done (its client left): wake whoever waits on `next_batch`."""
        self.stopped = why
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def next_batch(self, limit: int) -> list[Published]:
        """Up to `limit` queued records, waiting for one; [] once the feed has ended (and
        the queue is empty), the viewer was dropped, or `stop` was called."""
        while not self._pending:
            if self.ended or self.overflowed or self.stopped is not None:
                return []
            self._wake.clear()
            await self._wake.wait()
        if self.overflowed or self.stopped is not None:
            return []
        count = min(limit, len(self._pending))
        return [self._pending.popleft() for _ in range(count)]

    def close(self) -> None:
        self._feed.unsubscribe(self)
        self._pending.clear()


class RecordFeed:
    """The records of run `run_id`, as they are appended, to every subscribed viewer."""

    def __init__(self, run_id: str, max_pending: int | None = None) -> None:
        self.run_id = run_id
        self.max_pending = MAX_PENDING_RECORDS if max_pending is None else max_pending
        self._subscribers: list[Subscription] = []
        self.last_seq = 0
        self.finished: Published | None = None  # the run's run.finished record, once written
        self.closed = False
        self.dropped = 0  # viewers dropped for falling behind
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.get_ident()

    def subscribe(self, on_overflow: Callable[[], None] | None = None) -> Subscription:
        """A new viewer's queue, filled from now on (replay what came before from the file)."""
        self.loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        subscription = Subscription(self, self.max_pending, on_overflow)
        if self.closed:
            subscription.end()
        else:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(subscription)
            if subscription.overflowed:
                self.dropped += 1

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, record: Mapping[str, Any]) -> None:
        """Hand `record` to every viewer. Never blocks, never raises (the audit writer calls
        this after each append: a viewer must not be able to fail the run)."""
        try:
            if record.get("run") != self.run_id:
                return  # a record this writer made for no run (audit.recovered_tail)
            if threading.get_ident() != self._thread and self.loop is not None:
                self.loop.call_soon_threadsafe(self._hand_out, Published(record))
                return
            self._hand_out(Published(record))
        except Exception:
            pass  # nothing a viewer did may reach the audit writer

    def _hand_out(self, item: Published) -> None:
        self.last_seq = max(self.last_seq, item.seq)
        if item.ends_run:
            self.finished = item
        for subscription in list(self._subscribers):
            subscription.offer(item)

    def close(self) -> None:
        """Nothing more will be appended: every viewer gets what is queued, then its end."""
        self.closed = True
        subscribers, self._subscribers = self._subscribers, []
        for subscription in subscribers:
            subscription.end()


class FeedingAuditLog(AuditLog):
    """An AuditLog that gives each record it writes to a RecordFeed (after the write)."""

    def __init__(self, path: Path | str, feed: RecordFeed, fsync_always: bool = False) -> None:
        super().__init__(path, fsync_always=fsync_always)
        self.feed = feed

    def committed(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self.feed.publish(record)
