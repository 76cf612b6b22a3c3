"""Leaving on a stop signal: bounded, whatever the event loop is stuck in.

A process that runs the engine (the UI, or `console run --no-tui`) must, on SIGTERM, SIGHUP
(the terminal went away) and SIGINT, interrupt the run, let the engine record it and stop the
steps, and then exit.
The signals are caught with `signal.signal`, not the event loop's `add_signal_handler` (a
handler of the loop runs only once the loop gets back to its selector, which a blocked loop
never does), and the handler hands the signal to the loop.

The lifeline is the last resort: a daemon thread that, if the process is still alive at the
deadline (the run's grace plus some seconds), kills the step process groups still running
and ends the process with `os._exit`. It learns of a signal by itself: a Python handler runs
only when the main thread gets to it, and a main thread blocked on a lock (Textual's full
queue of writes) is not woken by a signal the kernel delivered to another thread; so the
signal's number also goes to the lifeline's pipe (`signal.set_wakeup_fd`), written by the
C-level handler in whichever thread the signal landed. The watchdog process would stop the
step groups too once the console is gone (console/exec/watchdog.py); the lifeline does not
wait for it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.events import Event

EXIT_INTERRUPTED = 130
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def catch_stop_signals(on_signal: Callable[[str], None]) -> tuple[signal.Signals, ...]:
    """Call `on_signal(name)` for SIGTERM, SIGHUP and SIGINT in the main thread. A signal
    ignored when the console started stays ignored (`nohup` ignores SIGHUP). Returns the
    signals caught."""

    def handler(signum: int, _frame: object) -> None:
        on_signal(signal.Signals(signum).name)

    caught = tuple(sig for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN)
    for sig in caught:
        signal.signal(sig, handler)
    return caught


class Lifeline:
    """Once armed: at the deadline, run `before_exit` and end the process with `code`.

    `watch_signals()` arms it on every caught stop signal, `budget()` seconds from then
    (provisional: the loop, once it has the signal, arms it firmly). The thread starts with
    the lifeline and sleeps until armed; `arm()` starts nothing and takes no lock, so a
    signal handler may call it too.
    """

    def __init__(self, before_exit: Callable[[], None], budget: Callable[[], float],
                 code: int = EXIT_INTERRUPTED) -> None:
        self._before_exit = before_exit
        self._budget = budget
        self._code = code
        # (monotonic due time, firm); one attribute, so a reader never sees half of it.
        self._deadline: tuple[float, bool] | None = None
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        self._signals_r, self._signals_w = os.pipe()
        for fd in (self._wake_w, self._signals_w):
            os.set_blocking(fd, False)
        self._thread = threading.Thread(target=self._watch, name="console-lifeline", daemon=True)
        self._thread.start()

    def watch_signals(self) -> None:
        """From now on every signal with a Python handler arms the lifeline (main thread
        only: it takes over the process's one wakeup fd; the event loop does not use it)."""
        signal.set_wakeup_fd(self._signals_w, warn_on_full_buffer=False)

    @property
    def due(self) -> float | None:
        """When the process ends at the latest (time.monotonic()), or None if not armed."""
        deadline = self._deadline
        return None if deadline is None else deadline[0]

    def arm(self, seconds: float, *, firm: bool = True) -> None:
        """End the process `seconds` from now unless it has ended by itself.

        A provisional deadline (`firm=False`: set as the signal arrives, before the run has
        said how long it needs to stop) gives way to the first firm one; after that, only a
        firm deadline counts, and it only ever moves earlier.
        """
        due = time.monotonic() + seconds
        current = self._deadline
        if current is not None:
            current_due, current_firm = current
            if current_firm and (not firm or due >= current_due):
                return
            if not firm and due >= current_due:
                return
        self._deadline = (due, firm)
        with contextlib.suppress(OSError):  # a full pipe: the thread is being woken anyway
            os.write(self._wake_w, b"!")

    def close(self) -> None:
        """Stand down for good: the thread ends without ending the process (main thread)."""
        previous = signal.set_wakeup_fd(-1)
        if previous != self._signals_w:
            signal.set_wakeup_fd(previous)
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")
        self._thread.join(timeout=1.0)
        if not self._thread.is_alive():
            for fd in (self._wake_r, self._wake_w, self._signals_r, self._signals_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _watch(self) -> None:
        stops = {int(sig) for sig in STOP_SIGNALS}
        while not self._closed:
            deadline = self._deadline
            timeout = None if deadline is None else deadline[0] - time.monotonic()
            if timeout is not None and timeout <= 0:
                break
            ready, _, _ = select.select([self._wake_r, self._signals_r], [], [], timeout)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            if self._signals_r in ready and stops.intersection(os.read(self._signals_r, 4096)):
                self.arm(self._budget(), firm=False)
        if self._closed:
            return
        try:
            self._before_exit()
        finally:
            os._exit(self._code)


class LiveRun:
    """An EventSink: whether a run is live, and the process group of each step running
    now (a step's pid leads its own group), for the lifeline. Read from a signal handler
    and from the lifeline's thread: plain attributes, a lock only around the groups."""

    def __init__(self) -> None:
        self.live = False
        self._groups: dict[str, int] = {}
        self._lock = threading.Lock()

    def publish(self, event: Event) -> None:
        if event.type == "run.started":
            self.live = True
        elif event.type == "run.finished":
            self.live = False
        elif event.step is None:
            return
        elif event.type == "step.started":
            pid = getattr(event, "pid", None)
            if isinstance(pid, int):
                with self._lock:
                    self._groups[event.step] = pid
        elif event.type == "step.finished":
            with self._lock:
                self._groups.pop(event.step, None)

    def step_groups(self) -> list[int]:
        # The lifeline's thread asks while the loop may be stuck: never wait long for it.
        locked = self._lock.acquire(timeout=0.5)
        try:
            return list(self._groups.values())
        finally:
            if locked:
                self._lock.release()

    def kill_steps(self) -> None:
        """SIGKILL the process group of every step still running."""
        for pgid in self.step_groups():
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
