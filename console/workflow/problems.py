"""Problems found in a file, each rendered as `FILE:LINE:COL: table.key: what — how to fix`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from console.workflow.locate import Position, SourceMap

MAX_PROBLEMS = 20
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def dotted(path: Sequence[str | int]) -> str:
    """`steps.build.retry`, `policy[1].approvals`, `steps."Bad Id"` — as a person writes it."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
            out += f".{name}" if out else name
    return out


@dataclass(frozen=True)
class Problem:
    file: str
    position: Position | None
    where: str  # `table.key`, or "" for the file as a whole
    what: str
    fix: str
    detail: tuple[str, ...] = ()  # lines shown under the message (a CEL caret)

    def render(self) -> str:
        head = self.file if self.position is None else (
            f"{self.file}:{self.position.line}:{self.position.column}"
        )
        where = f" {self.where}:" if self.where else ""
        text = f"{head}:{where} {self.what} — {self.fix}"
        return "\n".join((text, *self.detail))

    def sort_key(self) -> tuple[int, int]:
        if self.position is None:
            return (0, 0)
        return (self.position.line, self.position.column)


@dataclass
class FileProblems:
    """Problems in one file; positions come from a source map built only when needed."""

    file: str
    text: str
    problems: list[Problem] = field(default_factory=list)
    _map: SourceMap | None = None

    @property
    def source_map(self) -> SourceMap:
        if self._map is None:
            self._map = SourceMap(self.text)
        return self._map

    def add(
        self,
        path: Sequence[str | int],
        what: str,
        fix: str,
        *,
        at_value: bool = False,
        position: Position | None = None,
        detail: Sequence[str] = (),
    ) -> None:
        where = position or self.source_map.position(path, prefer_value=at_value)
        self.problems.append(Problem(self.file, where, dotted(path), what, fix, tuple(detail)))

    def add_file_problem(self, position: Position | None, what: str, fix: str) -> None:
        self.problems.append(Problem(self.file, position, "", what, fix))

    def sorted(self) -> list[Problem]:
        return sorted(self.problems, key=Problem.sort_key)


def render_all(problems: Sequence[Problem]) -> list[str]:
    """At most MAX_PROBLEMS messages, then a line saying how many more there are."""
    lines = [problem.render() for problem in problems[:MAX_PROBLEMS]]
    hidden = len(problems) - MAX_PROBLEMS
    if hidden > 0:
        lines.append(f"… and {hidden} more problem{'s' if hidden != 1 else ''} not shown")
    return lines
