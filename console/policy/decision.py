"""A policy Decision: what every matching rule said about one step, combined.

The strictest wins — deny > require_approval > allow — and the result never depends on the
order rules were written in: outcomes are sorted before they are combined, and every
combination (max, min, union, any) is order-free.

Levels (after Sentinel): an `advisory` rule only warns, whatever its effect; a `soft` deny
can be overridden, with a reason, by someone named in every soft deny's `override_by`; a
`hard` deny cannot be overridden. A deny keeps the approval requirements of the matching
require_approval rules: overriding a soft deny lifts the deny, not the approvals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

Effect = Literal["allow", "require_approval", "deny"]
Level = Literal["advisory", "soft", "hard"]
STRICTNESS: Mapping[str, int] = {"advisory": 0, "soft": 1, "hard": 2}


@dataclass(frozen=True)
class RuleOutcome:
    """One rule that matched a step, and why it matched."""

    name: str
    effect: Effect
    level: Level
    reason: str
    approvals: int
    approvers: tuple[str, ...]
    separation_of_duties: bool
    reason_required: bool
    timeout_s: float | None
    override_by: tuple[str, ...]
    origin: str

    @property
    def enforced(self) -> bool:
        return self.level != "advisory"

    def sort_key(self) -> tuple[Any, ...]:
        return (
            self.name, self.origin, self.effect, self.level, self.reason, self.approvals,
            self.approvers, self.separation_of_duties, self.reason_required,
            -1.0 if self.timeout_s is None else self.timeout_s, self.override_by,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "effect": self.effect,
            "level": self.level,
            "reason": self.reason,
            "approvals": self.approvals,
            "approvers": list(self.approvers),
            "separation_of_duties": self.separation_of_duties,
            "reason_required": self.reason_required,
            "timeout_s": self.timeout_s,
            "override_by": list(self.override_by),
            "origin": self.origin,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuleOutcome:
        timeout = data.get("timeout_s")
        return cls(
            name=str(data["name"]),
            effect=cast(Effect, data["effect"]),
            level=cast(Level, data["level"]),
            reason=str(data["reason"]),
            approvals=int(data["approvals"]),
            approvers=tuple(data.get("approvers") or ()),
            separation_of_duties=bool(data.get("separation_of_duties", False)),
            reason_required=bool(data.get("reason_required", False)),
            timeout_s=None if timeout is None else float(timeout),
            override_by=tuple(data.get("override_by") or ()),
            origin=str(data.get("origin", "")),
        )


@dataclass(frozen=True)
class Decision:
    """The combined answer for one step. Build it with `combine(outcomes)`."""

    effect: Effect
    level: Level | None  # for a deny: the strictest deny's level; otherwise None
    approvals_required: int
    approver_sets: tuple[tuple[str, ...], ...]  # an approver must satisfy every set
    separation_of_duties: bool
    reason_required: bool
    timeout_s: float | None
    override_by: tuple[str, ...]  # everyone a soft deny names; see `override_sets`
    rules: tuple[RuleOutcome, ...]
    warnings: tuple[str, ...]
    summary: str

    @property
    def denying_rules(self) -> tuple[RuleOutcome, ...]:
        """Enforced deny rules, strictest first, then by name."""
        denies = [r for r in self.rules if r.effect == "deny" and r.enforced]
        return tuple(sorted(denies, key=lambda r: (-STRICTNESS[r.level], r.sort_key())))

    @property
    def approval_rules(self) -> tuple[RuleOutcome, ...]:
        """Enforced require_approval rules, by name."""
        return tuple(r for r in self.rules if r.effect == "require_approval" and r.enforced)

    @property
    def override_sets(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(rule name, override_by) per soft deny: an overrider must be named by each."""
        return tuple((r.name, r.override_by) for r in self.denying_rules if r.level == "soft")

    @property
    def approvers(self) -> tuple[str, ...]:
        """Every name in the approver sets, once, for display (GateOpened.approvers)."""
        return _unique(name for group in self.approver_sets for name in group)

    @property
    def gated(self) -> bool:
        """True when the step must wait for a person (approvals or an override)."""
        return self.effect == "require_approval" or (self.effect == "deny" and self.level == "soft")

    def to_json(self) -> dict[str, Any]:
        return {
            "effect": self.effect,
            "level": self.level,
            "approvals_required": self.approvals_required,
            "approver_sets": [list(s) for s in self.approver_sets],
            "separation_of_duties": self.separation_of_duties,
            "reason_required": self.reason_required,
            "timeout_s": self.timeout_s,
            "override_by": list(self.override_by),
            "rules": [r.to_json() for r in self.rules],
            "warnings": list(self.warnings),
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        timeout = data.get("timeout_s")
        level = data.get("level")
        return cls(
            effect=cast(Effect, data["effect"]),
            level=None if level is None else cast(Level, level),
            approvals_required=int(data["approvals_required"]),
            approver_sets=tuple(tuple(s) for s in data.get("approver_sets") or ()),
            separation_of_duties=bool(data.get("separation_of_duties", False)),
            reason_required=bool(data.get("reason_required", False)),
            timeout_s=None if timeout is None else float(timeout),
            override_by=tuple(data.get("override_by") or ()),
            rules=tuple(RuleOutcome.from_json(r) for r in data.get("rules") or ()),
            warnings=tuple(data.get("warnings") or ()),
            summary=str(data.get("summary", "")),
        )


def combine(outcomes: Iterable[RuleOutcome]) -> Decision:
    """Combine the outcomes of every matching rule; the order they come in is irrelevant."""
    rules = tuple(sorted(outcomes, key=RuleOutcome.sort_key))
    denies = sorted(
        (r for r in rules if r.effect == "deny" and r.enforced),
        key=lambda r: (-STRICTNESS[r.level], r.sort_key()),
    )
    approvals = [r for r in rules if r.effect == "require_approval" and r.enforced]
    warnings = tuple(_warning(r) for r in rules if not r.enforced and r.effect != "allow")

    effect: Effect = "deny" if denies else "require_approval" if approvals else "allow"
    level: Level | None = denies[0].level if denies else None
    soft_denies = [r for r in denies if r.level == "soft"]
    waits_on = [*approvals, *soft_denies] if level != "hard" else approvals
    timeouts = [r.timeout_s for r in waits_on if r.timeout_s is not None]
    decision = Decision(
        effect=effect,
        level=level,
        approvals_required=max((r.approvals for r in approvals), default=0),
        approver_sets=tuple(dict.fromkeys(r.approvers for r in approvals if r.approvers)),
        separation_of_duties=any(r.separation_of_duties for r in approvals),
        reason_required=any(r.reason_required for r in approvals),
        timeout_s=min(timeouts) if timeouts else None,
        override_by=(
            () if level == "hard" else _unique(n for r in soft_denies for n in r.override_by)
        ),
        rules=rules,
        warnings=warnings,
        summary="",
    )
    return _with_summary(decision, denies)


def _with_summary(decision: Decision, denies: list[RuleOutcome]) -> Decision:
    if denies:
        first = denies[0]
        text = f"denied by {first.name!r} ({first.level})"
        if len(denies) > 1:
            text += f" and {len(denies) - 1} more"
    elif decision.effect == "require_approval":
        n = decision.approvals_required
        text = f"needs {n} approval{'s' if n != 1 else ''}"
        if decision.approvers:
            text += f" ({', '.join(decision.approvers)})"
    else:
        text = "allowed"
    if decision.warnings:
        count = len(decision.warnings)
        text += f", {count} warning{'s' if count != 1 else ''}"
    return replace(decision, summary=text)


def _warning(rule: RuleOutcome) -> str:
    if rule.effect == "deny":
        return f"advisory {rule.name!r} would deny this step: {rule.reason}"
    n = rule.approvals
    return (
        f"advisory {rule.name!r} would ask for {n} approval{'s' if n != 1 else ''}: {rule.reason}"
    )


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))
