"""One step process, watched by the event loop: its exit through a pidfd, its output as a reader.

asyncio's subprocess transport starts a thread per child to wait for it (Python 3.11's
default child watcher) and wraps each pipe in a transport; for thousands of short steps
that is most of the cost of running them. Here the child's exit is a readable pidfd in the
loop's selector (Linux 5.3+; a waiting thread elsewhere), and its output is read straight
off one pipe, up to READ_SIZE bytes at a time, into a callback that writes it to the log.
The pipes and pidfds of all steps sit in one epoll set of their own (`Readiness`), which the
loop watches as a single reader: adding and removing a descriptor there is one system call,
where the loop's add_reader and remove_reader cost several times that in Python.
stdout and stderr share that pipe (as on a terminal), so the log holds the step's output in
the order it was written, and masking sees it as the reader of the log does.

The child is started by `os.posix_spawn` when it can be (see `Spawner`): the C library's
vfork and exec, the environment encoded in C, nothing else. Popen (its fast vfork path: no
preexec_fn) starts the rest: a working directory other than the console's, a PATH other
than the console's, an unusual descriptor layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

READ_SIZE = 256 * 1024
# What Popen's restore_signals puts back for the child: Python ignores these.
_RESTORED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name)
)


def _exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


def _no_descriptor_inherited() -> None:
    """Mark every descriptor above stderr close-on-exec (Popen's close_fds, done once).

    What Python opens is close-on-exec already (PEP 446); this catches what the process
    inherited: a pipe of whoever started the console, a make jobserver, a `--ready-fd`.
    """
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = [str(fd) for fd in range(3, 1024)]
    for name in names:
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):  # closed meanwhile (the listing's own)
                os.set_inheritable(fd, False)


class Spawner:
    """Starts step processes in a session of their own, stdin from /dev/null, stdout and
    stderr on one pipe; returns (pid, the pipe's read end).

    posix_spawn needs three things Popen would otherwise do for it: the working directory
    is the console's (Python 3.11's posix_spawn cannot change it; any path to it will do),
    the program is looked up on the console's own PATH (the C library's posix_spawnp reads
    this process's), and no descriptor is inherited beyond 0, 1 and 2 (made so once, on the
    first spawn).
    """

    def __init__(self) -> None:
        self._devnull: int | None = None
        self._swept = False

    def close(self) -> None:
        if self._devnull is not None:
            os.close(self._devnull)
            self._devnull = None

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> tuple[
            int, int, subprocess.Popen[bytes] | None]:
        """Start `argv`; raises OSError or ValueError if it cannot start. The Popen is
        returned when Popen started it (it must be told the exit status)."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            if read_end > 2 and write_end > 2 and self._may_posix_spawn(argv, env, cwd):
                pid = self._posix_spawn(argv, env, write_end)
                popen = None
            else:
                popen = subprocess.Popen(
                    list(argv), stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end,
                    env=dict(env), cwd=str(cwd), start_new_session=True,
                )
                pid = popen.pid
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return pid, read_end, popen

    def _may_posix_spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> bool:
        if "/" not in argv[0] and env.get("PATH") != os.environ.get("PATH"):
            return False
        try:
            # The same directory, whatever path names it (a symlinked checkout, /srv/current):
            # looked up at each start, so a path switched to another directory is followed.
            here, there = os.stat("."), os.stat(cwd)
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def _posix_spawn(self, argv: Sequence[str], env: Mapping[str, str], write_end: int) -> int:
        if not self._swept:
            _no_descriptor_inherited()
            self._swept = True
        if self._devnull is None:
            self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        actions = [
            (os.POSIX_SPAWN_DUP2, self._devnull, 0),
            (os.POSIX_SPAWN_DUP2, write_end, 1),
            (os.POSIX_SPAWN_DUP2, write_end, 2),
        ]
        start = os.posix_spawn if "/" in argv[0] else os.posix_spawnp
        return start(argv[0], tuple(argv), env, file_actions=actions, setsid=True,
                     setsigdef=_RESTORED_SIGNALS)


