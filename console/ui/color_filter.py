"""NO_COLOR: a line filter that sends no colour, neither foreground nor background."""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter


class WithoutColor(LineFilter):
    """Drop every colour; keep bold, italic, underline and reverse (the selection)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(text, None if style is None else style.without_color, control)
                for text, style, control in segments]
