"""A run's params: `-p key=value` (or the UI's form) checked against the workflow's
declarations, defaults filled in. Every run checks them, cached plan or not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.errors import ParamError
from console.workflow.loaded import LoadedWorkflow
from console.workflow.spec import Workflow, coerce_param_value


def resolve_params(
    workflow: Workflow | LoadedWorkflow, given: Mapping[str, str]
) -> dict[str, str | int | bool]:
    """Check `-p key=value` pairs against the declarations; defaults fill the rest.

    A param that is neither given, required nor defaulted is left out. Raises ParamError
    listing every unknown, missing or ill-fitting value with its fix.
    """
    model = workflow.model if isinstance(workflow, LoadedWorkflow) else workflow
    declared = model.params
    problems: list[str] = []
    values: dict[str, str | int | bool] = {}
    for name, raw in given.items():
        if name not in declared:
            from console.workflow.suggest import did_you_mean

            hint = (did_you_mean(name, list(declared), listing="declared params")
                    if declared else "this workflow declares no params")
            problems.append(f"-p {name}={raw}: unknown param `{name}` — {hint}")
    for name, param in declared.items():
        if name in given:
            try:
                values[name] = coerce_param_value(param, given[name])
            except ValueError as exc:
                what, _, fix = str(exc).partition(" — ")
                problems.append(f"-p {name}={given[name]}: {what} — "
                                f"{fix or _param_fix(name, param)}")
        elif param.default is not None:
            values[name] = coerce_param_value(param, param.default)
        elif param.is_required:
            problems.append(f"missing param `{name}` ({_describe(param)}) — "
                            f"pass -p {name}=VALUE")
    if problems:
        raise ParamError("\n".join(problems))
    return values


def _describe(param: Any) -> str:
    if param.type == "choice":
        return "one of " + ", ".join(param.choices or [])
    if param.pattern:
        return f"a string matching {param.pattern}"
    return {"string": "a string", "int": "a whole number", "bool": "true or false"}[param.type]


def _param_fix(name: str, param: Any) -> str:
    return f"pass -p {name}=VALUE with {_describe(param)}"
