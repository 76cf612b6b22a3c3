"""TOML -> LoadedWorkflow. Every problem found is reported at once, each with its place.

A message reads `FILE:LINE:COL: table.key: what is wrong — how to fix it`; at most 20 are
shown. Reading is bounded (size, nesting) so a hostile or broken file fails fast and clearly.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tomli as tomllib  # the compiled parser: 2-3x tomllib on large files
from pydantic import BaseModel, ValidationError

from console.errors import WorkflowError
from console.workflow.checks import check_policies, check_steps
from console.workflow.explain import explain
from console.workflow.inventory import (
    check_duplicate_hosts,
    check_host_tables,
    check_targets,
    raw_groups,
)
from console.workflow.loaded import LoadedWorkflow, Validated, assemble
from console.workflow.locate import Position, deepest_bracket, position_of_offset
from console.workflow.model import InventoryFile, PolicyFile, Workflow
from console.workflow.problems import FileProblems, Problem, render_all

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NESTING = 32
_Model = TypeVar("_Model", bound=BaseModel)
_TOML_POSITION = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"^(.*) \(at end of document\)$")
_TOML_FIXES = {
    "Cannot overwrite a value": "this key is already set above; keep one of the two",
    "Cannot declare": "this table is declared twice; merge the two, or rename one",
    "Unescaped '\\' in a string": "double the backslash, or use a 'literal string' "
    "(single quotes) for regular expressions and paths",
    "Invalid value": "check the value: strings need quotes, arrays [ ], tables { }",
    "Expected '=' after a key in a key/value pair": "write key = value, one per line",
}


class _Unusable(Exception):
    """A file that cannot be read or parsed at all; nothing further can be checked."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = problems


@dataclass
class _Source:
    path: Path  # absolute
    shown: str  # as a person would type it, for messages
    raw: bytes
    text: str


def load_workflow(path: str | Path) -> LoadedWorkflow:
    """Read, parse and check a workflow and its shared policy files; raise WorkflowError."""
    return assemble(validate_workflow(path))


def validate_workflow(path: str | Path) -> Validated:
    """Read, parse and check a workflow and the files it names; what they hold, as plain
    data; raise WorkflowError with every problem found."""
    shown = str(path)
    try:
        source = _read(Path(os.path.abspath(path)), shown, referenced_from=None)
        data = _parse(source)
    except _Unusable as exc:
        raise WorkflowError(render_all(exc.problems)) from None
    workflow_problems = FileProblems(source.shown, source.text)
    if "hosts" in data and not {"workflow", "steps"} & set(data):
        raise WorkflowError(render_all([Problem(
            source.shown, None, "", "this is an inventory file (hosts only), not a workflow",
            'a workflow names it with [workflow] inventory = "' + source.path.name
            + '"; validate that workflow')]))
    model = _validate(Workflow, data, workflow_problems)
    check_steps(data, workflow_problems)
    check_policies(data, workflow_problems)
    if not workflow_problems.problems and not model_has_steps(model):
        workflow_problems.add(("steps",), "there are no steps",
                              'add a [steps.NAME] table with run = "..."')

    hashes = {str(source.path): hashlib.sha256(source.raw).hexdigest()}
    policy_files: list[tuple[Path, list[dict[str, Any]]]] = []
    policy_problems: list[Problem] = []
    names: dict[str, tuple[FileProblems, int]] = {}
    for index, entry in enumerate(_policy_entries(data)):
        found = _read_referenced(source, shown, entry, ("workflow", "policies", index),
                                 "shared policy file", workflow_problems, policy_problems)
        if found is None:
            continue
        policy_source, policy_data = found
        policy_path = policy_source.path
        hashes.setdefault(str(policy_path), hashlib.sha256(policy_source.raw).hexdigest())
        rules = _load_policy_file(policy_source, policy_data, names, policy_problems)
        if rules is not None:
            policy_files.append((policy_path, rules))
    _check_duplicate_names(data, workflow_problems, names)
    inventory, inventory_problems = _load_hosts(source, shown, data, workflow_problems, hashes)

    problems = workflow_problems.sorted() + policy_problems + inventory_problems
    if problems or model is None:
        raise WorkflowError(render_all(problems))
    return Validated(path=source.path, workflow=model.model_dump(),
                     policy_files=tuple(policy_files), inventory=inventory,
                     file_hashes=hashes)


