"""Turn pydantic validation errors into problems a person can fix in their TOML file."""

from __future__ import annotations

import datetime
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from console.workflow.problems import FileProblems
from console.workflow.suggest import closest, did_you_mean

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_MISSING_FIXES = {
    "workflow": 'add a [workflow] table with name = "..."',
    "steps": 'add at least one [steps.NAME] table with run = "..."',
    "run": 'add run = "a shell command" or run = ["program", "arg"]',
    "name": 'add name = "..."',
    "effect": 'add effect = "allow", "require_approval" or "deny"',
    "type": 'add type = "string", "int", "bool" or "choice"',
}
_PATTERN_FIXES = {
    "steps": "a step id uses lowercase letters, digits, `-` and `_`, starting with a letter "
    "or digit — rename it",
    "needs": "a step id uses lowercase letters, digits, `-` and `_`, starting with a letter "
    "or digit — name the step as it is written in [steps.ID]",
    "params": "a param name uses letters, digits and `_`, not starting with a digit "
    "(it becomes $PARAM_NAME) — rename it",
    "from": 'write a 24-hour time such as "15:00"',
    "to": 'write a 24-hour time such as "23:59"',
    "approvers": "an approver is a user name or @group — write it as \"alice\" or \"@sre\"",
    "override_by": "an overrider is a user name or @group — write it as \"alice\" or \"@sre\"",
    "lock": "a lock name uses letters, digits, `.`, `_` and `-` — rename it",
}


def toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.date | datetime.time):
        return "a date/time"
    return type(value).__name__


@dataclass(frozen=True)
class _Located:
    path: tuple[str | int, ...]  # the part of the error's loc that exists in the data
    error: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return str(self.error["type"])


def _locate(data: object, loc: Sequence[str | int], *, missing: bool) -> tuple[str | int, ...]:
    """The error's path through the data; union tags and `[key]` markers are skipped."""
    current = data
    path: list[str | int] = []
    steps = loc[:-1] if missing else loc
    for element in steps:
        found, child = _child(current, element)
        if found:  # else a union member's tag or a `[key]` marker, not part of the data
            current = child
            path.append(element)
    if missing:
        path.append(loc[-1])
    return tuple(path)


def _child(value: object, element: str | int) -> tuple[bool, object]:
    if isinstance(value, dict) and isinstance(element, str) and element in value:
        return True, value[element]
    if isinstance(value, list) and isinstance(element, int) and 0 <= element < len(value):
        return True, value[element]
    return False, None


def _value_at(data: object, path: Sequence[str | int]) -> object:
    current = data
    for element in path:
        if isinstance(current, dict) and isinstance(element, str):
            current = current.get(element)
        elif isinstance(current, list) and isinstance(element, int) and element < len(current):
            current = current[element]
        else:
            return None
    return current


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            annotation = models[0] if models else members[0]
        else:
            return annotation


def model_at(root: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model that describes the table at `path` (to list its keys), if any."""
    current: Any = root
    for element in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(element, str):
                return None
            fields = {(f.alias or name): f for name, f in current.model_fields.items()}
            if element not in fields:
                return None
            current = fields[element].annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def explain(exc: ValidationError, data: object, root: type[BaseModel], out: FileProblems) -> None:
    located = [
        _Located(_locate(data, e["loc"], missing=e["type"] == "missing"), e)
        for e in exc.errors(include_url=False)
    ]
    # In a union, the branch that got deeper into the value is the one the person meant.
    located = [
        item
        for item in located
        if not (
            item.kind in _EXPECTED
            and any(
                other.path[: len(item.path)] == item.path and len(other.path) > len(item.path)
                for other in located
            )
        )
    ]
    groups: dict[tuple[str | int, ...], list[_Located]] = {}
    for item in located:
        groups.setdefault(item.path, []).append(item)
    for path, items in groups.items():
        type_errors = [i for i in items if i.kind in _EXPECTED]
        others = [i for i in items if i.kind not in _EXPECTED]
        for item in others:
            _explain_one(item, data, root, out)
        if type_errors and not others:
            _explain_types(path, [i.kind for i in type_errors], data, out)


def _explain_types(
    path: tuple[str | int, ...], kinds: list[str], data: object, out: FileProblems
) -> None:
    expected = list(dict.fromkeys(_EXPECTED[k] for k in kinds))
    value = _value_at(data, path)
    wanted = expected[0] if len(expected) == 1 else ", ".join(expected[:-1]) + " or " + expected[-1]
    what = f"expected {wanted}, got {toml_type(value)}"
    key = path[-1] if path else ""
    if "a table" in expected and path and path[0] == "steps" and len(path) == 2:
        fix = f'write it as a table: [steps.{key}] with run = "..."'
    elif "an array" in expected and isinstance(value, str):
        fix = f'write it as an array: {key} = ["{value}"]'
    elif key == "run":
        fix = 'use run = "a shell command" or run = ["program", "arg", ...]'
    elif "a string" in expected and not isinstance(value, dict | list):
        fix = f'quote it: "{value}"'
    else:
        fix = f"change it to {wanted}"
    out.add(path, what, fix, at_value=True)


def _explain_one(item: _Located, data: object, root: type[BaseModel], out: FileProblems) -> None:
    error, path, kind = item.error, item.path, item.kind
    key = path[-1] if path else ""
    parent = path[:-1]
    if kind == "missing":
        where = parent
        out.add(where, f"missing `{key}`", _MISSING_FIXES.get(str(key), f"add `{key} = ...`"))
    elif kind == "extra_forbidden":
        model = model_at(root, parent)
        options = allowed_keys(model) if model is not None else []
        out.add(path, f"unknown key `{key}`", did_you_mean(str(key), options))
    elif kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        choices = [c.strip(" '") for c in expected.replace(" or ", ", ").split(",")]
        value = error.get("input")
        guess = closest(value, choices) if isinstance(value, str) else None
        fix = f"did you mean '{guess}'?" if guess else f"use one of {expected}"
        out.add(path, f"{value!r} is not allowed here", fix, at_value=True)
    elif kind == "string_pattern_mismatch":
        _explain_pattern(item, out)
    elif kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
        what, _, fix = message.partition(" — ")
        out.add(path, what, fix or "change the value", at_value=True)
    elif kind in ("string_too_short", "too_short"):
        out.add(path, "must not be empty", "give it a value", at_value=True)
    elif kind in ("string_too_long", "too_long"):
        limit = error.get("ctx", {}).get("max_length")
        out.add(path, f"is too long (at most {limit})", "shorten it", at_value=True)
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = str(error["msg"]).removeprefix("Input should be ")
        out.add(path, f"{error.get('input')!r} is out of range", f"use a value {bound}",
                at_value=True)
    else:
        out.add(path, str(error["msg"]), "change the value", at_value=True)


def _explain_pattern(item: _Located, out: FileProblems) -> None:
    path = item.path
    is_key = "[key]" in item.error["loc"]
    value = item.error.get("input")
    if is_key:
        context = path[0] if path else ""
    elif len(path) >= 2 and isinstance(path[-1], int):
        context = path[-2]
    else:
        context = path[-1] if path else ""
    hint = _PATTERN_FIXES.get(str(context), f"it must match {item.error['ctx']['pattern']}")
    what, sep, fix = hint.partition(" — ")
    if sep:
        out.add(path, f"{value!r}: {what}", fix, at_value=not is_key)
    else:
        out.add(path, f"{value!r} is not in the expected form", hint, at_value=not is_key)
