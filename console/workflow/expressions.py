"""CEL conditions (`when = '...'`): compiled once when the workflow loads.

The context a condition sees is documented in docs/policy.md: `step`, `params`, `run`,
`user` and `now`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any


def _load_cel() -> ModuleType:
    """The CEL engine: the package's compiled extension, without the package's __init__.

    `import cel` also imports the package's REPL (typer, prompt_toolkit, rich): 0.4 s on
    every command, and a terminal UI library inside the domain. The extension alone has
    `compile`; registered as `cel.cel`, a later `import cel` elsewhere reuses it. Loaded
    when the first condition compiles (finding and loading it is ~15 ms of a start-up,
    which a workflow without `when` never needs).
    """
    loaded = sys.modules.get("cel.cel")
    if loaded is not None:
        return loaded
    import importlib.util
    from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader
    from pathlib import Path

    package = importlib.util.find_spec("cel")
    for location in (package.submodule_search_locations or []) if package else []:
        for suffix in EXTENSION_SUFFIXES:
            path = Path(location) / f"cel{suffix}"
            if not path.is_file():
                continue
            loader = ExtensionFileLoader("cel.cel", str(path))
            spec = importlib.util.spec_from_file_location("cel.cel", path, loader=loader)
            if spec is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules["cel.cel"] = module
            loader.exec_module(module)
            return module
    import cel  # an unexpected package layout: take the package, REPL imports and all

    return cel


CONTEXT_VARIABLES = frozenset({"step", "params", "run", "user", "now", "steps"})
_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


class ConditionSyntaxError(ValueError):
    """A `when` expression does not compile. Carries the 1-based line/column inside it."""

    def __init__(self, source: str, detail: str, line: int, column: int) -> None:
        self.source = source
        self.detail = detail
        self.line = line
        self.column = column
        source_line = source.splitlines()[line - 1] if source.splitlines() else source
        caret = " " * max(0, column - 1) + "^"
        super().__init__(f"{detail}\n    {source_line}\n    {caret}")


class ConditionEvaluationError(RuntimeError):
    """A condition failed at run time (a missing field, a type mismatch): fail closed."""


@dataclass(frozen=True)
class CompiledCondition:
    source: str
    program: Any

    @property
    def reads(self) -> frozenset[str]:
        """The context variables (`step`, `params`, …) this condition looks at."""
        return frozenset(self.program.variables()) & CONTEXT_VARIABLES

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        try:
            result = self.program.execute(dict(context))
        except KeyError as exc:  # a map lookup of a key that is not there
            raise ConditionEvaluationError(
                f"`{self.source}` failed: no field {exc.args[0]!r} in the context "
                f"(a param not given?) — test for it first with has(...)"
            ) from exc
        except Exception as exc:  # the CEL binding raises plain RuntimeError/TypeError
            raise ConditionEvaluationError(f"`{self.source}` failed: {exc}") from exc
        if not isinstance(result, bool):
            raise ConditionEvaluationError(
                f"`{self.source}` gave {result!r}, not true or false"
            )
        return result


def compile_condition(source: str) -> CompiledCondition:
    """Compile a CEL expression; unknown top-level variables are a compile error too."""
    try:
        program = _load_cel().compile(source)
    except Exception as exc:
        text = str(exc)
        found = _POSITION.search(text)
        if found:
            line, column, detail = int(found.group(1)), int(found.group(2)), found.group(3)
        else:
            line, column, detail = 1, 1, text.splitlines()[0] if text else "does not compile"
        raise ConditionSyntaxError(source, detail, line, column) from None
    unknown = _unknown_variables(program)
    if unknown:
        name = sorted(unknown)[0]
        column = _column_of(source, name)
        raise ConditionSyntaxError(
            source,
            f"unknown variable `{name}` — a condition can use "
            + ", ".join(sorted(CONTEXT_VARIABLES)),
            1,
            column,
        )
    return CompiledCondition(source=source, program=program)


def _unknown_variables(program: Any) -> set[str]:
    """Top-level names the program reads that the context never provides.

    Comprehension variables (`x` in `tags.exists(x, ...)`) show up among the variables
    too, so a name counts as unknown only when it is not bound by a macro in the source.
    """
    names = set(program.variables())
    bound = set(re.findall(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,",
                           program.source() if callable(program.source) else str(program.source)))
    return names - CONTEXT_VARIABLES - bound


def _column_of(source: str, name: str) -> int:
    found = re.search(rf"\b{re.escape(name)}\b", source)
    return found.start() + 1 if found else 1
