"""Orphan prevention: a helper process that outlives the console just long enough to clean up.

A step runs in its own process group, so when the console dies its steps keep running:
nothing tells them. The watchdog is a small separate program (`_watchdog_main.py`) in its
own session, reading a pipe whose write end only the console holds. The console registers
each step's process group as it starts and unregisters it once the group is gone; when the
console exits or is killed (even by SIGKILL) the kernel closes the pipe, the watchdog reads
end of file and terminates every group still registered (SIGTERM, grace, SIGKILL).

Cost per step: two short writes to a pipe. Known gap: a process that starts its own session
(setsid, a double-forking daemon) leaves the step's group and is out of reach; only cgroups
could follow it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

WATCHDOG_PROGRAM = Path(__file__).with_name("_watchdog_main.py")


class Watchdog:
    """The console's side of the watchdog pipe; starts the helper on the first registration."""

    def __init__(self, grace_s: float) -> None:
        self._grace_s = grace_s
        self._process: subprocess.Popen[bytes] | None = None
        self._groups: set[int] = set()
        self._disabled = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def register(self, pgid: int) -> None:
        self._groups.add(pgid)
        self._send(f"+{pgid}\n".encode())

    def unregister(self, pgid: int) -> None:
        self._groups.discard(pgid)
        self._send(f"-{pgid}\n".encode())

    async def close(self) -> None:
        """Close the pipe and wait for the helper to exit (it kills what is still registered)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        deadline = time.monotonic() + self._grace_s + 5.0
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def _send(self, line: bytes) -> None:
        if self._disabled:
            return
        if self._process is None:
            self._start()
            # A fresh helper knows nothing yet: tell it every group, this one included.
            line = b"".join(f"+{pgid}\n".encode() for pgid in sorted(self._groups))
        if self._process is None or self._process.stdin is None or not line:
            return
        try:
            os.write(self._process.stdin.fileno(), line)
        except OSError as exc:
            # The helper died under us (someone killed it): start another and re-register.
            logger.warning("orphan watchdog lost (%s); starting a new one", exc)
            self._process = None
            self._start()
            resend = b"".join(f"+{pgid}\n".encode() for pgid in sorted(self._groups))
            if self._process is not None and self._process.stdin is not None and resend:
                try:
                    os.write(self._process.stdin.fileno(), resend)
                except OSError as again:
                    self._give_up(again)

    def _start(self) -> None:
        if not sys.executable:
            self._give_up(OSError("sys.executable is unknown"))
            return
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(WATCHDOG_PROGRAM), repr(self._grace_s)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                # Its own session: a ^C on the console's terminal must not reach it.
                start_new_session=True,
            )
        except OSError as exc:
            self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        self._disabled = True
        self._process = None
        logger.warning(
            "orphan watchdog unavailable (%s): steps still running if the console is killed "
            "will not be stopped",
            exc,
        )
