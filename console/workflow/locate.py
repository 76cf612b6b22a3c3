"""Where a key or value sits in TOML source text, so messages can name a line and column.

tomllib gives data without positions. This small scanner walks source that tomllib has
already accepted and records the offset of every key (`[steps.build]`, `steps.build.timeout`,
inline tables, `[[policy]]` by index) and of every value. It never raises: on text it does not
understand it stops and keeps what it found, and lookups fall back to the nearest known
parent.
"""

from __future__ import annotations

import bisect
import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

KeyPath = tuple[str | int, ...]
StringKind = Literal["basic", "literal", "multiline_basic", "multiline_literal", "other"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = re.compile(r"[,\]}\n#]")
_MAX_SCAN_DEPTH = 64
# Strings and comments are skipped whole so that brackets inside them are not counted.
_OPENERS = frozenset("[{")
_CLOSERS = frozenset("]}")
_DEPTH_TOKEN = re.compile(
    r'"""(?:\\[\s\S]|[^\\])*?"""'
    r"|'''[\s\S]*?'''"
    r'|"(?:\\.|[^"\\\n])*"'
    r"|'[^'\n]*'"
    r"|#[^\n]*"
    r"|[\[\]{}]"
)


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based, in characters


@dataclass(frozen=True)
class ValueSpot:
    position: Position
    kind: StringKind
    opens_with_newline: bool  # a multi-line string whose first line break TOML trims


def position_of_offset(text: str, offset: int) -> Position:
    line_start = text.rfind("\n", 0, offset) + 1
    return Position(text.count("\n", 0, offset) + 1, offset - line_start + 1)


def deepest_bracket(text: str, limit: int) -> Position | None:
    """The first `[`/`{` that opens nesting deeper than `limit`, or None.

    Runs before the TOML parser so that a pathologically nested file cannot exhaust its
    recursion. The common case (not too deep) compares token strings only; positions are
    worked out only for a file that fails.
    """
    depth = 0
    for token in _DEPTH_TOKEN.findall(text):
        if token in _OPENERS:
            depth += 1
            if depth > limit:
                return _first_too_deep(text, limit)
        elif token in _CLOSERS and depth:
            depth -= 1
    return None


def _first_too_deep(text: str, limit: int) -> Position | None:
    depth = 0
    for token in _DEPTH_TOKEN.finditer(text):
        char = token.group()
        if char in _OPENERS:
            depth += 1
            if depth > limit:
                return position_of_offset(text, token.start())
        elif char in _CLOSERS:
            depth = max(0, depth - 1)
    return None


class SourceMap:
    """Positions of keys and values by their path in the parsed document."""

    def __init__(self, text: str) -> None:
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._keys: dict[KeyPath, int] = {}
        self._values: dict[KeyPath, tuple[int, StringKind, bool]] = {}
        scanner = _Scanner(text, self._keys, self._values)
        # On text it cannot follow, keep what was found; lookups fall back to a parent.
        with contextlib.suppress(IndexError, ValueError, RecursionError):
            scanner.document()

    def _position(self, offset: int) -> Position:
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return Position(index + 1, offset - self._line_starts[index] + 1)

    def position(self, path: Sequence[str | int], *, prefer_value: bool = False) -> Position:
        """The key at `path` (or its value), else the nearest parent that is known."""
        for size in range(len(path), 0, -1):
            prefix = tuple(path[:size])
            if prefer_value and size == len(path) and prefix in self._values:
                return self._position(self._values[prefix][0])
            if prefix in self._keys:
                return self._position(self._keys[prefix])
            if prefix in self._values:
                return self._position(self._values[prefix][0])
        return Position(1, 1)

    def value(self, path: Sequence[str | int]) -> ValueSpot | None:
        found = self._values.get(tuple(path))
        if found is None:
            return None
        offset, kind, opens_with_newline = found
        return ValueSpot(self._position(offset), kind, opens_with_newline)


class _Scanner:
    """A forgiving walk over TOML text that tomllib has already parsed successfully."""

    def __init__(
        self,
        text: str,
        keys: dict[KeyPath, int],
        values: dict[KeyPath, tuple[int, StringKind, bool]],
    ) -> None:
        self.text = text
        self.pos = 0
        self.keys = keys
        self.values = values
        self.array_counts: dict[KeyPath, int] = {}

    # -- helpers ---------------------------------------------------------------------------
    def peek(self, size: int = 1) -> str:
        return self.text[self.pos : self.pos + size]

    def skip_blank(self, newlines: bool) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif newlines and char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def skip_line(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end + 1

    def record_key(self, path: KeyPath, offset: int) -> None:
        self.keys.setdefault(path, offset)

    # -- grammar ---------------------------------------------------------------------------
    def document(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return
            start = self.pos
            if self.peek(2) == "[[":
                self.pos += 2
                table = self.header(start, is_array=True)
            elif self.peek() == "[":
                self.pos += 1
                table = self.header(start, is_array=False)
            else:
                self.key_value(table, depth=0)
            self.skip_line()
            if self.pos == start:
                self.pos += 1

    def header(self, start: int, *, is_array: bool) -> KeyPath:
        parts = self.dotted_key()
        resolved: KeyPath = ()
        for index, (name, _offset) in enumerate(parts):
            resolved = (*resolved, name)
            last = index == len(parts) - 1
            if last and is_array:
                count = self.array_counts.get(resolved, 0)
                self.array_counts[resolved] = count + 1
                self.record_key(resolved, start)
                resolved = (*resolved, count)
                self.keys[resolved] = start
            elif resolved in self.array_counts:
                resolved = (*resolved, self.array_counts[resolved] - 1)
            else:
                self.record_key(resolved, start)
        if not is_array:
            self.keys[resolved] = start
        return resolved

    def dotted_key(self) -> list[tuple[str, int]]:
        parts: list[tuple[str, int]] = []
        while True:
            self.skip_blank(newlines=False)
            offset = self.pos
            parts.append((self.simple_key(), offset))
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.pos += 1

    def simple_key(self) -> str:
        char = self.peek()
        if char == '"':
            return self.basic_string_body()
        if char == "'":
            end = self.text.index("'", self.pos + 1)
            key = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return key
        found = _BARE_KEY.match(self.text, self.pos)
        if found is None:
            raise ValueError("not a key")
        self.pos = found.end()
        return found.group()

    def basic_string_body(self) -> str:
        """Read a "..." string (the scanner only needs simple escapes to name keys)."""
        text = self.text
        index = self.pos + 1
        out: list[str] = []
        while text[index] != '"':
            if text[index] == "\\":
                escaped = text[index + 1]
                out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(escaped, escaped))
                index += 2
            else:
                out.append(text[index])
                index += 1
        self.pos = index + 1
        return "".join(out)

    def key_value(self, table: KeyPath, depth: int) -> None:
        parts = self.dotted_key()
        path = table
        for name, offset in parts:
            path = (*path, name)
            self.record_key(path, offset)
        self.skip_blank(newlines=False)
        if self.peek() != "=":
            raise ValueError("expected '='")
        self.pos += 1
        self.skip_blank(newlines=False)
        self.value(path, depth)

    def value(self, path: KeyPath, depth: int) -> None:
        if depth > _MAX_SCAN_DEPTH:
            raise ValueError("too deep")
        start = self.pos
        text = self.text
        if text.startswith('"""', start):
            self.values[path] = (start, "multiline_basic", text.startswith("\n", start + 3))
            end = re.compile(r'(?<!\\)"""').search(text, start + 3)
            self.pos = len(text) if end is None else end.end()
            while self.peek() == '"':
                self.pos += 1
        elif text.startswith("'''", start):
            self.values[path] = (start, "multiline_literal", text.startswith("\n", start + 3))
            self.pos = text.index("'''", start + 3) + 3
            while self.peek() == "'":
                self.pos += 1
        elif self.peek() == '"':
            self.values[path] = (start, "basic", False)
            self.basic_string_body()
        elif self.peek() == "'":
            self.values[path] = (start, "literal", False)
            self.pos = text.index("'", start + 1) + 1
        elif self.peek() == "[":
            self.values[path] = (start, "other", False)
            self.array(path, depth)
        elif self.peek() == "{":
            self.values[path] = (start, "other", False)
            self.inline_table(path, depth)
        else:
            self.values[path] = (start, "other", False)
            end = _SCALAR_END.search(text, start)
            self.pos = len(text) if end is None else end.start()

    def array(self, path: KeyPath, depth: int) -> None:
        self.pos += 1
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text) or self.peek() == "]":
                self.pos += 1
                return
            before = self.pos
            self.value((*path, index), depth + 1)
            index += 1
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.pos += 1
            elif self.pos == before:
                raise ValueError("stuck in an array")

    def inline_table(self, path: KeyPath, depth: int) -> None:
        self.pos += 1
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text) or self.peek() == "}":
                self.pos += 1
                return
            before = self.pos
            self.key_value(path, depth + 1)
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.pos += 1
            elif self.pos == before:
                raise ValueError("stuck in an inline table")
