"""The live tail of a step's log file: only the end of the file is ever read."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.style import Style
from rich.text import Span, Text
from textual.widget import Widget

from console.ui.ansi import to_rich_text

TAIL_BYTES = 64 * 1024
# Complete lines kept from the last read; a screen never shows more.
MAX_LINES = 1000
# A theme sets this variable to "off" to show step output without its own colours.
LOG_COLOURS_VARIABLE = "log-colours"


class LogTail(Widget):
    """The last lines of one log file, as many as fit; colours kept, escapes neutralised.

    `show(path)` switches to another file (or to none); `refresh_tail()` re-reads the end
    of the current one after it grew. Neither reads more than `TAIL_BYTES` of the file;
    `last_read_bytes` says how much the last read took.
    """

    DEFAULT_CSS = """
    LogTail {
        height: 1fr;
        background: $surface;
        color: $foreground;
        padding: 0 1;
    }
    LogTail.-placeholder {
        color: $text-muted;
        text-style: italic;
    }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.path: Path | None = None
        self.last_read_bytes = 0
        self._lines: list[Text] = []
        self._placeholder: str | None = "no step selected"
        self._seen: tuple[int, int, int] | None = None  # inode, size, mtime of the last read

    def show(self, path: Path | None) -> None:
        """Tail `path` from now on (None: no log to show)."""
        self.path = path
        self._seen = None
        self._lines = []
        self.refresh_tail()

    def refresh_tail(self) -> None:
        """Re-read the end of the file if it changed since the last read."""
        self.last_read_bytes = 0
        if self.path is None:
            self._set_placeholder("no log for this step yet")
            return
        try:
            with self.path.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
                if seen == self._seen:
                    return
                start = max(0, stat.st_size - TAIL_BYTES)
                handle.seek(start)
                data = handle.read(TAIL_BYTES)
        except FileNotFoundError:
            self._seen = None
            self._set_placeholder("waiting for output…")
            return
        except OSError as exc:
            self._seen = None
            self._set_placeholder(f"cannot read {self.path}: {exc.strerror or exc}")
            return
        self._seen = seen
        self.last_read_bytes = len(data)
        self._lines = _tail_lines(data, cut=start > 0)
        self._set_placeholder(None if self._lines else "(no output yet)")

    @property
    def lines(self) -> list[Text]:
        """The lines read last time (each one log line, not yet wrapped to the width)."""
        return list(self._lines)

    def _set_placeholder(self, message: str | None) -> None:
        if message is not None and message == self._placeholder:
            return
        self._placeholder = message
        if message is not None:
            self._lines = []
        self.set_class(message is not None, "-placeholder")
        self.refresh()

    def render(self) -> Text:
        if self._placeholder is not None:
            return Text(self._placeholder)
        width, height = self.content_size.width, self.content_size.height
        if width <= 0 or height <= 0:
            return Text()
        rows = visible_rows(self._lines, width, height, self.app.console)
        if self.app.current_theme.variables.get(LOG_COLOURS_VARIABLE) == "off":
            rows = [_without_colour(row) for row in rows]
        return Text("\n").join(rows)


def _without_colour(line: Text) -> Text:
    """The line with its colours removed but bold, underline and the like kept."""
    plain = line.copy()
    plain.spans = [
        Span(span.start, span.end, span.style.without_color)
        for span in line.spans
        if isinstance(span.style, Style)
    ]
    return plain


def _tail_lines(data: bytes, *, cut: bool) -> list[Text]:
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if cut and len(lines) > 1:
        # The read began inside a line: its start is not in the window, so drop it. A
        # single line longer than the window has no start to show; its end is kept.
        lines = lines[1:]
    return [to_rich_text(line) for line in lines[-MAX_LINES:]]


def visible_rows(lines: list[Text], width: int, height: int, console: Console) -> list[Text]:
    """The bottom `height` screen rows of `lines` wrapped at `width` (a line too long for
    the whole area shows its last part)."""
    rows: list[Text] = []
    for line in reversed(lines):
        if len(rows) >= height:
            break
        # Only the last `width * height` characters of a line can ever be on screen.
        limit = width * height
        piece = line[-limit:] if len(line) > limit else line
        wrapped = piece.wrap(console, width, overflow="fold", no_wrap=False) if piece else [piece]
        rows[:0] = list(wrapped)
    return rows[-height:]
