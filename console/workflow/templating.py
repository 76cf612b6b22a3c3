"""`{{ params.NAME }}` inside list-form `run` elements: one argument in, one argument out.

Templating happens only inside argv elements, so a value can never become shell syntax or
split into two arguments. Values are written as text: strings as they are, ints in decimal,
bools as `true` / `false`. Anything else between `{{` and `}}` is an error, not left as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from console.errors import ParamError

_BRACES = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PARAM = re.compile(r"\s*params\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*")


def template_references(text: str) -> list[str]:
    """The param names `text` uses, in order of appearance (repeats included)."""
    names: list[str] = []
    for found in _BRACES.finditer(text):
        param = _PARAM.fullmatch(found.group(1))
        if param is not None:
            names.append(param.group(1))
    return names


def malformed_templates(text: str) -> list[str]:
    """Every `{{ ... }}` in `text` that is not `{{ params.NAME }}`, as written."""
    return [m.group(0) for m in _BRACES.finditer(text) if _PARAM.fullmatch(m.group(1)) is None]


def render_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_argv(
    argv: Sequence[str], params: Mapping[str, object], *, where: str = "run"
) -> tuple[str, ...]:
    """Replace each `{{ params.NAME }}` inside each element; raises ParamError if unknown.

    `where` names the list in messages, e.g. "steps.build.run".
    """
    return tuple(_render(element, f"{where}[{i}]", params) for i, element in enumerate(argv))


def _render(element: str, where: str, params: Mapping[str, object]) -> str:
    def substitute(found: re.Match[str]) -> str:
        param = _PARAM.fullmatch(found.group(1))
        if param is None:
            raise ParamError(
                f"{where} has {found.group(0)!r} — only {{{{ params.NAME }}}} can be "
                "templated into a command"
            )
        name = param.group(1)
        if name not in params:
            known = ", ".join(sorted(params)) or "none"
            raise ParamError(
                f"{where} uses {{{{ params.{name} }}}} but there is no param {name!r} "
                f"(known: {known}) — declare it under [params] or fix the name"
            )
        return render_value(params[name])

    return _BRACES.sub(substitute, element)
