"""A gate that waits for someone else says so at once, to the person who started the run."""

from __future__ import annotations

from console.run.state import RunState


def waits_on_others(state: RunState, sid: str, uid: int) -> str | None:
    """If `uid` started the run and may not pass `sid`'s gate: who may, and how; else None."""
    step = state.steps.get(sid)
    if step is None or step.initiator_may_approve or state.uid != uid:
        return None
    who = ", ".join(step.approvers) or "someone else"
    why = step.initiator_why_not or "the policy needs someone else"
    return (f"{sid} waits for {who} ({why}). They approve from their own account: "
            f"console attach {state.run_id}  (or console approve {state.run_id} {sid})")
