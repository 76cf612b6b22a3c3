"""The records a run holds (console/workflow/spec.py) match the models that validate
(console/workflow/model.py): the same fields, the same defaults, built from any dump."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli
from pydantic import BaseModel

from console.workflow import model, spec
from tests.conftest import WORKFLOWS

PAIRS = [(getattr(model, name), getattr(spec, name)) for name in (
    "WorkflowMeta", "Param", "Retry", "Approval", "Host", "Strategy", "OutputSpec", "Step",
    "Match", "Window", "PolicyRule", "Workflow", "InventoryFile",
)]


@pytest.mark.parametrize("validating, record", PAIRS, ids=[p[1].__name__ for p in PAIRS])
def test_same_fields_and_defaults(validating: type[BaseModel], record: Any) -> None:
    fields = validating.model_fields
    assert set(record._fields) == set(fields)
    for name, info in fields.items():
        if info.is_required():
            assert name not in record._field_defaults, name
        else:
            default = info.get_default(call_default_factory=True, validated_data={})
            assert plain(record._field_defaults[name]) == plain(default), name


def plain(value: Any) -> Any:
    """Models and records alike as dicts, lists and scalars."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_carries_every_field(path: Path) -> None:
    data = tomli.loads(path.read_text())
    if "steps" not in data:
        pytest.skip("not a workflow")
    dumped = model.Workflow.model_validate(data).model_dump()
    built = spec.workflow_from_dump(dumped)
    assert plain(built) == dumped
