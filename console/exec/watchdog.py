"""Orphan prevention: a helper process that outlives the console just long enough to clean up.

A step runs in its own process group, so when the console dies its steps keep running:
nothing tells them. The watchdog is a small separate program (`_watchdog_main.py`) in its
own session, reading a pipe whose write end only the console holds. The console registers
each step's process group as it starts and unregisters it once the group is gone; when the
console exits or is killed (even by SIGKILL) the kernel closes the pipe, the watchdog reads
end of file and terminates every group still registered (SIGTERM, grace, SIGKILL).

Cost per step: two short writes to a pipe, which do not even wake the helper (it reads them
in batches). Known gap: a process that starts its own session
(setsid, a double-forking daemon) leaves the step's group and is out of reach; only cgroups
could follow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

WATCHDOG_PROGRAM = Path(__file__).with_name("_watchdog_main.py")
PIPE_SIZE = 1 << 20


class Watchdog:
    """The console's side of the watchdog pipe; starts the helper on the first registration.

    Call it from the event loop's thread. If the helper dies (someone killed it), the pipe's
    write end reports an error to the loop at once; a new helper is started and told every
    group still registered, so protection is never silently lost.
    """

    def __init__(self, grace_s: float) -> None:
        self._grace_s = grace_s
        self._process: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._groups: set[int] = set()
        self._disabled = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def register(self, pgid: int) -> None:
        self._groups.add(pgid)
        if self._process is None:
            self._start()
            return
        loop = asyncio.get_running_loop()
        if self._loop is not loop and self._process.stdin is not None:
            # Used from a new event loop: watch for the helper's loss from this one.
            self._loop = loop
            loop.add_reader(self._process.stdin.fileno(), self._lost)
        self._send(f"+{pgid}\n".encode())

    def unregister(self, pgid: int) -> None:
        self._groups.discard(pgid)
        if self._process is not None:
            self._send(f"-{pgid}\n".encode())

    async def close(self) -> None:
        """Close the pipe and wait for the helper to exit (it kills what is still registered)."""
        process = self._stop_watching()
        if process is None:
            return
        deadline = time.monotonic() + self._grace_s + 5.0
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def _start(self) -> None:
        if self._disabled:
            return
        if not sys.executable:
            self._give_up("sys.executable is unknown")
            return
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(WATCHDOG_PROGRAM), repr(self._grace_s)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                # Its own session: a ^C on the console's terminal must not reach it.
                start_new_session=True,
            )
        except OSError as exc:
            self._give_up(str(exc))
            return
        assert process.stdin is not None
        with contextlib.suppress(AttributeError, OSError):
            # Room for the lines the helper reads in batches (see _watchdog_main.watch).
            fcntl.fcntl(process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self._process = process
        self._loop = asyncio.get_running_loop()
        # A pipe's write end turns "readable" (EPOLLERR) when its reader is gone.
        self._loop.add_reader(process.stdin.fileno(), self._lost)
        # A fresh helper knows nothing yet: tell it every group running now.
        self._send(b"".join(f"+{pgid}\n".encode() for pgid in sorted(self._groups)))

    def _send(self, lines: bytes) -> None:
        if self._process is None or self._process.stdin is None or not lines:
            return
        try:
            os.write(self._process.stdin.fileno(), lines)
        except OSError:
            self._lost()

    def _lost(self) -> None:
        process = self._stop_watching()
        if process is not None:
            # Its pipe is closed, so it is exiting or has exited: reap it.
            try:
                process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        logger.warning("orphan watchdog lost; starting a new one")
        self._start()

    def _stop_watching(self) -> subprocess.Popen[bytes] | None:
        process, self._process = self._process, None
        if process is None or process.stdin is None:
            return process
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(process.stdin.fileno())
        self._loop = None
        process.stdin.close()
        return process

    def _give_up(self, why: str) -> None:
        self._disabled = True
        logger.warning(
            "orphan watchdog unavailable (%s): steps still running if the console is killed "
            "will not be stopped",
            why,
        )
