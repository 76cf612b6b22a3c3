"""The bound on stopping: once told to stop, the process exits in time, whatever is stuck.

A stop signal asks the engine to wind down (cleanups, then the steps' grace). If the process
is still alive when that should have been over (the event loop blocked in a write to a dead
terminal or a hung disk, a bug), a daemon thread ends it with `os._exit`. Steps are not
orphaned by that: the watchdog process sees the console die and stops every registered
process group (see watchdog.py). The audit then lacks `run.finished`, and `console status`
reports the run as interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

EXIT_INTERRUPTED = 130


class ExitDeadline:
    def __init__(self, code: int = EXIT_INTERRUPTED) -> None:
        self._code = code
        self._timer: threading.Timer | None = None
        self._due: float | None = None

    def arm(self, seconds: float) -> None:
        """Exit `seconds` from now unless disarmed; re-arming only ever moves it earlier."""
        due = time.monotonic() + seconds
        if self._due is not None and self._due <= due:
            return
        self.disarm()
        self._due = due
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._due = None

    def _expire(self) -> None:
        message = b"console: the run did not stop in time after the signal; exiting now\n"
        with contextlib.suppress(OSError):
            os.write(2, message)
        os._exit(self._code)


def keeps_default(sig: signal.Signals) -> bool:
    """False if `sig` was ignored when the console started (`nohup` ignores SIGHUP; a shell
    ignores SIGINT for a background job): an ignored signal stays ignored."""
    return signal.getsignal(sig) is not signal.SIG_IGN
