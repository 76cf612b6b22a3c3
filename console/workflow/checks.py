"""Checks beyond the schema: needs, cycles, templates, secrets, CEL and satisfiable gates.

They read the raw TOML data, tolerating whatever the schema rejected (that is reported on
its own), so one pass reports schema problems and these together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from console.workflow.checks_outputs import check_handoffs
from console.workflow.expressions import CompiledCondition, ConditionSyntaxError, compile_condition
from console.workflow.graph import find_cycle
from console.workflow.locate import Position
from console.workflow.problems import FileProblems
from console.workflow.spec import SECRET_REFERENCE, STEP_ID_PATTERN
from console.workflow.suggest import did_you_mean
from console.workflow.templating import malformed_templates, template_references

_ANY_PARAMS_TEMPLATE = re.compile(r"\{\{\s*params\b")
_EXPECTING = re.compile(r" expecting \{.*\}$")


@dataclass(frozen=True)
class _Needs:
    needs: tuple[str, ...]


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def check_steps(data: dict[str, Any], out: FileProblems) -> None:
    steps = {k: v for k, v in _dict(data.get("steps")).items() if isinstance(v, dict)}
    params = _dict(data.get("params"))
    for step_id, step in steps.items():
        needs = step.get("needs")
        for index, need in enumerate(needs if isinstance(needs, list) else []):
            if isinstance(need, str) and re.fullmatch(STEP_ID_PATTERN, need) and need not in steps:
                out.add(("steps", step_id, "needs", index), f"no step named `{need}`",
                        did_you_mean(need, [s for s in steps if s != step_id], listing="steps"),
                        at_value=True)
        _check_run(step_id, step.get("run"), params, out)
        _check_env(step_id, step.get("env"), out)
        approval = step.get("approval")
        if isinstance(approval, dict):
            check_satisfiable(("steps", step_id, "approval"), approval, out)
    _check_cycles(steps, out)
    check_handoffs(data, out)


def _may_be_absent(declaration: object) -> bool:
    return (isinstance(declaration, dict) and declaration.get("required") is False
            and declaration.get("default") is None)


def _check_run(step_id: str, run: object, params: dict[str, Any], out: FileProblems) -> None:
    path = ("steps", step_id, "run")
    if isinstance(run, str):
        if _ANY_PARAMS_TEMPLATE.search(run):
            out.add(path, "`{{ params.… }}` is not expanded in a string-form run",
                    'in a shell string use the environment ("$PARAM_VERSION"), or make run a '
                    "list so each element is templated as one argument", at_value=True)
        if "${secret:" in run:
            out.add(path, "a `${secret:…}` reference in run is never resolved",
                    'put it in env = { NAME = "${secret:NAME}" } and use "$NAME"', at_value=True)
        return
    for index, element in enumerate(run if isinstance(run, list) else []):
        if not isinstance(element, str):
            continue
        for name in dict.fromkeys(template_references(element)):
            if name not in params:
                out.add((*path, index), f"unknown param `{name}` in `{{{{ params.{name} }}}}`",
                        did_you_mean(name, list(params), listing="declared params")
                        if params else "declare it under [params]", at_value=True)
            elif _may_be_absent(params[name]):
                out.add((*path, index), f"`{{{{ params.{name} }}}}` may have no value "
                        "(the param is optional and has no default)",
                        "give it a default, or drop `required = false`", at_value=True)
            if _is_secret(params.get(name)):
                _report_secret_on_command_line((*path, index), name, out)
        for written in malformed_templates(element):
            out.add((*path, index), f"`{written}` is not a template this format expands",
                    "only {{ params.NAME }}, {{ steps.ID.outputs.KEY }} and {{ matrix.KEY }} "
                    "are replaced; a literal {{ cannot appear in run",
                    at_value=True)
        if "${secret:" in element:
            out.add((*path, index), "a `${secret:…}` reference in run is never resolved",
                    'put it in env = { NAME = "${secret:NAME}" } and pass "$NAME" from a '
                    "string-form run", at_value=True)


def _is_secret(declaration: object) -> bool:
    return isinstance(declaration, dict) and declaration.get("secret") is True


def _report_secret_on_command_line(path: tuple[str | int, ...], name: str,
                                   out: FileProblems) -> None:
    """An argument is in /proc/PID/cmdline, which `ps` shows to every local user."""
    variable = f"PARAM_{name.upper()}"
    out.add(path, f"`{{{{ params.{name} }}}}` puts the secret param `{name}` on the command "
            "line, where `ps` shows it to every local user",
            f'read it from the environment instead: use "${variable}" in a string-form run '
            f"(with a shell builtin or a pipe, not as another program's argument), or pass it "
            f"through env to a program that reads {variable}", at_value=True)


def _check_env(step_id: str, env: object, out: FileProblems) -> None:
    for name, value in _dict(env).items():
        if isinstance(value, str) and value.count("${secret:") > len(
            SECRET_REFERENCE.findall(value)
        ):
            out.add(("steps", step_id, "env", name), "malformed secret reference",
                    "write it as ${secret:NAME}, NAME made of letters, digits and _",
                    at_value=True)


def _check_cycles(steps: dict[str, dict[str, Any]], out: FileProblems) -> None:
    graph = {sid: _Needs(tuple(_strings(step.get("needs")))) for sid, step in steps.items()}
    for _ in range(5):  # a few distinct cycles, each reported once
        cycle = find_cycle(graph)
        if cycle is None:
            return
        first, second = cycle[0], cycle[1]
        index = list(graph[first].needs).index(second)
        where = ("steps", first, "needs", index)
        if first == second:
            out.add(where, f"`{first}` needs itself", f"remove `{first}` from its needs",
                    at_value=True)
        else:
            out.add(where, "cycle: " + " -> ".join(cycle) + " (each step needs the next)",
                    "remove one of these needs", at_value=True)
        graph[first] = _Needs(tuple(n for n in graph[first].needs if n != second))


def check_satisfiable(path: tuple[str | int, ...], gate: dict[str, Any], out: FileProblems) -> None:
    """A gate that no set of people could ever pass is a load error, not a stuck run."""
    approvals = gate.get("approvals", 1)
    approvers = gate.get("approvers", [])
    sod = gate.get("separation_of_duties", False) is True
    if not isinstance(approvals, int) or not isinstance(approvers, list) or not approvers:
        return
    if not all(isinstance(a, str) for a in approvers):
        return
    if any(a.startswith("@") for a in approvers):
        return  # a group can always gain members
    users = sorted(set(approvers))
    needed = approvals + (1 if sod else 0)
    if len(users) >= needed:
        return
    listed = f"{len(users)} user{'s' if len(users) != 1 else ''} ({', '.join(users)})"
    if sod:
        what = (f"can never be satisfied: {approvals} approval{'s' if approvals != 1 else ''} "
                f"with separation_of_duties needs {needed} distinct approvers (one of them may "
                f"have started the run), but approvers lists {listed}")
    else:
        what = (f"can never be satisfied: {approvals} approvals need {approvals} distinct "
                f"approvers, but approvers lists {listed}")
    out.add((*path, "approvers"), what,
            f"list at least {needed} users, add a @group, or lower approvals")


def check_policies(
    data: dict[str, Any], out: FileProblems
) -> dict[int, CompiledCondition]:
    """Compile each rule's `when`, check each gate can be passed; the compiled conditions."""
    compiled: dict[int, CompiledCondition] = {}
    rules = data.get("policy")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        if rule.get("effect") == "require_approval":
            check_satisfiable(("policy", index), rule, out)
        when = rule.get("when")
        if isinstance(when, str):
            try:
                compiled[index] = compile_condition(when)
            except ConditionSyntaxError as exc:
                _report_condition(("policy", index, "when"), exc, out)
    return compiled


