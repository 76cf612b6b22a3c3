"""A run's open gates: the policy decision, the approvals so far, the deadline.

The engine opens a gate when a step's decision needs approval (or a soft deny needs an
override) and hears back through two callbacks: `on_passed` when the step may run,
`on_denied` when it must not. People act on gates with the identity the OS vouched for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from console.events import (
    Actor,
    ApprovalGiven,
    ApprovalRefused,
    Event,
    GateClosed,
    GateOpened,
    GateOutcome,
    OverrideGiven,
)
from console.policy.approvals import GateTally
from console.policy.decision import Decision
from console.policy.identity import Identity, identity_for_uid
from console.policy.verdict import Verdict
from console.run.refusals import RefusalCoalescer
from console.workflow.spec import format_duration

GateAction = Literal["approve", "deny", "override"]


def decision_policies(decision: Decision) -> tuple[str, ...]:
    return tuple(rule.name for rule in decision.rules if rule.effect != "allow")


@dataclass
class _Gate:
    tally: GateTally
    decision: Decision
    command: str  # what another engineer runs to approve (or override)
    timer: asyncio.TimerHandle | None = None
    deadline: str | None = None  # RFC 3339: no decision by then means denied


class Gates:
    def __init__(
        self,
        run_id: str,
        initiator_uid: int,
        file_hashes: Mapping[str, str],
        clock: Callable[[], datetime],
        emit: Callable[[Event], None],
        on_passed: Callable[[str], None],
        on_denied: Callable[[str, str, tuple[str, ...], Actor | None], None],
    ) -> None:
        self._run_id = run_id
        self._initiator_uid = initiator_uid
        self._file_hashes = dict(file_hashes)
        self._clock = clock
        self._emit = emit
        self._on_passed = on_passed
        self._on_denied = on_denied
        self._open: dict[str, _Gate] = {}
        self._initiator: Identity | None = None  # resolved when the first gate opens
        # Refusals are many when someone keeps asking: merged per uid, see refusals.py.
        self._refusals = RefusalCoalescer(emit)

    def __contains__(self, step: object) -> bool:
        return step in self._open

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._open))

    def open(self, step: str, decision: Decision) -> None:
        binding = {"run": self._run_id, "step": step, "file_hashes": dict(self._file_hashes)}
        verb = "override" if decision.effect == "deny" else "approve"
        command = f"console {verb} {self._run_id} {step}"
        if verb == "override" or decision.reason_required:
            command += ' --reason "..."'
        tally = GateTally(decision, initiator_uid=self._initiator_uid, binding=binding)
        gate = _Gate(tally, decision, command)
        self._open[step] = gate
        # Said at once when the gate waits for someone else (separation of duties, or the
        # initiator is not among the approvers), so nobody waits for themselves in vain.
        initiator_why_not = tally.why_not(self._initiator_identity())
        deadline = None
        if decision.timeout_s is not None:
            at = self._clock() + timedelta(seconds=decision.timeout_s)
            deadline = gate.deadline = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            loop = asyncio.get_running_loop()
            gate.timer = loop.call_later(decision.timeout_s, self._timed_out, step)
        self._emit(
            GateOpened(
                run=self._run_id,
                step=step,
                approvals_required=decision.approvals_required,
                approvers=decision.approvers,
                reason_required=decision.reason_required or verb == "override",
                deadline=deadline,
                approve_command=command,
                initiator_may_approve=initiator_why_not is None,
                initiator_why_not=initiator_why_not,
            )
        )

    def _initiator_identity(self) -> Identity:
        if self._initiator is None:
            self._initiator = identity_for_uid(self._initiator_uid)
        return self._initiator

    def close(self, step: str, outcome: GateOutcome, reason: str | None = None) -> None:
        gate = self._open.pop(step)
        if gate.timer is not None:
            gate.timer.cancel()
        self._emit(GateClosed(run=self._run_id, step=step, outcome=outcome, reason=reason))

    def stop_timers(self) -> None:
        """The run winds down: no gate times out any more, and refusals still being counted
        are recorded now (before run.finished)."""
        for gate in self._open.values():
            if gate.timer is not None:
                gate.timer.cancel()
        self._refusals.flush()

    def _timed_out(self, step: str) -> None:
        gate = self._open.get(step)
        if gate is None:
            return
        waited = format_duration(gate.decision.timeout_s or 0)
        reason = f"no decision within {waited}: denied (fail closed)"
        self.close(step, "timed_out", reason)
        self._on_denied(step, reason, decision_policies(gate.decision), None)

    def refused(
        self, step: str, actor: Actor, action: GateAction | Literal["cancel"], verdict: Verdict
    ) -> Verdict:
        """Record a refused action (who tried what, and why not) and return the verdict.

        The verdict always goes back to whoever asked; the record may be merged with that
        uid's other refusals of the moment (RefusalCoalescer).
        """
        why = verdict.message
        self._refusals.refused(
            ApprovalRefused(run=self._run_id, step=step, actor=actor, action=action, why=why)
        )
        return verdict

    def act(
        self, step: str, identity: Identity, actor: Actor, action: GateAction, reason: str | None
    ) -> Verdict:
        """A person approves, denies or overrides the open gate of `step`."""
        gate = self._open[step]
        if action == "approve":
            verdict = gate.tally.approve(identity, reason)
        elif action == "deny":
            verdict = gate.tally.deny(identity, reason or "")
        else:
            verdict = gate.tally.override(identity, reason or "")
        if not verdict.ok:
            return self.refused(step, actor, action, verdict)
        if action == "deny":
            self.close(step, "denied", reason)
            self._on_denied(step, f"denied by {actor.user}: {reason}", (), actor)
            return verdict
        if action == "approve":
            self._emit(
                ApprovalGiven(
                    run=self._run_id,
                    step=step,
                    actor=actor,
                    reason=reason,
                    approvals=len(gate.tally.approvals),
                    approvals_required=gate.decision.approvals_required,
                    binding={**gate.tally.binding, "uid": identity.uid},
                )
            )
        else:
            self._emit(
                OverrideGiven(
                    run=self._run_id,
                    step=step,
                    actor=actor,
                    reason=reason or "",
                    policies=decision_policies(gate.decision),
                )
            )
        if gate.tally.satisfied:
            self.close(step, "approved" if action == "approve" else "overridden", reason)
            self._on_passed(step)
        return verdict

    def summaries(self, for_uid: int | None = None) -> dict[str, dict[str, Any]]:
        """Each open gate: the decision in words, approvals given and required, who may
        approve and the command that does it.

        With `for_uid` (the uid the OS says is asking: the control socket's peer), each
        gate also says whether that person may act on it now — `may_approve`, and
        `why_not` when they may not — judged by the same rules an approval would meet.
        """
        asking = identity_for_uid(for_uid) if for_uid is not None else None
        out: dict[str, dict[str, Any]] = {}
        for step, gate in self._open.items():
            entry: dict[str, Any] = {
                "summary": gate.decision.summary,
                "approvals": len(gate.tally.approvals),
                "approvals_required": gate.decision.approvals_required,
                "approvers": list(gate.decision.approvers),
                "approve_command": gate.command,
                "deadline": gate.deadline,
            }
            if gate.decision.effect == "deny":
                entry["override_by"] = list(gate.decision.override_by)
            if asking is not None:
                why_not = gate.tally.why_not(asking)
                entry["may_approve"] = why_not is None
                entry["why_not"] = why_not
            out[step] = entry
        return out
