"""Headless output without rich: the one-line form of each event, printed one per line.

The words come from console.present (the same as the audit pane's and `audit tail`'s); each
line is made `terminal_safe` there, so a field cannot retitle the terminal, clear it, or
forge a line of its own.

The lines of one pass of the event loop are written together at the end of it (one write
for a step's step.finished and the next one's step.started); a durable event (the run's
start and end, a gate's decision) is written at once, with whatever waits before it.
"""

from __future__ import annotations

import asyncio
import sys
from functools import lru_cache
from typing import IO

from console.events import Event
from console.present import printed_line
from console.timestamps import parse_ts


@lru_cache(maxsize=4)
def _local_clock(utc_second: str) -> str:
    """HH:MM:SS, local time, of a timestamp's first 19 characters (to the second, UTC)."""
    return parse_ts(utc_second).astimezone().strftime("%H:%M:%S")


class PlainPrinter:
    """One line per event, for logs and pipes."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self._pending: list[str] = []
        self._failed: Exception | None = None  # a write at the end of a pass failed

    def publish(self, event: Event) -> None:
        if self._failed is not None:
            raise self._failed  # the fan-out drops this sink, as if publish had failed
        line = printed_line(event)
        if line is not None:
            self._pending.append(f"{_local_clock(event.ts[:19])} {line}\n")
            if len(self._pending) == 1 and not event.durable and self._flush_later():
                return
        if event.durable:
            self.flush()

    def flush(self) -> None:
        """Write the lines still pending."""
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self.out.write(text)
            self.out.flush()

    def _flush_later(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no loop whose pass could end: write now
            return False
        loop.call_soon(self._flush_at_end_of_pass)
        return True

    def _flush_at_end_of_pass(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # a terminal or pipe that went away
            self._failed = exc
