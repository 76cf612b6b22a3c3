"""The live tail of a step's log file: only the end of the file is ever read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget

from console.textsafe import terminal_safe
from console.ui.footer_keys import offer_keys
from console.ui.widgets.log_lines import (
    attempt_log,
    highlighted,
    matching,
    row_count,
    step_part,
    tail_lines,
    window,
    without_colour,
)

TAIL_BYTES = 64 * 1024
NARROW_FOOTER = 80  # columns
FOOTER_WHEN_WIDE = frozenset({"toggle_follow", "save"})
# A theme sets this variable to "off" to show step output without its own colours.
LOG_COLOURS_VARIABLE = "log-colours"
__all__ = ["LOG_COLOURS_VARIABLE", "TAIL_BYTES", "LogTail", "attempt_log"]


class LogTail(Widget, can_focus=True):
    """The last lines of one log file, as many as fit; colours kept, escapes neutralised.

    `show(path)` switches to another file (or to none); `refresh_tail()` re-reads the end
    of the current one after it grew. Neither reads more than `TAIL_BYTES` of the file;
    `last_read_bytes` says how much the last read took.

    With the focus it is a pager over what was read: scrolling up pauses following the
    file (`end` or `f` resumes), `/` searches, `n`/`N` go to the next / previous match,
    `[`/`]` switch between a retried step's attempts and `ctrl+s` saves the log to a file.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "find", "Search", tooltip="Search the log"),
        Binding("n", "next_match", "Next", tooltip="The next match (down)"),
        Binding("N", "previous_match", "Prev match", show=False,
                tooltip="The previous match (up)"),
        Binding("f", "toggle_follow", "Follow", tooltip="Pause or resume following the log"),
        Binding("left_square_bracket", "attempt(-1)", "Attempt",
                tooltip="The previous attempt's log"),
        Binding("right_square_bracket", "attempt(1)", "Next attempt", show=False,
                tooltip="The next attempt's log"),
        Binding("ctrl+s", "save", "Save", tooltip="Save this log to a file"),
        Binding("up,k", "scroll_rows(1)", "Up", show=False,
                tooltip="Scroll the log up (pauses following it)"),
        Binding("down,j", "scroll_rows(-1)", "Down", show=False, tooltip="Scroll the log down"),
        Binding("pageup", "scroll_page(1)", "Page up", show=False, tooltip="A page up"),
        Binding("pagedown", "scroll_page(-1)", "Page down", show=False, tooltip="A page down"),
        Binding("home", "scroll_home", "Top", show=False, tooltip="The top of what was read"),
        Binding("end", "scroll_end", "End (follow)", show=False,
                tooltip="The end, following the log again"),
    ]

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
    LogTail:focus {
        border-title-style: bold reverse;
    }
    """

    class FindAsked(Message):
        """`/` was pressed: the detail asks for the text to find."""

    class SaveAsked(Message):
        """`ctrl+s` was pressed: the detail asks where to save the log."""

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.path: Path | None = None
        self.last_read_bytes = 0
        self._label = "log"
        self.following = True
        self.query_text = ""
        self._lines: list[Text] = []
        self._placeholder: str | None = "no step selected"
        self._seen: tuple[int, int, int] | None = None  # inode, size, mtime of the last read
        self._skip = 0  # screen rows hidden below the view (0: the view shows the end)
        self._matches: list[int] = []  # indices into _lines
        self._match = -1  # which of _matches is current
        self._latest: Path | None = None  # the latest attempt's log
        self._attempts = 0  # how many attempts the step has had (0: not known)
        self._attempt = 0  # the attempt shown

    # --- which file ----------------------------------------------------------------------

    def show(self, path: Path | None, attempts: int = 0) -> None:
        """Tail `path` from now on (None: no log to show). `attempts`: `path` is the log of
        attempt `attempts` of a step, whose earlier attempts `[` reaches."""
        same_step = (path is not None and self._latest is not None
                     and step_part(path, attempts) == step_part(self._latest, self._attempts))
        older = same_step and 0 < self._attempt < self._attempts
        self._latest, self._attempts = path, attempts
        if older:
            self._retitle()  # a new attempt began: the older one asked for stays
            return
        self._attempt = attempts
        self._open(path)

    def show_attempt(self, attempt: int) -> None:
        if self._latest is None or not 1 <= attempt <= self._attempts:
            return
        self._attempt = attempt
        self._open(attempt_log(self._latest, self._attempts, attempt))

    def _open(self, path: Path | None) -> None:
        self.path = path
        self._seen = None
        self._lines = []
        self._skip = 0
        self.following = True
        self.query_text, self._matches, self._match = "", [], -1
        self.refresh_tail()
        self._retitle()

    @property
    def attempt(self) -> int:
        """The attempt whose log is shown (0: not known)."""
        return self._attempt

    @property
    def label(self) -> str:
        """What the log is of (the detail sets it); the title adds the attempt and the rest."""
        return self._label

    @label.setter
    def label(self, value: str) -> None:
        if value != self._label:
            self._label = value
            self._retitle()

    @property
    def attempts(self) -> int:
        return self._attempts

    @property
    def latest(self) -> Path | None:
        """The log of the step's latest attempt (what `show` was given)."""
        return self._latest

    # --- reading ---------------------------------------------------------------------------

    def refresh_tail(self) -> None:
        """Re-read the end of the file if it changed since the last read (not while paused)."""
        self.last_read_bytes = 0
        if self.path is None:
            self._set_placeholder("no log for this step yet")
            return
        if not self.following and self._lines:
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
        self._lines = tail_lines(data, cut=start > 0)
        if self.query_text:
            self._matches = matching(self._lines, self.query_text)
            self._match = min(self._match, len(self._matches) - 1)
        self._set_placeholder(None if self._lines else "(no output yet)")
        self.refresh()

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

    # --- the pager ---------------------------------------------------------------------------

    def scroll_by(self, rows: int) -> None:
        """Up (`rows` > 0) or down; up pauses following, reaching the end does not resume."""
        self._skip = max(0, self._skip + rows)
        if rows > 0:
            self.following = False
        self._retitle()
        self.refresh()

    def resume(self) -> None:
        self.following, self._skip = True, 0
        self.refresh_tail()
        self._retitle()
        self.refresh()

    def find(self, text: str) -> int:
        """Highlight `text` (any case) and show its last match; the number of matches."""
        self.query_text = text
        self._matches = matching(self._lines, text) if text else []
        self._match = len(self._matches) - 1
        if self._matches:
            self._show_match()
        self._retitle()
        self.refresh()
        return len(self._matches)

    def step_match(self, step: int) -> None:
        if not self._matches:
            return
        self._match = (self._match + step) % len(self._matches)
        self._show_match()

    def _show_match(self) -> None:
        """Scroll so the current match sits in the middle of the view (pauses following)."""
        width, height = self.content_size.width, self.content_size.height
        line = self._matches[self._match]
        below = sum(row_count(row, width, self.app.console) for row in self._lines[line + 1:])
        self.following = False
        self._skip = max(0, below - max(0, height - 1) // 2)
        self._retitle()
        self.refresh()

    def _retitle(self) -> None:
        title = Text("▶ " if self.has_focus else "")
        title.append(self._label)
        if self._attempts > 1:
            title.append(f" · attempt {self._attempt}/{self._attempts}")
        if self.query_text:  # a match shown pauses following: no room to say so too
            found = (f"{self._match + 1}/{len(self._matches)}" if self._matches
                     else "no match")
            title.append(f" · /{terminal_safe(self.query_text)} {found}")
        elif not self.following:
            title.append(" · paused")
        self.border_title = title

    def on_mount(self) -> None:
        self._retitle()

    def on_resize(self) -> None:
        """Under 80 columns the footer keeps its room for the step's keys, help and quit:
        `f` and `ctrl+s` leave it (they still answer, and the help screen lists them)."""
        narrow = self.app.size.width < NARROW_FOOTER
        offer_keys(self, FOOTER_WHEN_WIDE, lambda _action: not narrow)

    def watch_has_focus(self, has_focus: bool) -> None:
        super().watch_has_focus(has_focus)
        self._retitle()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_match", "previous_match"):
            return bool(self.query_text)
        if action == "attempt":
            return self._attempts > 1
        return True

    def action_scroll_rows(self, rows: int) -> None:
        self.scroll_by(rows)

    def action_scroll_page(self, pages: int) -> None:
        self.scroll_by(pages * max(1, self.content_size.height - 1))

    def action_scroll_home(self) -> None:
        self.scroll_by(len(self._lines) * max(1, self.content_size.width))

    def action_scroll_end(self) -> None:
        self.resume()

    def action_toggle_follow(self) -> None:
        if self.following:
            self.following = False
            self._retitle()
        else:
            self.resume()

    def action_find(self) -> None:
        self.post_message(self.FindAsked())

    def action_next_match(self) -> None:
        self.step_match(1)

    def action_previous_match(self) -> None:
        self.step_match(-1)

    def action_attempt(self, step: int) -> None:
        self.show_attempt(self._attempt + step)

    def action_save(self) -> None:
        self.post_message(self.SaveAsked())

    # --- drawing -----------------------------------------------------------------------------

    def render(self) -> Text:
        if self._placeholder is not None:
            return Text(self._placeholder)
        width, height = self.content_size.width, self.content_size.height
        if width <= 0 or height <= 0:
            return Text()
        lines = self._lines
        if self._matches:
            current, marked = self._matches[self._match], set(self._matches)
            lines = [highlighted(line, self.query_text, index == current)
                     if index in marked else line
                     for index, line in enumerate(lines)]
        rows, self._skip = window(lines, width, height, self.app.console, self._skip)
        if self.app.current_theme.variables.get(LOG_COLOURS_VARIABLE) == "off":
            rows = [without_colour(row) for row in rows]
        return Text("\n").join(rows)
