"""RecordedRun: a run that has ended, seen read-only through the events its audit trail holds.

It gives a UI the same RunHandle as a live run, so `console attach` opens a finished run
the same way; every action is refused, saying the run has ended and how to go on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from console.events import Event, RunOutcome
from console.policy.verdict import Verdict
from console.run.outcome import run_outcome
from console.run.state import RunState


class RecordedRun:
    def __init__(self, run_id: str, events: Sequence[Event]) -> None:
        self._run_id = run_id
        self._events = list(events)
        self._state = RunState.from_events(self._events)

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def live(self) -> bool:
        return False

    async def events(self) -> AsyncIterator[Event]:
        for event in self._events:
            yield event

    async def wait(self) -> RunOutcome:
        status = self._state.status
        if status in ("succeeded", "failed", "denied", "cancelled", "interrupted"):
            return status
        return run_outcome(self._state)

    def _refused(self) -> Verdict:
        return Verdict(
            False,
            f"run {self._run_id} has ended ({self._state.status}); start it again with "
            f"`console run {self._state.workflow_path or 'FILE'} --resume {self._run_id}`",
        )

    async def approve(self, step: str, reason: str | None) -> Verdict:
        return self._refused()

    async def deny(self, step: str, reason: str) -> Verdict:
        return self._refused()

    async def override(self, step: str, reason: str) -> Verdict:
        return self._refused()

    async def cancel(self, step: str | None) -> Verdict:
        return self._refused()

    async def retry(self, step: str) -> Verdict:
        return self._refused()

    async def log(self, step: str, attempt: int, offset: int) -> bytes:
        return b""

    def interrupt(self, signal_name: str) -> None:
        return None
