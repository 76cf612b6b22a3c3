"""Headless output without rich: the one-line form of each event, printed one per line.

The words come from console.present (the same as the audit pane's and `audit tail`'s); each
line is made `terminal_safe` there, so a field cannot retitle the terminal, clear it, or
forge a line of its own.
"""

from __future__ import annotations

import sys
from typing import IO

from console.events import Event, parse_ts
from console.present import printed_line


class PlainPrinter:
    """One line per event, for logs and pipes."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout

    def publish(self, event: Event) -> None:
        line = printed_line(event)
        if line is None:
            return
        stamp = parse_ts(event.ts).astimezone().strftime("%H:%M:%S")
        self.out.write(f"{stamp} {line}\n")
        self.out.flush()
