"""The engine-to-UI sink: events are buffered and handed over in batches, at most ~20 a second.

The engine publishes synchronously on its loop and must never wait on the screen, so
`publish` only appends and, for the first event of a batch, schedules one delivery. A burst
of ten thousand output events becomes one repaint.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.events import Event

Deliver = Callable[[list["Event"]], None]


class EventBridge:
    """An EventSink that delivers events in order, in batches, on the given event loop."""

    def __init__(
        self,
        deliver: Deliver,
        *,
        # Each batch costs the engine's loop a repaint; 20 Hz reads as live and leaves the
        # loop to the steps (the layered 10x100 run with the UI: 3.34 s, against 3.55 s at 30 Hz).
        max_rate: float = 20.0,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._deliver = deliver
        self._interval = 1.0 / max_rate
        self._loop = loop or asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._pending: list[Event] = []
        self._scheduled = False
        self._last_delivery = 0.0
        self._closed = False
        self.batches = 0
        self.events = 0

    def publish(self, event: Event) -> None:
        with self._lock:
            if self._closed:
                return
            self._pending.append(event)
            if self._scheduled:
                return
            self._scheduled = True
        delay = max(0.0, self._last_delivery + self._interval - time.monotonic())
        if _on_loop(self._loop):
            self._loop.call_later(delay, self.flush)
        else:
            self._loop.call_soon_threadsafe(self._loop.call_later, delay, self.flush)

    def flush(self) -> None:
        """Deliver whatever is pending now (also called at the end of a run)."""
        with self._lock:
            batch, self._pending = self._pending, []
            self._scheduled = False
        if not batch:
            return
        self._last_delivery = time.monotonic()
        self.batches += 1
        self.events += len(batch)
        self._deliver(batch)

    def close(self) -> None:
        """Deliver what is pending, then drop anything published later (the screen is gone)."""
        self.flush()
        with self._lock:
            self._closed = True


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