class Readiness:
    """One epoll set for the steps' descriptors; the event loop watches it as one reader
    and calls each descriptor's callback when it is ready (level-triggered, like the loop).

    Use it from the loop's thread. Used from another loop later (a new asyncio.run), it
    moves its one reader there.
    """

    def __init__(self) -> None:
        self._epoll: select.epoll | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callbacks: dict[int, Callable[[], None]] = {}

    def add(self, loop: asyncio.AbstractEventLoop, fd: int, callback: Callable[[], None]) -> None:
        if self._loop is not loop or self._epoll is None:
            self._attach(loop)
        assert self._epoll is not None
        self._epoll.register(fd, select.EPOLLIN)
        self._callbacks[fd] = callback

    def remove(self, fd: int) -> None:
        """Stop watching `fd` (before closing it)."""
        if self._callbacks.pop(fd, None) is not None and self._epoll is not None:
            self._epoll.unregister(fd)

    def close(self) -> None:
        self._detach()
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        self._callbacks.clear()

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._detach()
        if self._epoll is None:
            self._epoll = select.epoll()  # close-on-exec
        loop.add_reader(self._epoll.fileno(), self._dispatch)
        self._loop = loop

    def _detach(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and self._epoll is not None and not loop.is_closed():
            loop.remove_reader(self._epoll.fileno())

    def _dispatch(self) -> None:
        if self._epoll is None:
            return
        for fd, _ in self._epoll.poll(0):
            callback = self._callbacks.get(fd)
            if callback is not None:  # not removed by an earlier callback of this batch
                callback()


class StepProcess:
    """A running step: `exited` once the leader is reaped (its status in `returncode`),
    `output_closed` at end of file on its output; `on_change` is called as either happens.
    The owner calls `close()` when done with it."""

    def __init__(
        self,
        pid: int,
        output: int,
        loop: asyncio.AbstractEventLoop,
        readiness: Readiness,
        on_output: Callable[[bytes], None],
        on_change: Callable[[], None],
        popen: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.pid = pid
        self._output: int | None = output
        self._loop = loop
        self._readiness = readiness
        self._on_output = on_output
        self._on_change = on_change
        self._popen = popen
        self.returncode: int | None = None
        self.exited = False
        self.output_closed = False
        os.set_blocking(output, False)
        readiness.add(loop, output, self._read)
        self._watch_exit()

    def close(self) -> None:
        """Stop reading and close the pipe; the leader is still reaped when it exits."""
        fd, self._output = self._output, None
        if fd is None:
            return
        self._readiness.remove(fd)
        os.close(fd)
        self.output_closed = True
        self._on_change()

    def _read(self) -> None:
        fd = self._output
        if fd is None:
            return
        try:
            data = os.read(fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._on_output(data)
        else:
            self.close()

    def _watch_exit(self) -> None:
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self._wait_in_thread()
            return

        def on_exit() -> None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self.pid, -1
            if pid == 0:
                return
            self._readiness.remove(pidfd)
            os.close(pidfd)
            self._reaped(None if status == -1 else _exit_code(status))

        self._readiness.add(self._loop, pidfd, on_exit)

    def _wait_in_thread(self) -> None:
        def wait() -> None:
            try:
                _, status = os.waitpid(self.pid, 0)
                code: int | None = _exit_code(status)
            except ChildProcessError:
                code = None
            self._loop.call_soon_threadsafe(self._reaped, code)

        threading.Thread(target=wait, name=f"waitpid-{self.pid}", daemon=True).start()

    def _reaped(self, returncode: int | None) -> None:
        self.returncode = returncode
        if self._popen is not None:
            # Popen must not try to reap a pid that is already ours and may be reused.
            self._popen.returncode = returncode
        if not self.exited:
            self.exited = True
            self._on_change()
