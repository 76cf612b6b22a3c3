"""How a run ended: the one rule (DESIGN.md, "Run outcomes") that every reader shares.

The engine decides `run.finished` with it, so the fold of the audit trail and the last
record always agree; the CLI's exit code, the UI's summary, `status` and `--resume` read
that record.

A run succeeded only if every step succeeded, was reused, or was skipped because of a
condition (its own `if`, or a need skipped that way). Otherwise, strongest first: the
audit failed (the run stopped itself, fail closed: failed) > interrupted (a signal) >
cancelled (a person cancelled the run or any step, at a gate or running) > denied >
failed. A step skipped because a need failed, was denied or was cancelled needs no rule of
its own: that need's status already decides.
"""

from __future__ import annotations

from console.events import RunOutcome
from console.run.state import RunState

FAILED_STEP = frozenset({"failed", "error"})


def run_outcome(state: RunState) -> RunOutcome:
    statuses = {step.status for step in state.steps.values()}
    if state.audit_error is not None:
        return "failed"
    if state.interrupted_by is not None:
        return "interrupted"
    if state.cancelled_by is not None or "cancelled" in statuses:
        return "cancelled"
    if "denied" in statuses:
        return "denied"
    if statuses & FAILED_STEP:
        return "failed"
    return "succeeded"
