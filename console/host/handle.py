"""RunHandle: the only way a UI sees or acts on a run (DESIGN.md, "Where a run lives").

A handle gives the run's events in order, its state (the fold of those events), the
actions a person takes (each answered with a Verdict), and the steps' logs. The acting
person is whoever the operating system says the handle's user is: the process's uid for a
run in this process, the socket's peer credentials for a run elsewhere.

`InProcessRun` wraps a RunHost in this process (the UI's own runs today, and tests).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from console.events import Event, EventSink, RunOutcome
from console.host.run_host import RunHost
from console.policy.verdict import Verdict
from console.run.state import RunState

LOG_CHUNK = 64 * 1024


class RunHandle(Protocol):
    @property
    def run_id(self) -> str: ...

    @property
    def state(self) -> RunState: ...

    @property
    def live(self) -> bool:
        """The run has not finished (and, for a handle elsewhere, its host is reachable)."""
        ...

    def events(self) -> AsyncIterator[Event]:
        """Every event of the run from its start, then each new one; ends with the run."""
        ...

    async def wait(self) -> RunOutcome:
        """The run's outcome, once it has ended."""
        ...

    async def approve(self, step: str, reason: str | None) -> Verdict: ...

    async def deny(self, step: str, reason: str) -> Verdict: ...

    async def override(self, step: str, reason: str) -> Verdict: ...

    async def cancel(self, step: str | None) -> Verdict:
        """Cancel one step, or (None) the whole run."""
        ...

    async def retry(self, step: str) -> Verdict: ...

    async def log(self, step: str, attempt: int, offset: int) -> bytes:
        """Up to 64 KiB of the attempt's (masked) log from `offset`; b"" at its end."""
        ...

    def interrupt(self, signal_name: str) -> None:
        """The terminal this handle serves got a stop signal."""
        ...


class InProcessRun:
    """A run hosted in this process; actions are taken as this process's uid."""

    def __init__(self, host: RunHost, *, via: str = "tui", uid: int | None = None) -> None:
        self.host = host
        self._via = via
        self._uid = os.getuid() if uid is None else uid
        self._history: list[Event] = []
        self._changed = asyncio.Event()
        self._ended = False
        self._task: asyncio.Task[RunOutcome] | None = None
        host.add_sink(self)

    @property
    def run_id(self) -> str:
        return self.host.run_id

    @property
    def state(self) -> RunState:
        return self.host.state

    @property
    def live(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def params(self) -> dict[str, str | int | bool]:
        return self.host.engine.params

    def add_sink(self, sink: EventSink) -> None:
        self.host.add_sink(sink)

    def settle_within_s(self) -> float:
        """How long the run may still take to stop (the lifeline's budget)."""
        return self.host.settle_within_s()

    def publish(self, event: Event) -> None:
        self._history.append(event)
        self._changed.set()

    def start(self) -> None:
        """Start the run (in this event loop); `wait()` gives its outcome."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> RunOutcome:
        try:
            return await self.host.run()
        finally:
            self._ended = True
            self._changed.set()

    async def wait(self) -> RunOutcome:
        self.start()
        assert self._task is not None
        return await self._task

    async def events(self) -> AsyncIterator[Event]:
        self.start()
        seen = 0
        while True:
            while seen < len(self._history):
                seen += 1
                yield self._history[seen - 1]
            if self._ended:
                return
            self._changed.clear()
            await self._changed.wait()

    async def approve(self, step: str, reason: str | None) -> Verdict:
        return self.host.approve(step, self._uid, self._via, reason)

    async def deny(self, step: str, reason: str) -> Verdict:
        return self.host.deny(step, self._uid, self._via, reason)

    async def override(self, step: str, reason: str) -> Verdict:
        return self.host.override(step, self._uid, self._via, reason)

    async def cancel(self, step: str | None) -> Verdict:
        if step is None:
            return self.host.cancel_run(self._uid, self._via)
        return self.host.cancel_step(step, self._uid, self._via)

    async def retry(self, step: str) -> Verdict:
        return self.host.retry_step(step, self._uid, self._via)

    async def log(self, step: str, attempt: int, offset: int) -> bytes:
        found = self.state.steps.get(step)
        if found is None or found.log_path is None or not 1 <= attempt <= found.attempt:
            return b""
        path = Path(found.log_path).with_name(f"{step}.{attempt}.log")
        try:
            with path.open("rb") as log:
                log.seek(offset)
                return log.read(LOG_CHUNK)
        except FileNotFoundError:  # a step that printed nothing has no log file
            return b""

    def interrupt(self, signal_name: str) -> None:
        self.host.interrupt(signal_name)
