"""GateTally: who may approve, deny or override one step's gate, and whether it is open.

Rules, from the Decision: the approval count is the highest any rule asked; an approver must
be named (directly or through a group) by every approver set; one person counts once;
under separation of duties whoever started the run cannot approve; a reason is needed when
a rule asks for one, and always to deny or override. The person who started a run can
always deny its gates — they can stop their own run. Only a soft deny can be overridden,
and only by someone named by every soft deny's `override_by`.

Identities come from the operating system (console.policy.identity); every refusal says why
in words the person refused can act on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from console.policy.decision import Decision, RuleOutcome
from console.policy.identity import Identity
from console.policy.verdict import Verdict

GateState = Literal["open", "approved", "overridden", "denied"]


@dataclass(frozen=True)
class GivenApproval:
    """An approval (or an override) as given: who, why, and what it binds to."""

    user: str
    uid: int
    reason: str | None
    binding: Mapping[str, Any]  # the tally's binding plus this approver's uid


class GateTally:
    def __init__(self, decision: Decision, initiator_uid: int, binding: Mapping[str, Any]) -> None:
        self.decision = decision
        self.initiator_uid = initiator_uid
        self.binding: dict[str, Any] = dict(binding)
        self.approvals: list[GivenApproval] = []
        self.overridden_by: GivenApproval | None = None
        self.denied_by: GivenApproval | None = None

    # --- state -------------------------------------------------------------------------

    @property
    def state(self) -> GateState:
        d = self.decision
        if self.denied_by is not None or (d.effect == "deny" and d.level == "hard"):
            return "denied"
        if d.effect == "deny" and self.overridden_by is None:
            return "open"
        if len(self.approvals) < d.approvals_required:
            return "open"
        return "overridden" if self.overridden_by is not None else "approved"

    @property
    def satisfied(self) -> bool:
        """True when the step may run."""
        return self.state in ("approved", "overridden")

    @property
    def progress(self) -> str:
        """One line for a DAG node: "needs 2 approvals, 1 given", "denied by bob", …"""
        state, d = self.state, self.decision
        if state == "denied":
            if self.denied_by is not None:
                return f"denied by {self.denied_by.user}"
            return d.summary
        if state in ("approved", "overridden"):
            who = [a.user for a in self.approvals]
            if self.overridden_by is not None:
                return f"overridden by {self.overridden_by.user}" + (
                    f", approved by {', '.join(who)}" if who else "")
            return f"approved by {', '.join(who)}" if who else "allowed"
        if d.effect == "deny" and self.overridden_by is None:
            return f"{d.summary}; needs an override by {_people(d.override_by)}"
        needed = d.approvals_required
        return f"needs {needed} approval{_s(needed)}, {len(self.approvals)} given"

    # --- who may do what ---------------------------------------------------------------

    def eligible(self, identity: Identity) -> str | None:
        """None when `identity` may approve now; otherwise why not."""
        closed = self._closed_reason()
        if closed is not None:
            return closed
        d = self.decision
        if d.effect == "deny" and d.approvals_required == 0:
            first = d.denying_rules[0]
            return (f"the step is denied by policy {first.name!r} ({first.level}); it needs an "
                    f"override by {_people(d.override_by)} with a reason, not an approval")
        if len(self.approvals) >= d.approvals_required:
            return (f"all {d.approvals_required} approval{_s(d.approvals_required)} are given; "
                    f"the step waits for an override of {_names(self._soft_rules())}")
        return self.approver_refusal(identity)

    def approver_refusal(self, identity: Identity) -> str | None:
        """Why `identity` cannot count as an approver here, whatever state the gate is in."""
        d = self.decision
        if d.separation_of_duties and identity.uid == self.initiator_uid:
            rules = [r for r in d.approval_rules if r.separation_of_duties]
            return (f"you started this run; {_policies(rules)} "
                    f"require{'s' if len(rules) == 1 else ''} someone else")
        if any(a.uid == identity.uid for a in self.approvals):
            return (f"you already approved; {len(self.approvals)} of {d.approvals_required} "
                    "given, needs someone else")
        return self._not_an_approver(identity)

    def why_not(self, identity: Identity) -> str | None:
        """None when `identity` can move this gate on now — approve it, or override the soft
        deny that holds it; otherwise why not. Read-only: asking changes nothing.

        `console status` shows each caller this for every open gate ("you may approve").
        """
        refusal = self.eligible(identity)
        if refusal is None or self.decision.effect != "deny":
            return refusal
        override = self.may_override(identity)
        if override is None:
            return None
        # All approvals given (or none asked): only the override is missing, so say why not.
        return override if len(self.approvals) >= self.decision.approvals_required else refusal

    def approve(self, identity: Identity, reason: str | None) -> Verdict:
        why = self.eligible(identity)
        if why is not None:
            return Verdict(False, why)
        text = (reason or "").strip()
        if self.decision.reason_required and not text:
            rules = [r for r in self.decision.approval_rules if r.reason_required]
            return Verdict(False, f"{_policies(rules)} require{'s' if len(rules) == 1 else ''} "
                                  "a reason to approve — give one (--reason TEXT)")
        self.approvals.append(self._given(identity, text or None))
        required = self.decision.approvals_required
        message = f"approved by {identity.user}: {len(self.approvals)} of {required} given"
        if self.satisfied:
            message += " — the step can run"
        elif len(self.approvals) >= required:
            message += f" — it still needs an override of {_names(self._soft_rules())}"
        return Verdict(True, message)

    def deny(self, identity: Identity, reason: str) -> Verdict:
        closed = self._closed_reason()
        if closed is not None:
            return Verdict(False, closed)
        if identity.uid != self.initiator_uid and not self._may_decide(identity):
            why = self._not_an_approver(identity) or self._override_refusal(identity)
            return Verdict(False, "only whoever started this run, an approver or an overrider "
                                  f"can deny this step — {why}")
        text = reason.strip()
        if not text:
            return Verdict(False, "a denial needs a reason — say why (--reason TEXT)")
        self.denied_by = self._given(identity, text)
        return Verdict(True, f"denied by {identity.user}: {text}")

    def may_override(self, identity: Identity) -> str | None:
        """None when `identity` may override this gate now; otherwise why not."""
        d = self.decision
        if d.effect != "deny":
            return f"there is nothing to override: the step is not denied ({d.summary})"
        if d.level == "hard":
            return f"policy {d.denying_rules[0].name!r} is hard: it cannot be overridden"
        closed = self._closed_reason()
        if closed is not None:
            return closed
        if self.overridden_by is not None:
            return f"already overridden by {self.overridden_by.user}"
        return self._override_refusal(identity)

    def override(self, identity: Identity, reason: str) -> Verdict:
        refusal = self.may_override(identity)
        if refusal is not None:
            return Verdict(False, refusal)
        d = self.decision
        text = reason.strip()
        if not text:
            return Verdict(False, "an override needs a reason — say why (--reason TEXT)")
        self.overridden_by = self._given(identity, text)
        message = f"overridden by {identity.user}: {_names(self._soft_rules())} lifted"
        missing = d.approvals_required - len(self.approvals)
        if missing > 0:
            message += f" — it still needs {missing} more approval{_s(missing)}"
        else:
            message += " — the step can run"
        return Verdict(True, message)

    # --- helpers -----------------------------------------------------------------------

    def _closed_reason(self) -> str | None:
        state = self.state
        if state == "open":
            return None
        if self.denied_by is not None:
            return (f"the gate is closed: {self.denied_by.user} denied it "
                    f"({self.denied_by.reason})")
        if state == "denied":
            hard = self.decision.denying_rules[0]
            return (f"the step is denied by policy {hard.name!r} (hard); no approval or "
                    "override can change that")
        if self.decision.effect == "allow":
            return "this step needs no approval"
        return f"the gate is already {state}"

    def _soft_rules(self) -> list[RuleOutcome]:
        return [r for r in self.decision.denying_rules if r.level == "soft"]

    def _not_an_approver(self, identity: Identity) -> str | None:
        for rule in self.decision.approval_rules:
            if rule.approvers and not any(identity.matches(a) for a in rule.approvers):
                return f"you are not {_membership(rule.approvers)} (policy {rule.name!r})"
        return None

    def _override_refusal(self, identity: Identity) -> str | None:
        for name, allowed in self.decision.override_sets:
            if not any(identity.matches(a) for a in allowed):
                return f"you cannot override policy {name!r}: only {_people(allowed)} may"
        return None

    def _may_decide(self, identity: Identity) -> bool:
        d = self.decision
        if d.approval_rules and self._not_an_approver(identity) is None:
            return True
        return bool(d.override_sets) and self._override_refusal(identity) is None

    def _given(self, identity: Identity, reason: str | None) -> GivenApproval:
        binding = {**self.binding, "uid": identity.uid}
        return GivenApproval(user=identity.user, uid=identity.uid, reason=reason, binding=binding)


def _membership(approvers: Sequence[str]) -> str:
    """("alice", "@sre", "@release") -> "alice or in @sre or @release"."""
    users = [a for a in approvers if not a.startswith("@")]
    groups = [a for a in approvers if a.startswith("@")]
    parts = [*users]
    if groups:
        parts.append("in " + " or ".join(groups))
    return " or ".join(parts)


def _people(approvers: Sequence[str]) -> str:
    return ", ".join(approvers) if approvers else "no one"


def _policies(rules: Sequence[RuleOutcome]) -> str:
    return ("policy " if len(rules) == 1 else "policies ") + _names(rules)


def _names(rules: Sequence[RuleOutcome]) -> str:
    quoted = [repr(r.name) for r in rules]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _s(count: int) -> str:
    return "" if count == 1 else "s"
