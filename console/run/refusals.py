"""Refusals that repeat: the first is recorded at once, the rest are counted.

Any local user can ask a run to do what they may not (cancel it, approve a gate they are
not an approver of) thousands of times a second; each refusal would be a durable audit
record and a line on the operator's terminal. So, per uid: the first refusal is emitted at
once and opens an interval of REFUSAL_INTERVAL_S. Refusals within the interval are counted;
when it ends, one record stands for them all (the last of them, with `count` set to how
many). If refusals kept coming, another interval follows; an interval without any ends the
run of intervals, and the next refusal is again recorded at once.

The trail holds at most one refusal record per uid per interval (plus the first), and the
counts of the records add up to every refusal made. Each refused person still gets their
own verdict; only the records are merged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from console.events import ApprovalRefused
from console.timestamps import utc_now

REFUSAL_INTERVAL_S = 1.0


@dataclass
class _Interval:
    started: float
    timer: asyncio.TimerHandle | None = None
    last: ApprovalRefused | None = None  # the latest refusal not yet recorded
    count: int = 0  # refusals since the last record


class RefusalCoalescer:
    """Passes refusals on to `emit`, at most about one record per uid per interval."""

    def __init__(
        self,
        emit: Callable[[ApprovalRefused], None],
        interval_s: float = REFUSAL_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self.interval_s = interval_s
        self._clock = clock
        self._intervals: dict[int | None, _Interval] = {}
        # After flush() no timers are set (the run is winding down and may end before they
        # fire): an interval's end is then noticed by the next refusal of that uid.
        self._flushed = False

    def refused(self, event: ApprovalRefused) -> None:
        uid = event.actor.uid if event.actor is not None else None
        interval = self._intervals.get(uid)
        if interval is None:
            self._intervals[uid] = self._open(uid)
            self._emit(event)
            return
        interval.last = event
        interval.count += 1
        if interval.timer is None and self._clock() - interval.started >= self.interval_s:
            self._ended(uid)

    def flush(self) -> None:
        """Record every pending count now and set no more timers (the run winds down)."""
        self._flushed = True
        intervals, self._intervals = self._intervals, {}
        for interval in intervals.values():
            if interval.timer is not None:
                interval.timer.cancel()
            self._record(interval)

    @property
    def pending(self) -> int:
        """Refusals counted but not yet recorded."""
        return sum(interval.count for interval in self._intervals.values())

    @property
    def counting(self) -> frozenset[int | None]:
        """The uids in an interval: their next refusal is counted, not recorded at once."""
        return frozenset(self._intervals)

    def _open(self, uid: int | None) -> _Interval:
        interval = _Interval(started=self._clock())
        if not self._flushed:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return interval
            interval.timer = loop.call_later(self.interval_s, self._ended, uid)
        return interval

    def _ended(self, uid: int | None) -> None:
        interval = self._intervals.pop(uid, None)
        if interval is None:
            return
        if interval.timer is not None:
            interval.timer.cancel()
        if interval.count == 0:
            return  # a quiet interval: the next refusal is recorded at once
        self._intervals[uid] = self._open(uid)  # still coming: go on counting
        self._record(interval)

    def _record(self, interval: _Interval) -> None:
        if interval.last is None or interval.count == 0:
            return
        # Stamped now, so the trail stays in time order; it stands for refusals until now.
        self._emit(dataclasses.replace(interval.last, count=interval.count, ts=utc_now()))
