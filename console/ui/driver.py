"""The terminal driver: Textual's Linux driver, made safe for a terminal that goes away.

When the terminal goes away (its tmux session killed, its ssh connection dropped) the kernel
sends SIGHUP and SIGCONT, every write to the terminal fails with EIO and every read returns
end of file. Textual 8.2's LinuxDriver then hangs the process for good:

- its SIGCONT handler restarts application mode although nothing suspended it: a second
  writer thread and a second input thread start on the dead terminal;
- its writer thread (`drivers/_writer_thread.py`) dies on the first failed write, so nothing
  drains its queue of 30 writes any more: the 31st write blocks the event loop forever (at
  the latest in shutdown, where the driver restores the terminal), and the thread's `stop()`
  would wait for it without a timeout;
- its input thread reads end of file in a busy loop.

This driver writes through an output that drops what it cannot write instead of dying,
resumes only after a suspend of its own, stops reading a terminal that is gone, points
stdout and stderr at /dev/null (nothing else may wait on the dead terminal either), tells the
app (`TerminalLost`), and waits a bounded time for its writer thread when it closes.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
import termios
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TextIO, cast

from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

if TYPE_CHECKING:
    from textual.app import App

# The errors of a terminal that is gone for good (a hung-up tty, a closed pipe or descriptor).
TERMINAL_GONE = frozenset({errno.EIO, errno.ENXIO, errno.EPIPE, errno.EBADF, errno.ENODEV})
# How long closing waits for the writer thread to write what is queued.
CLOSE_WAIT_S = 2.0
# How long the last resort waits for the terminal to take "leave the alternate screen".
RESTORE_WAIT_S = 0.2
# What stop_application_mode writes to give the terminal back (keyboard protocol, mouse,
# bracketed paste, line wrap, focus and resize reports, alternate screen, cursor).
_GIVE_BACK = (
    "\x1b[<u\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?2004l\x1b[?7h"
    "\x1b[?1004l\x1b[?2048l\x1b[?1049l\x1b[?25h"
)


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


class _Output:
    """The terminal as the writer thread's file: a failed write is dropped, never raised.

    The first error that means the terminal is gone calls `lost` and drops everything after
    it; any other error (EAGAIN on a terminal someone made non-blocking) drops that write only.
    """

    def __init__(self, file: TextIO, lost: Callable[[], None]) -> None:
        self._file = file
        self._lost = lost
        self.dropping = False

    def write(self, text: str) -> int:
        if not self.dropping:
            self._attempt(self._file.write, text)
        return len(text)

    def flush(self) -> None:
        if not self.dropping:
            self._attempt(self._file.flush)

    def fileno(self) -> int:
        return self._file.fileno()

    def _attempt(self, call: Callable[..., object], *args: str) -> None:
        try:
            call(*args)
        except ValueError:  # the file was closed under us
            self.dropping = True
            self._lost()
        except OSError as error:
            if error.errno in TERMINAL_GONE:
                self.dropping = True
                self._lost()


class ConsoleDriver(LinuxDriver):
    """LinuxDriver that never waits on a terminal that has gone away (see the module doc)."""

    class TerminalLost(Message):
        """The terminal went away: nothing is shown or read any more."""

    def __init__(
        self,
        app: App[object],
        *,
        debug: bool = False,
        mouse: bool = True,
        size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        self._terminal_fds = tuple(fd for fd in (0, 1, 2) if _isatty(fd))
        self._lost = False
        self._lost_lock = threading.Lock()
        self._output = _Output(cast(TextIO, sys.__stderr__), self._lose_terminal)
        # Textual's writer thread only calls write(), flush() and fileno() on its file.
        self._file = cast(io.TextIOWrapper, self._output)

    def check_terminal(self) -> bool:
        """Whether the terminal is still there; if not, give it up (and post TerminalLost).

        A hung-up terminal is no terminal any more: isatty() says no.
        """
        if not self._lost and all(_isatty(fd) for fd in self._terminal_fds):
            return True
        self._lose_terminal()
        return False

    def _lose_terminal(self) -> None:
        with self._lost_lock:
            if self._lost:
                return
            self._lost = True
        self._output.dropping = True
        self.exit_event.set()  # the input thread stops reading end of file in a loop
        _to_devnull(fd for fd in self._terminal_fds if fd != 0)
        self._app.post_message(self.TerminalLost())

    def _sigcont_application(self, *_: object) -> None:
        # Resume only after our own suspend (SIGTSTP): a hung-up terminal sends SIGCONT too,
        # and restarting application mode on it starts a second writer and input thread.
        if self._must_signal_resume and not self._lost:
            super()._sigcont_application()

    def run_input_thread(self) -> None:
        try:
            super().run_input_thread()
        except OSError as error:
            # Textual would panic (exit at once, the run not wound down); the terminal is
            # simply gone, and the app decides what that means.
            if error.errno not in TERMINAL_GONE:
                raise
            self._lose_terminal()

    def close(self) -> None:
        """Stop the writer thread; wait for it a bounded time (a terminal that does not read
        its output would hold it forever)."""
        if self._writer_thread is None:
            return
        stopper = threading.Thread(target=super().close, name="console-output-close", daemon=True)
        stopper.start()
        stopper.join(CLOSE_WAIT_S)

    def restore_now(self, farewell: str = "") -> None:
        """The last resort before exiting at once: give the terminal back as far as that can
        be done without waiting (terminal modes, then the screen and `farewell`, written in
        a moment or not at all: a terminal that does not read would block the write)."""
        if self._lost:
            return
        self._output.dropping = True
        if self.attrs_before is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.fileno, termios.TCSANOW, self.attrs_before)
        fd = self._output.fileno()

        def give_back() -> None:
            with contextlib.suppress(OSError):
                os.write(fd, (_GIVE_BACK + farewell).encode())

        writer = threading.Thread(target=give_back, name="console-give-back", daemon=True)
        writer.start()
        writer.join(RESTORE_WAIT_S)


def _to_devnull(fds: Iterable[int]) -> None:
    """Point these descriptors at /dev/null: a write to them then neither fails nor waits."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.dup2(devnull, fd)
    finally:
        os.close(devnull)
