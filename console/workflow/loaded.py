"""A workflow as loaded: the model, its policy rules (own and shared) and file hashes;
and `assemble`, which builds one from what validation accepted (console/workflow/loader.py
validates; console/workflow/plan_cache.py keeps what it accepted for the next run)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.workflow.expressions import CompiledCondition, compile_condition
from console.workflow.fleet import DEFAULT_STRATEGY, Inventory, merge_inventory
from console.workflow.matrix import combination_key, combinations
from console.workflow.spec import (
    PolicyRule,
    Step,
    Strategy,
    Workflow,
    inventory_from_dump,
    policy_from_dump,
    workflow_from_dump,
)


@dataclass(frozen=True)
class SourcedRule:
    """A `[[policy]]` rule with the file it came from and its compiled `when`."""

    rule: PolicyRule
    origin: Path
    condition: CompiledCondition | None


@dataclass(frozen=True)
class LoadedWorkflow:
    path: Path  # absolute
    model: Workflow
    rules: tuple[SourcedRule, ...]  # shared policy files first, then the workflow's own
    file_hashes: Mapping[str, str]  # absolute path -> SHA-256 hex; the workflow first
    inventory: Inventory = field(default_factory=Inventory)
    # Steps with `on`: the hosts each runs on, in inventory (or listed) order.
    targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Steps with `matrix`: their combinations' keys (`region=eu-west`), in order.
    matrices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Every step run as instances -> its instance keys (hosts, or combinations)."""
        return {**self.targets, **self.matrices}

    @property
    def name(self) -> str:
        return self.model.workflow.name

    @property
    def steps(self) -> Mapping[str, Step]:
        return self.model.steps

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def strategy(self, step_id: str) -> Strategy:
        return self.model.steps[step_id].strategy or DEFAULT_STRATEGY


@dataclass(frozen=True)
class Validated:
    """What validating a workflow and the files it names accepted, as the models'
    `model_dump()`s: plain data, all `assemble` needs."""

    path: Path  # the workflow, absolute
    workflow: dict[str, Any]
    # Each shared policy file that was read, in the order the workflow names them: its rules.
    policy_files: tuple[tuple[Path, list[dict[str, Any]]], ...]
    inventory: tuple[Path, dict[str, Any]] | None  # `[workflow] inventory`, when there is one
    file_hashes: Mapping[str, str]  # absolute path -> SHA-256 hex; the workflow first


def assemble(validated: Validated) -> LoadedWorkflow:
    """The LoadedWorkflow that `validated` describes: relative paths made absolute (against
    the files' places and $HOME as they are now), hosts resolved, conditions compiled."""
    model = workflow_from_dump(validated.workflow)
    rules: list[SourcedRule] = []
    for origin, dumped in validated.policy_files:
        rules += _sourced(policy_from_dump(dumped), origin)
    rules += _sourced(model.policy, validated.path)
    shared_path, shared = (None, None) if validated.inventory is None else (
        validated.inventory[0], inventory_from_dump(validated.inventory[1]))
    inventory = merge_inventory(model, validated.path, shared, shared_path)
    targets = {sid: inventory.resolve(step.on) for sid, step in model.steps.items()
               if step.on is not None}
    matrices = {sid: tuple(combination_key(c) for c in combinations(step.matrix))
                for sid, step in model.steps.items() if step.matrix is not None}
    return LoadedWorkflow(path=validated.path, model=model, rules=tuple(rules),
                          file_hashes=dict(validated.file_hashes), inventory=inventory,
                          targets=targets, matrices=matrices)


def _sourced(rules: list[PolicyRule], origin: Path) -> list[SourcedRule]:
    return [SourcedRule(rule, origin, compile_condition(rule.when) if rule.when else None)
            for rule in rules]
