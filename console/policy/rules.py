"""The `[[policy]]` rules of a loaded workflow, evaluated for one step at a time.

A rule matches a step when its `match` table does (any listed tag, every glob family that is
given), its `during` window contains now, and its `when` condition is true. The step's own
`approval` table counts as a require_approval rule named "step <id> approval". What does
not depend on the moment — tags and globs — is worked out once, in the constructor, so that
`decide()` only looks at windows and conditions.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from console.policy.decision import Decision, RuleOutcome, combine
from console.policy.identity import Identity
from console.policy.windows import describe_window, in_window
from console.workflow.expressions import CompiledCondition, ConditionEvaluationError
from console.workflow.loaded import LoadedWorkflow, SourcedRule
from console.workflow.spec import Match, PolicyRule, Step

# What can differ between steps or over a run: no result is shared across steps for these.
_PER_STEP = frozenset({"step", "now", "steps"})
_SHARED_RESULTS_LIMIT = 4096
_STEP_READ = re.compile(r"\bsteps\s*(?:\.\s*|\[\s*['\"])([a-z0-9][a-z0-9_-]*)")


@dataclass
class EvalContext:
    """What a decision may depend on besides the workflow: the run and the moment."""

    params: Mapping[str, object]
    run_id: str
    initiator: Identity
    now: datetime  # timezone-aware
    workflow: str
    # Finished steps' outputs, as conditions read them (`steps.plan.outputs.destroy_count`).
    steps: Mapping[str, Any] = field(default_factory=dict)
    # `console plan`: leave out the rules that read outputs (decided once the steps ran).
    without_outputs: bool = False


@dataclass(frozen=True)
class _Candidate:
    """A rule whose match table fits a step; its window and condition are still to judge."""

    sourced: SourcedRule
    match_reason: str


class PolicySet:
    def __init__(self, loaded: LoadedWorkflow) -> None:
        self._loaded = loaded
        self._candidates: dict[str, tuple[_Candidate, ...]] = {}
        self._fixed: dict[str, tuple[RuleOutcome, ...]] = {}
        self._fixed_decisions: dict[str, Decision] = {}
        # Results of conditions that read neither `step` nor `now`: the same for every step
        # of a run, so one evaluation serves them all (True/False, or the error message).
        self._shared_results: dict[Hashable, bool | str] = {}
        # Most steps match no rule: they share one decision, combined once (not per step).
        unruled: Decision | None = None
        for step_id, step in loaded.steps.items():
            fixed: list[RuleOutcome] = []
            dynamic: list[_Candidate] = []
            for sourced in loaded.rules:
                why = match_reason(sourced.rule.match, step_id, step)
                if why is None:
                    continue
                if sourced.rule.during is None and sourced.condition is None:
                    fixed.append(_outcome(sourced.rule, why, str(sourced.origin)))
                else:
                    dynamic.append(_Candidate(sourced, why))
            if step.approval is not None:
                fixed.append(_step_approval(step_id, step, str(loaded.path)))
            self._fixed[step_id] = tuple(fixed)
            self._candidates[step_id] = tuple(dynamic)
            if not dynamic and fixed:
                self._fixed_decisions[step_id] = combine(fixed)
            elif not dynamic:
                unruled = unruled or combine(())
                self._fixed_decisions[step_id] = unruled

    @property
    def loaded(self) -> LoadedWorkflow:
        return self._loaded

    def _remember(self, key: Hashable, result: bool | str) -> None:
        if len(self._shared_results) >= _SHARED_RESULTS_LIMIT:
            self._shared_results.clear()
        self._shared_results[key] = result

    def settled(self, step_id: str) -> Decision | None:
        """The decision for `step_id` when it cannot change over a run (no window, no
        condition): no context is needed to ask for it."""
        return self._fixed_decisions.get(step_id)

    def decide(self, step_id: str, ctx: EvalContext) -> Decision:
        """The decision for `step_id` as of `ctx.now`, for a run started by `ctx.initiator`."""
        if step_id not in self._fixed:
            raise KeyError(f"no step {step_id!r} in workflow {self._loaded.name!r}")
        settled = self._fixed_decisions.get(step_id)
        if settled is not None:
            return settled
        outcomes = list(self._fixed[step_id])
        cel_context: dict[str, Any] | None = None
        for candidate in self._candidates[step_id]:
            rule = candidate.sourced.rule
            reasons = [candidate.match_reason]
            if rule.during is not None:
                if not in_window(rule.during, ctx.now):
                    continue
                reasons.append(f"now is within {describe_window(rule.during)}")
            condition = candidate.sourced.condition
            if condition is not None and ctx.without_outputs and "steps" in condition.reads:
                continue
            if condition is not None:
                key = _shared_key(condition, ctx)
                holds = self._shared_results.get(key) if key is not None else None
                if holds is None:
                    if cel_context is None:
                        cel_context = condition_context(step_id, self._loaded.steps[step_id], ctx)
                    try:
                        holds = condition.evaluate(cel_context)
                    except ConditionEvaluationError as exc:
                        holds = str(exc)
                    if key is not None:
                        self._remember(key, holds)
                if isinstance(holds, str):
                    outcomes.append(_failed_closed(rule, str(candidate.sourced.origin), holds))
                    continue
                if not holds:
                    continue
                reasons.append(f"`{condition.source}` is true")
            outcomes.append(_outcome(rule, "; ".join(reasons), str(candidate.sourced.origin)))
        return combine(outcomes)


def match_reason(match: Match | None, step_id: str, step: Step) -> str | None:
    """Why a match table fits a step ("tag 'prod'", "id matches 'deploy-*'"), or None."""
    if match is None or (not match.tags and not match.steps):
        return "applies to every step"
    parts: list[str] = []
    if match.tags:
        shared = [tag for tag in match.tags if tag in step.tags]
        if not shared:
            return None
        parts.append("tag " + ", ".join(repr(t) for t in shared))
    if match.steps:
        glob = next((g for g in match.steps if fnmatchcase(step_id, g)), None)
        if glob is None:
            return None
        parts.append(f"id {step_id!r}" + ("" if glob == step_id else f" matching {glob!r}"))
    return "step has " + " and ".join(parts)


def condition_context(step_id: str, step: Step, ctx: EvalContext) -> dict[str, Any]:
    """The names a `when` condition sees (documented in docs/policy.md)."""
    now = ctx.now.astimezone(UTC)
    return {
        "step": {
            "id": step_id,
            "tags": list(step.tags),
            "needs": list(step.needs),
            "description": step.description,
        },
        "params": dict(ctx.params),
        "run": {"id": ctx.run_id, "workflow": ctx.workflow, "initiator": ctx.initiator.user},
        "user": {
            "name": ctx.initiator.user,
            "uid": ctx.initiator.uid,
            "groups": sorted(ctx.initiator.groups),
        },
        "now": now,
        "steps": dict(ctx.steps),
    }


def _shared_key(condition: CompiledCondition, ctx: EvalContext) -> Hashable | None:
    """A cache key for a condition whose result cannot differ between steps, else None."""
    if condition.reads & _PER_STEP:
        return None
    key = (condition.source, ctx.run_id, ctx.workflow, ctx.initiator,
           tuple(sorted(ctx.params.items())))
    try:
        hash(key)
    except TypeError:  # a param value that is not hashable: evaluate it each time
        return None
    return key


def _outcome(rule: PolicyRule, reason: str, origin: str) -> RuleOutcome:
    asks = rule.effect == "require_approval"
    if rule.description:
        reason = f"{rule.description} ({reason})"
    return RuleOutcome(
        name=rule.name,
        effect=rule.effect,
        level=rule.level,
        reason=reason,
        approvals=rule.approvals if asks else 0,
        approvers=tuple(rule.approvers) if asks else (),
        separation_of_duties=rule.separation_of_duties if asks else False,
        reason_required=rule.reason if asks else False,
        timeout_s=rule.timeout,
        override_by=tuple(rule.override_by),
        origin=origin,
    )


def _failed_closed(rule: PolicyRule, origin: str, error: str) -> RuleOutcome:
    return RuleOutcome(
        name=rule.name,
        effect="deny",
        level="hard",
        reason=f"its condition could not be evaluated, so the step is denied: {error}",
        approvals=0,
        approvers=(),
        separation_of_duties=False,
        reason_required=False,
        timeout_s=None,
        override_by=(),
        origin=origin,
    )


def _step_approval(step_id: str, step: Step, origin: str) -> RuleOutcome:
    assert step.approval is not None
    approval = step.approval
    return RuleOutcome(
        name=f"step {step_id} approval",
        effect="require_approval",
        level="hard",
        reason=f"[steps.{step_id}] has an approval table",
        approvals=approval.approvals,
        approvers=tuple(approval.approvers),
        separation_of_duties=approval.separation_of_duties,
        reason_required=approval.reason,
        timeout_s=approval.timeout,
        override_by=(),
        origin=origin,
    )


def output_dependencies(loaded: LoadedWorkflow, step_id: str) -> list[tuple[str, list[str]]]:
    """The rules matching `step_id` whose `when` reads outputs: (rule name, the steps whose
    outputs it reads), for `console plan`'s "decided after step X"."""
    step = loaded.steps[step_id]
    found: list[tuple[str, list[str]]] = []
    for sourced in loaded.rules:
        condition = sourced.condition
        if condition is None or "steps" not in condition.reads:
            continue
        if match_reason(sourced.rule.match, step_id, step) is None:
            continue
        names = list(dict.fromkeys(_STEP_READ.findall(condition.source)))
        found.append((sourced.rule.name, names))
    return found
