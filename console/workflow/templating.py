"""Templates inside list-form `run` elements and `env` values: one argument in, one out.

`{{ params.NAME }}`, `{{ steps.ID.outputs.KEY }}` (an output of a step upstream) and
`{{ matrix.KEY }}` (this instance's value). Templating happens only inside argv elements and
env values, so a value can never become shell syntax or split into two arguments. Values are
written as text: strings as they are, ints in decimal, bools as `true` / `false`. Anything
else between `{{` and `}}` is an error, not left as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from console.errors import ParamError

_BRACES = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PARAM = re.compile(r"\s*params\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_OUTPUT = re.compile(
    r"\s*steps\s*\.\s*([a-z0-9][a-z0-9_-]*)\s*\.\s*outputs\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*"
)
_MATRIX = re.compile(r"\s*matrix\s*\.\s*([a-z][a-z0-9_]*)\s*")


@dataclass(frozen=True)
class Reference:
    """What a template names: ("params", NAME), ("steps", ID, KEY) or ("matrix", KEY)."""

    kind: str
    name: str
    key: str = ""

    def __str__(self) -> str:
        if self.kind == "steps":
            return f"{{{{ steps.{self.name}.outputs.{self.key} }}}}"
        return f"{{{{ {self.kind}.{self.name} }}}}"


@dataclass(frozen=True)
class TemplateValues:
    """What templates are filled with at run time."""

    params: Mapping[str, object]
    outputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    matrix: Mapping[str, str] = field(default_factory=dict)


def _reference(inner: str) -> Reference | None:
    for pattern, kind in ((_PARAM, "params"), (_MATRIX, "matrix")):
        found = pattern.fullmatch(inner)
        if found:
            return Reference(kind, found.group(1))
    found = _OUTPUT.fullmatch(inner)
    return Reference("steps", found.group(1), found.group(2)) if found else None


def references(text: str) -> list[Reference]:
    """Every well-formed template in `text`, in order."""
    return [ref for m in _BRACES.finditer(text) if (ref := _reference(m.group(1))) is not None]


def template_references(text: str) -> list[str]:
    """The param names `text` uses, in order of appearance (repeats included)."""
    names: list[str] = []
    for found in _BRACES.finditer(text):
        param = _PARAM.fullmatch(found.group(1))
        if param is not None:
            names.append(param.group(1))
    return names


def malformed_templates(text: str) -> list[str]:
    """Every `{{ ... }}` in `text` that names nothing templates can name, as written."""
    return [m.group(0) for m in _BRACES.finditer(text) if _reference(m.group(1)) is None]


def render_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_argv(
    argv: Sequence[str], params: Mapping[str, object] | TemplateValues, *, where: str = "run",
    params_only: bool = False,
) -> tuple[str, ...]:
    """Replace each template inside each element; raises ParamError if one names nothing.

    `where` names the list in messages, e.g. "steps.build.run". With `params_only` (a
    plan, before anything ran), outputs and matrix values are left as written.
    """
    values = params if isinstance(params, TemplateValues) else TemplateValues(params)
    return tuple(render_text(element, f"{where}[{i}]", values, params_only=params_only)
                 for i, element in enumerate(argv))


def render_text(element: str, where: str, values: TemplateValues, *,
                params_only: bool = False) -> str:
    params = values.params

    def substitute(found: re.Match[str]) -> str:
        ref = _reference(found.group(1))
        if ref is None:
            raise ParamError(
                f"{where} has {found.group(0)!r} — only {{{{ params.NAME }}}}, "
                "{{ steps.ID.outputs.KEY }} and {{ matrix.KEY }} can be templated"
            )
        if params_only and ref.kind != "params":
            return found.group(0)
        if ref.kind == "steps":
            step_outputs = values.outputs.get(ref.name, {})
            if ref.key not in step_outputs:
                raise ParamError(f"{where} uses {ref} but step {ref.name!r} has no output "
                                 f"{ref.key!r} (has it finished?)")
            return step_outputs[ref.key]
        if ref.kind == "matrix":
            if ref.name not in values.matrix:
                raise ParamError(f"{where} uses {ref} but this step has no matrix key "
                                 f"{ref.name!r}")
            return values.matrix[ref.name]
        name = ref.name
        if name not in params:
            known = ", ".join(sorted(params)) or "none"
            raise ParamError(
                f"{where} uses {{{{ params.{name} }}}} but there is no param {name!r} "
                f"(known: {known}) — declare it under [params] or fix the name"
            )
        return render_value(params[name])

    return _BRACES.sub(substitute, element)
