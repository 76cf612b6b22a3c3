"""Words for decisions: what a rule asks for, and what one person could do at a gate.

Shared by `console plan` and the UI's step panel, so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence

from console.policy.approvals import GateTally
from console.policy.decision import RuleOutcome
from console.policy.identity import Identity
from console.workflow.spec import format_duration


def describe_rule(rule: RuleOutcome) -> str:
    """"prod needs two people: 2 approvals from @sre or @release, not by whoever started
    the run, timeout 30m" — the rule's name and what it asks, without why it matched."""
    if rule.effect == "allow":
        asks = "allow"
    elif rule.effect == "deny":
        level = "advisory: only a warning" if rule.level == "advisory" else rule.level
        asks = f"deny ({level})"
        if rule.level == "soft" and rule.override_by:
            asks += f", overridable by {either(rule.override_by)}"
    else:
        asks = f"{rule.approvals} approval{'s' if rule.approvals != 1 else ''}"
        asks += f" from {either(rule.approvers)}" if rule.approvers else " from anyone"
        if rule.separation_of_duties:
            asks += ", not by whoever started the run"
        if rule.reason_required:
            asks += ", with a reason"
        if rule.level == "advisory":
            asks += " (advisory: only a warning)"
    if rule.timeout_s is not None and rule.effect != "allow":
        asks += f", timeout {format_duration(rule.timeout_s)}"
    return f"{rule.name}: {asks}"


def either(names: Sequence[str]) -> str:
    return " or ".join(names)


def what_they_could_do(tally: GateTally, identity: Identity) -> list[str]:
    """One line per action `identity` might take at this gate, saying yes or why not."""
    decision = tally.decision
    lines: list[str] = []
    if decision.effect == "allow":
        return ["no gate: nothing to approve"]
    if decision.effect == "deny" and decision.level == "hard":
        refusal = tally.may_override(identity)
        return [f"cannot approve or override: {refusal}"]
    if decision.effect == "deny":
        refusal = tally.may_override(identity)
        lines.append("could override (with a reason)" if refusal is None
                     else f"cannot override: {refusal}")
        if decision.approvals_required == 0:
            return lines
    # Under a soft deny, ask about the approval itself, not the pending override.
    if decision.effect == "deny":
        why = tally.approver_refusal(identity)
    else:
        why = tally.eligible(identity)
    if why is None:
        note = " (with a reason)" if decision.reason_required else ""
        lines.append(f"could approve{note}")
    else:
        lines.append(f"cannot approve: {why}")
    return lines
