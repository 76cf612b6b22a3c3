"""A log's lines as the log pane draws them: read from a file's tail, wrapped to a window,
searched and highlighted, with their colours kept or dropped. No widget here."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.style import Style
from rich.text import Span, Text

from console.ui.ansi import to_rich_text

# Complete lines kept from the last read; a screen never shows more.
MAX_LINES = 1000


def attempt_log(latest: Path, latest_attempt: int, attempt: int) -> Path:
    """Attempt `attempt`'s log beside `latest`, the log of attempt `latest_attempt`
    (a run keeps every attempt's log as `<step>.<attempt>.log`)."""
    return latest.with_name(f"{step_part(latest, latest_attempt)}.{attempt}.log")


def step_part(path: Path, attempt: int) -> str:
    suffix = f".{attempt}.log"
    return path.name[: -len(suffix)] if path.name.endswith(suffix) else path.name


def matching(lines: list[Text], text: str) -> list[int]:
    wanted = text.casefold()
    return [index for index, line in enumerate(lines) if wanted in line.plain.casefold()]


def highlighted(line: Text, text: str, current: bool) -> Text:
    marked = line.copy()
    plain, wanted = line.plain.casefold(), text.casefold()
    style = "bold reverse underline" if current else "reverse"
    start = plain.find(wanted)
    while start >= 0 and wanted:
        marked.stylize(style, start, start + len(wanted))
        start = plain.find(wanted, start + len(wanted))
    return marked


def row_count(line: Text, width: int, console: Console) -> int:
    if width <= 0 or not line:
        return 1
    return len(line.wrap(console, width, overflow="fold", no_wrap=False))


def without_colour(line: Text) -> Text:
    """The line with its colours removed but bold, underline and the like kept."""
    plain = line.copy()
    plain.spans = [
        Span(span.start, span.end, span.style.without_color)
        for span in line.spans
        if isinstance(span.style, Style)
    ]
    return plain


def tail_lines(data: bytes, *, cut: bool) -> list[Text]:
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if cut and len(lines) > 1:
        # The read began inside a line: its start is not in the window, so drop it. A
        # single line longer than the window has no start to show; its end is kept.
        lines = lines[1:]
    return [to_rich_text(line) for line in lines[-MAX_LINES:]]


def window(lines: list[Text], width: int, height: int, console: Console,
           skip: int = 0) -> tuple[list[Text], int]:
    """The `height` screen rows of `lines` wrapped at `width` that end `skip` rows above
    the bottom, and `skip` as it could be kept (not past the top)."""
    rows: list[Text] = []
    wanted = height + max(0, skip)
    # Only the last `width * wanted` characters of a line can ever be on screen.
    limit = width * wanted
    for line in reversed(lines):
        if len(rows) >= wanted:
            break
        piece = line[-limit:] if len(line) > limit else line
        wrapped = piece.wrap(console, width, overflow="fold", no_wrap=False) if piece else [piece]
        rows[:0] = list(wrapped)
    skip = max(0, min(skip, len(rows) - height))
    end = len(rows) - skip
    return rows[max(0, end - height):end], skip
