"""A workflow as loaded: the model, its policy rules (own and shared) and file hashes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from console.workflow.expressions import CompiledCondition
from console.workflow.fleet import DEFAULT_STRATEGY, Inventory
from console.workflow.model import PolicyRule, Step, Strategy, Workflow


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
