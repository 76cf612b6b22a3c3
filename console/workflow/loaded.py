"""A workflow as loaded: the model, its policy rules (own and shared) and file hashes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from console.workflow.expressions import CompiledCondition
from console.workflow.model import PolicyRule, Step, Workflow


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

    @property
    def name(self) -> str:
        return self.model.workflow.name

    @property
    def steps(self) -> Mapping[str, Step]:
        return self.model.steps

    @property
    def base_dir(self) -> Path:
        return self.path.parent
