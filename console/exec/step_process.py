"""One step process, watched by the event loop: its exit through a pidfd, its pipes as readers.

asyncio's subprocess transport starts a thread per child to wait for it (Python 3.11's
default child watcher) and wraps each pipe in a transport; for thousands of short steps
that is most of the cost of running them. Here the child is spawned by subprocess.Popen
(the fast vfork path: no preexec_fn), its exit is a readable pidfd in the loop's selector
(Linux 5.3+; a waiting thread elsewhere), and each pipe is read straight off its file
descriptor, up to READ_SIZE bytes at a time, into a callback that writes it to the log.
Nothing is buffered here: a chunk read is a chunk handed on.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from console.exec.steplog import STDERR, STDOUT

READ_SIZE = 256 * 1024


def _exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


class StepProcess:
    """A running step: `exited` resolves when the leader is reaped, `output_closed` at EOF
    on both pipes. The owner calls `close()` when done with it."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        loop: asyncio.AbstractEventLoop,
        on_output: Callable[[int, bytes], None],
        on_stream_end: Callable[[int], None],
    ) -> None:
        self._popen = popen
        self._loop = loop
        self._on_output = on_output
        self._on_stream_end = on_stream_end
        self.pid = popen.pid
        self.returncode: int | None = None
        self.exited: asyncio.Future[None] = loop.create_future()
        self.output_closed: asyncio.Future[None] = loop.create_future()
        self._pipes: dict[int, int] = {}
        for stream, pipe in ((STDOUT, popen.stdout), (STDERR, popen.stderr)):
            assert pipe is not None
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            self._pipes[stream] = fd
            loop.add_reader(fd, self._read, stream, fd)
        self._watch_exit()

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        loop: asyncio.AbstractEventLoop,
        on_output: Callable[[int, bytes], None],
        on_stream_end: Callable[[int], None],
    ) -> StepProcess:
        """Start `argv` in a new session; raises OSError or ValueError if it cannot start."""
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=str(cwd),
            start_new_session=True,
            bufsize=0,
        )
        return cls(popen, loop, on_output, on_stream_end)

    def close(self) -> None:
        """Stop reading and close the pipes; the leader is still reaped when it exits."""
        for stream in list(self._pipes):
            self._end_stream(stream)

    def _read(self, stream: int, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._on_output(stream, data)
        else:
            self._end_stream(stream)

    def _end_stream(self, stream: int) -> None:
        fd = self._pipes.pop(stream, None)
        if fd is None:
            return
        self._loop.remove_reader(fd)
        pipe = self._popen.stdout if stream == STDOUT else self._popen.stderr
        assert pipe is not None
        pipe.close()
        self._on_stream_end(stream)
        if not self._pipes and not self.output_closed.done():
            self.output_closed.set_result(None)

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
            self._loop.remove_reader(pidfd)
            os.close(pidfd)
            self._reaped(None if status == -1 else _exit_code(status))

        self._loop.add_reader(pidfd, on_exit)

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
        # Popen must not try to reap a pid that is already ours and may be reused.
        self._popen.returncode = returncode
        if not self.exited.done():
            self.exited.set_result(None)