def _load_hosts(
    source: _Source, shown: str, data: dict[str, Any], out: FileProblems, hashes: dict[str, str]
) -> tuple[tuple[Path, dict[str, Any]] | None, list[Problem]]:
    """The shared inventory file (its path and what it holds), checked, with the workflow's
    own hosts; steps' `on` checked against them all."""
    problems: list[Problem] = []
    own = {k: v for k, v in _dict(data.get("hosts")).items()}
    shared_raw: dict[str, Any] = {}
    shared: tuple[Path, dict[str, Any]] | None = None
    meta = _dict(data.get("workflow"))
    entry = meta.get("inventory")
    check_host_tables(data, out)
    found = (_read_referenced(source, shown, entry, ("workflow", "inventory"),
                              "inventory file", out, problems)
             if isinstance(entry, str) else None)
    if found is not None:
        inventory_source, inventory_data = found
        shared_path = inventory_source.path
        hashes.setdefault(str(shared_path), hashlib.sha256(inventory_source.raw).hexdigest())
        inventory_out = FileProblems(inventory_source.shown, inventory_source.text)
        validated = _validate(InventoryFile, inventory_data, inventory_out)
        if validated is not None:
            shared = (shared_path, validated.model_dump())
        check_host_tables(inventory_data, inventory_out)
        shared_raw = _dict(inventory_data.get("hosts"))
        check_duplicate_hosts(own, shared_raw, inventory_out, out)
        problems += inventory_out.sorted()
    all_hosts = {**shared_raw, **own}
    check_targets(data, all_hosts, raw_groups(shared_raw, own), out)
    return shared, problems


def _read_referenced(
    source: _Source, shown: str, entry: str, named_at: tuple[str | int, ...], kind: str,
    out: FileProblems, problems: list[Problem],
) -> tuple[_Source, dict[str, Any]] | None:
    """A file the workflow names (relative to it), read and parsed; None if it cannot be.
    A missing or unreadable file is reported where the workflow names it."""
    path = Path(os.path.abspath(source.path.parent / entry))
    shown_path = os.path.normpath(os.path.join(os.path.dirname(shown), entry))
    try:
        referenced = _read(path, shown_path, referenced_from=entry)
        return referenced, _parse(referenced)
    except _Unusable as exc:
        for problem in exc.problems:
            if problem.position is None:
                out.add(named_at, f"{kind} {shown_path}: {problem.what}", problem.fix,
                        at_value=True)
            else:
                problems.append(problem)
        return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def model_has_steps(model: Workflow | None) -> bool:
    return model is None or bool(model.steps)


def _policy_entries(data: dict[str, Any]) -> list[str]:
    meta = data.get("workflow")
    entries = meta.get("policies") if isinstance(meta, dict) else None
    return [e for e in entries if isinstance(e, str)] if isinstance(entries, list) else []


def _load_policy_file(source: _Source, data: dict[str, Any],
                      names: dict[str, tuple[FileProblems, int]],
                      problems: list[Problem]) -> list[dict[str, Any]] | None:
    """A shared policy file's rules, as validated; None if it has problems (added)."""
    out = FileProblems(source.shown, source.text)
    model = _validate(PolicyFile, data, out)
    check_policies(data, out)
    _check_duplicate_names(data, out, names)
    problems += out.sorted()
    return model.model_dump()["policy"] if model is not None else None


def _check_duplicate_names(data: dict[str, Any], out: FileProblems,
                           names: dict[str, tuple[FileProblems, int]]) -> None:
    rules = data.get("policy")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        name = rule.get("name") if isinstance(rule, dict) else None
        if not isinstance(name, str):
            continue
        if name in names:
            first_file, first_index = names[name]
            first = first_file.source_map.position(("policy", first_index, "name"))
            out.add(("policy", index, "name"), f"a second policy named {name!r} "
                    f"(the first is at {first_file.file}:{first.line})",
                    "give each policy its own name", at_value=True)
        else:
            names[name] = (out, index)


def _validate(model: type[_Model], data: dict[str, Any], out: FileProblems) -> _Model | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        explain(exc, data, model, out)
        return None


