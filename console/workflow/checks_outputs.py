"""Checks for what steps hand on: outputs, the templates that read them, and matrices.

`{{ steps.ID.outputs.KEY }}` must name a step upstream of the one using it (through
`needs`, directly or not) and an output that step declares; `{{ matrix.KEY }}` a key of the
step's own matrix. Neither is pasted into a string-form run (a shell would read the value
as code): it goes through `env` instead.
"""

from __future__ import annotations

from typing import Any

from console.workflow.matrix import SPECIAL, combinations
from console.workflow.problems import FileProblems
from console.workflow.suggest import did_you_mean
from console.workflow.templating import references


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _upstream(steps: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Step -> every step it needs, directly or not (cycles are reported elsewhere)."""
    out: dict[str, set[str]] = {}

    def visit(sid: str, trail: frozenset[str]) -> set[str]:
        if sid in out:
            return out[sid]
        found: set[str] = set()
        needs = steps.get(sid, {}).get("needs")
        for need in needs if isinstance(needs, list) else []:
            if isinstance(need, str) and need in steps and need not in trail:
                found.add(need)
                found |= visit(need, trail | {need})
        out[sid] = found
        return found

    for sid in steps:
        visit(sid, frozenset({sid}))
    return out


def _declared(step: dict[str, Any]) -> list[str]:
    outputs = step.get("outputs")
    if isinstance(outputs, list):
        return [o for o in outputs if isinstance(o, str)]
    return [o for o in _dict(outputs)]


def _matrix_keys(step: dict[str, Any]) -> list[str]:
    matrix = _dict(step.get("matrix"))
    keys = [k for k in matrix if k not in SPECIAL]
    for entry in matrix.get("include", []) if isinstance(matrix.get("include"), list) else []:
        keys += [k for k in _dict(entry) if k not in keys]
    return keys


def check_handoffs(data: dict[str, Any], out: FileProblems) -> None:
    steps = {k: v for k, v in _dict(data.get("steps")).items() if isinstance(v, dict)}
    upstream = _upstream(steps)
    for sid, step in steps.items():
        run = step.get("run")
        if isinstance(run, str):
            for ref in references(run):
                if ref.kind in ("steps", "matrix"):
                    out.add(("steps", sid, "run"), f"`{ref}` is not expanded in a string-form run",
                            f'pass it through env (env = {{ VALUE = "{ref}" }}) and use "$VALUE", '
                            "or make run a list", at_value=True)
        elif isinstance(run, list):
            for index, element in enumerate(run):
                if isinstance(element, str):
                    _check_refs(("steps", sid, "run", index), element, sid, steps, upstream, out)
        params = _dict(data.get("params"))
        for name, value in _dict(step.get("env")).items():
            if not isinstance(value, str):
                continue
            _check_refs(("steps", sid, "env", name), value, sid, steps, upstream, out)
            for ref in references(value):
                if ref.kind == "params" and ref.name not in params:
                    out.add(("steps", sid, "env", name), f"unknown param `{ref.name}` in `{ref}`",
                            did_you_mean(ref.name, list(params), listing="declared params")
                            if params else "declare it under [params]", at_value=True)
        if step.get("matrix") is not None and step.get("on") is not None:
            out.add(("steps", sid, "matrix"), "a step runs on hosts (`on`) or over a matrix, "
                    "not both", "split it into two steps", at_value=False)
        if step.get("outputs") is not None and step.get("on") is not None:
            out.add(("steps", sid, "outputs"), "outputs are not collected from steps on hosts",
                    "write the value from a step that runs here (it can read the hosts' "
                    "results), or drop outputs")
        matrix = step.get("matrix")
        if isinstance(matrix, dict) and _matrix_keys(step):
            try:
                empty = not combinations(matrix)
            except (TypeError, AttributeError, ValueError):
                empty = False  # the schema reports the shape
            if empty:
                out.add(("steps", sid, "matrix"), "the matrix has no combination left "
                        "after `exclude`", "exclude fewer, or add values")


def _check_refs(path: tuple[str | int, ...], text: str, sid: str,
                steps: dict[str, dict[str, Any]], upstream: dict[str, set[str]],
                out: FileProblems) -> None:
    for ref in references(text):
        if ref.kind == "matrix":
            keys = _matrix_keys(steps[sid])
            if ref.name not in keys:
                out.add(path, f"`{ref}`: step `{sid}` has no matrix key `{ref.name}`",
                        did_you_mean(ref.name, keys, listing="its matrix keys") if keys
                        else "add matrix = { KEY = [...] } to the step", at_value=True)
        elif ref.kind == "steps":
            if ref.name not in steps:
                out.add(path, f"`{ref}`: no step named `{ref.name}`",
                        did_you_mean(ref.name, [s for s in steps if s != sid], listing="steps"),
                        at_value=True)
            elif ref.name not in upstream.get(sid, set()):
                out.add(path, f"`{ref}`: step `{ref.name}` is not upstream of `{sid}`, so its "
                        "outputs may not exist yet", f'add "{ref.name}" to needs (directly or '
                        "through a step that needs it)", at_value=True)
            elif ref.key not in (declared := _declared(steps[ref.name])):
                out.add(path, f"`{ref}`: step `{ref.name}` declares no output `{ref.key}`",
                        did_you_mean(ref.key, declared, listing="its outputs") if declared
                        else f'declare it: outputs = ["{ref.key}"] on step {ref.name}',
                        at_value=True)
