"""One step run on many hosts: its instances in waves, the fleet's failure budget, a gate
before each wave after the first when `approve_between` asks for one.

The scheduler starts a GroupRun once the step itself may run (its needs done, its own gate
passed) and hears back once, through `on_done`, after `group.finished` is recorded.
Instances are attempts like any step's (events, log, retries, audit records of their own);
the GroupRun decides only which start when:

- a wave starts all its hosts at once; the next wave waits until every instance of this one
  has finished (retries included), then for `pause`, then for its gate;
- a host counts as failed once its last attempt failed. Once more hosts have failed than
  `max_failures` allows (counted over the whole fleet), no new wave starts and the step
  fails; instances already running finish;
- cancelling the step (or the run stopping) starts no new wave, cancels what runs, and
  marks the hosts that never ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from console.events import (
    Actor,
    Event,
    GroupFinished,
    StepCancelled,
    StepDenied,
    StepOutcome,
    StepReused,
    StepSkipped,
    WaveStarted,
)
from console.policy.decision import Decision, RuleOutcome, combine
from console.workflow.fleet import failures_allowed, instance_id, waves_of
from console.workflow.spec import Strategy

FAILED = frozenset({"failed", "error"})


@dataclass(frozen=True)
class GroupCalls:
    """What a GroupRun asks of the scheduler."""

    emit: Callable[[Event], None]
    start_instance: Callable[[str], None]
    cancel_instance: Callable[[str], None]
    open_gate: Callable[[str, Decision], None]
    close_gate: Callable[[str, str], None]
    step_decision: Callable[[str], Decision]
    on_done: Callable[[str], None]


class GroupRun:
    def __init__(
        self,
        run_id: str,
        step_id: str,
        hosts: tuple[str, ...],
        strategy: Strategy,
        reused: Mapping[str, str],
        calls: GroupCalls,
        origin: str,
        noun: str = "hosts",
    ) -> None:
        self.run_id = run_id
        self.step_id = step_id
        self._calls = calls
        self._strategy = strategy
        self._origin = origin
        self._hosts = hosts
        self._noun = noun  # "hosts", or "combinations" for a matrix
        self._reused = {h: reused[h] for h in hosts if h in reused}
        self._waves = waves_of([h for h in hosts if h not in self._reused], strategy)
        self._allowed = failures_allowed(strategy, len(hosts))
        self._next = 0  # index of the next wave
        self._running: set[str] = set()
        self._succeeded = len(self._reused)
        self._failed = 0
        self._not_run = 0
        self._stopping: str | None = None
        self._stopped_as: StepOutcome = "cancelled"
        self._at_gate = False
        self._pause: asyncio.TimerHandle | None = None
        self.finished = False

    # --- driven by the scheduler -------------------------------------------------------

    def start(self) -> None:
        for host, origin in self._reused.items():
            self._emit(StepReused(run=self.run_id, step=self._unit(host), from_run=origin))
        self._next_wave()

    def instance_finished(self, unit: str, status: str) -> None:
        """An instance is done for good (its last attempt, or it never started)."""
        self._running.discard(unit)
        if status in ("succeeded", "reused"):
            self._succeeded += 1
        elif status in FAILED:
            self._failed += 1
        else:
            self._not_run += 1
        if not self._running:
            self._next_wave()

    def may_retry(self) -> bool:
        """Whether an instance that failed may have another attempt."""
        return self._stopping is None

    def gate_passed(self) -> None:
        self._at_gate = False
        self._launch()

    def gate_denied(self, reason: str, policies: tuple[str, ...], actor: Actor | None) -> None:
        self._at_gate = False
        self._emit(StepDenied(run=self.run_id, step=self.step_id, reason=reason,
                              policies=policies, actor=actor))
        self._mark_not_run(f"the gate before wave {self._next + 1} was denied", cancelled=False)
        self._done_without_outcome()

    def stop(self, why: str) -> None:
        """Cancel the step (or the run is stopping): no new wave, stop what runs."""
        if self.finished or self._stopping is not None:
            return
        self._stopping = why
        if self._pause is not None:
            self._pause.cancel()
            self._pause = None
        if self._at_gate:
            self._at_gate = False
            self._calls.close_gate(self.step_id, why)
        for unit in list(self._running):
            self._calls.cancel_instance(unit)
        if not self._running:
            self._next_wave()

    # --- waves -------------------------------------------------------------------------

    @property
    def over_budget(self) -> bool:
        return self._failed > self._allowed

    def _next_wave(self) -> None:
        if self.finished:
            return
        if self._stopping is not None or self.over_budget or self._next >= len(self._waves):
            self._finish()
            return
        if self._next > 0 and self._strategy.pause > 0 and self._pause is None:
            loop = asyncio.get_running_loop()
            self._pause = loop.call_later(self._strategy.pause, self._paused)
            return
        if self._next > 0 and self._strategy.approve_between:
            self._open_wave_gate()
            return
        self._launch()

    def _paused(self) -> None:
        if self._stopping is not None or self.finished:
            return
        if self._strategy.approve_between:
            self._open_wave_gate()
        else:
            self._launch()

    def _open_wave_gate(self) -> None:
        self._at_gate = True
        number, total = self._next + 1, len(self._waves)
        between = RuleOutcome(
            name="approve_between", effect="require_approval", level="hard",
            reason=f"wave {number} of {total} ({len(self._waves[self._next])} {self._noun}) waits "
                   f"for approval: approve_between = true",
            approvals=1, approvers=(), separation_of_duties=False, reason_required=False,
            timeout_s=None, override_by=(), origin=self._origin,
        )
        step_rules = self._calls.step_decision(self.step_id).rules
        self._calls.open_gate(self.step_id, combine([*step_rules, between]))

    def _launch(self) -> None:
        self._pause = None
        if self._stopping is not None or self.finished:
            self._next_wave()
            return
        wave = self._waves[self._next]
        self._next += 1
        self._emit(WaveStarted(run=self.run_id, step=self.step_id, wave=self._next,
                               waves=len(self._waves), hosts=wave))
        units = [self._unit(host) for host in wave]
        self._running.update(units)
        for unit in units:
            self._calls.start_instance(unit)

    # --- the end -----------------------------------------------------------------------

    def _finish(self) -> None:
        if self._stopping is not None:
            why = self._stopping
            self._mark_not_run(why if why.startswith("run ") else f"step {why}", cancelled=True)
        elif self.over_budget:
            self._mark_not_run(self._budget_text(), cancelled=False)
        outcome: StepOutcome = (
            self._stopped_as if self._stopping is not None
            else "failed" if self.over_budget else "succeeded"
        )
        self._emit(GroupFinished(
            run=self.run_id, step=self.step_id, outcome=outcome, succeeded=self._succeeded,
            failed=self._failed, not_run=self._not_run, summary=self._summary(),
        ))
        self._done_without_outcome()

    def _done_without_outcome(self) -> None:
        self.finished = True
        self._calls.on_done(self.step_id)

    def _mark_not_run(self, why: str, *, cancelled: bool) -> None:
        while self._next < len(self._waves):
            for host in self._waves[self._next]:
                unit = self._unit(host)
                if cancelled:
                    self._emit(StepCancelled(run=self.run_id, step=unit,
                                             reason=f"not started: {why}"))
                else:
                    self._emit(StepSkipped(run=self.run_id, step=unit,
                                           reason=f"not started: {why}"))
                self._not_run += 1
            self._next += 1

    def _budget_text(self) -> str:
        return (f"{self._failed} of {len(self._hosts)} {self._noun} failed; max_failures "
                f"allows {self._allowed}")

    def _summary(self) -> str:
        parts = [f"{self._succeeded} succeeded", f"{self._failed} failed"]
        if self._not_run:
            parts.append(f"{self._not_run} not run")
        text = ", ".join(parts) + f" of {len(self._hosts)} {self._noun}"
        if self.over_budget:
            return f"{text}: over the failure budget ({self._budget_text()})"
        if self._failed:
            return f"{text}, within the failure budget of {self._allowed}"
        return text

    def _unit(self, host: str) -> str:
        return instance_id(self.step_id, host)

    def _emit(self, event: Event) -> None:
        self._calls.emit(event)