def _read(path: Path, shown: str, referenced_from: str | None) -> _Source:
    def fail(what: str, fix: str, position: Position | None = None) -> _Unusable:
        return _Unusable([Problem(shown, position, "", what, fix)])

    kind = "shared policy file" if referenced_from is not None else "file"
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        hint = ("the path is relative to the workflow file" if referenced_from is not None
                else f"check the path (relative to {os.getcwd()})")
        raise fail(f"not found ({path})" if referenced_from else f"no such {kind}",
                   hint) from None
    except PermissionError:
        raise fail("permission denied", "check the mode of the file and its directories "
                   f"(ls -l {shown})") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}", "check the path") from None
    if stat.S_ISDIR(info.st_mode):
        inside = sorted(p.name for p in path.glob("*.toml"))[:3]
        example = f" such as {os.path.join(shown, inside[0])}" if inside else ""
        raise fail("is a directory", f"give the path of a .toml file{example}")
    if not stat.S_ISREG(info.st_mode):
        raise fail("is not a regular file", "give the path of a .toml file")
    if info.st_size > MAX_FILE_BYTES:
        raise fail(f"is {info.st_size / 1048576:.1f} MiB; the limit is "
                   f"{MAX_FILE_BYTES // 1048576} MiB", "split it, or check it is the right file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except PermissionError:
        raise fail("permission denied", f"make it readable (chmod u+r {shown})") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}", "check the file") from None
    if len(raw) > MAX_FILE_BYTES:
        raise fail(f"is over the {MAX_FILE_BYTES // 1048576} MiB limit",
                   "split it, or check it is the right file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start:exc.start].decode("utf-8", errors="replace")) + 1
        position = Position(raw.count(b"\n", 0, exc.start) + 1, column)
        raise fail(f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8",
                   "save the file as UTF-8", position) from None
    return _Source(path, shown, raw, text.removeprefix("\ufeff"))


def _parse(source: _Source) -> dict[str, Any]:
    def fail(position: Position | None, what: str, fix: str) -> _Unusable:
        return _Unusable([Problem(source.shown, position, "", what, fix)])

    if not source.text.strip():
        raise fail(Position(1, 1), "the file is empty",
                   "a workflow needs a [workflow] table and at least one [steps.NAME] table "
                   "(`console init` writes a starter)")
    too_deep = deepest_bracket(source.text, MAX_NESTING)
    if too_deep is not None:
        raise fail(too_deep, f"arrays and tables nest deeper than {MAX_NESTING} levels",
                   "flatten the structure")
    try:
        data = tomllib.loads(source.text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.match(message)
        at_end = _TOML_AT_END.match(message)
        if found:
            what = found.group(1)
            position: Position = Position(int(found.group(2)), int(found.group(3)))
        else:
            what = at_end.group(1) if at_end else message
            position = position_of_offset(source.text, len(source.text))
        fix = next((f for prefix, f in _TOML_FIXES.items() if what.startswith(prefix)),
                   "fix the TOML syntax here")
        raise fail(position, f"invalid TOML: {what}", fix) from None
    deep = _nested_too_deep(data)
    if deep is not None:
        out = FileProblems(source.shown, source.text)
        out.add(deep, f"keys and tables nest deeper than {MAX_NESTING} levels",
                "flatten the structure")
        raise _Unusable(out.problems)
    return data


def _nested_too_deep(data: dict[str, Any]) -> tuple[str | int, ...] | None:
    """Dotted keys build nesting that brackets do not show. The common case only asks
    whether anything is too deep; the path to report is worked out when something is."""
    return _path_too_deep(data) if _deeper_than(data, 0) else None


def _deeper_than(value: dict[str, Any] | list[Any], depth: int) -> bool:
    # Recursion is bounded: it stops at MAX_NESTING + 1, far below the interpreter's limit.
    if depth >= MAX_NESTING:
        return bool(value)
    for child in value.values() if type(value) is dict else value:
        if (type(child) is dict or type(child) is list) and _deeper_than(child, depth + 1):
            return True
    return False


def _path_too_deep(data: dict[str, Any]) -> tuple[str | int, ...] | None:
    stack: list[tuple[tuple[str | int, ...], object]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if len(path) > MAX_NESTING:
            return path[:MAX_NESTING]
        if isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
    return None