def _report_condition(path: tuple[str | int, ...], exc: ConditionSyntaxError,
                      out: FileProblems) -> None:
    detail = _EXPECTING.sub("", exc.detail)
    what, _, fix = detail.partition(" — ")
    lines = exc.source.splitlines() or [exc.source]
    source_line = lines[min(exc.line, len(lines)) - 1]
    caret = " " * max(0, exc.column - 1) + "^"
    out.add(path, f"`when` does not compile: {what}",
            fix or "fix the expression (CEL, e.g. params.env == \"prod\")",
            position=_position_in_file(path, exc, out), detail=(f"    {source_line}",
                                                                 f"    {caret}"))


def _position_in_file(path: Sequence[str | int], exc: ConditionSyntaxError,
                      out: FileProblems) -> Position:
    """The error's line and column in the file, when the string maps simply onto it."""
    spot = out.source_map.value(path)
    if spot is None:
        return out.source_map.position(path)
    if spot.kind in ("basic", "literal") and exc.line == 1:
        return Position(spot.position.line, spot.position.column + exc.column)
    if spot.kind.startswith("multiline"):
        line = spot.position.line + exc.line - 1 + (1 if spot.opens_with_newline else 0)
        column = exc.column + (spot.position.column + 2 if line == spot.position.line else 0)
        return Position(line, column)
    return spot.position
