"""Notices: what the console tells a person, in a strip of its own above the footer.

Textual's toasts float over the screen, where they covered the audit head on the summary,
the audit rows and the step a person had selected. A notice instead takes its own rows
(none when there is nothing to say), so it never covers anything. A notice that stands for
a state ("release waits for your approval") carries a key, and whoever ends that state
withdraws it; the others expire. The newest few show, newest first.

The text is plain (never markup) and made `terminal_safe` by whoever notifies; the
severity reads as a word too, so it does not rely on colour.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import Static

SHOWN = 2  # notices on screen at once, the newest
_MARKS = {"information": "•", "warning": "!", "error": "✗"}
_counter = itertools.count()


@dataclass
class Notice:
    text: str
    title: str = ""
    severity: str = "information"  # information | warning | error
    key: str | None = None  # a notice for a state: withdrawn when the state ends
    expires: float | None = None  # time.monotonic(); None: until withdrawn
    serial: int = field(default_factory=lambda: next(_counter))

    def line(self) -> str:
        title = f"{self.title}: " if self.title else ""
        return f"{_MARKS.get(self.severity, '•')} {title}{self.text}"


class NoticeBoard:
    """The app's notices (one board for every screen)."""

    def __init__(self) -> None:
        self._notices: list[Notice] = []

    def add(self, notice: Notice) -> None:
        if notice.key is not None:
            self.withdraw(notice.key)
        self._notices.append(notice)

    def withdraw(self, key: str) -> bool:
        """Drop the notice with `key` (the state it stood for has ended). True if one was."""
        before = len(self._notices)
        self._notices = [n for n in self._notices if n.key != key]
        return len(self._notices) != before

    def withdraw_where(self, prefix: str) -> bool:
        before = len(self._notices)
        self._notices = [n for n in self._notices if not (n.key or "").startswith(prefix)]
        return len(self._notices) != before

    def expire(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        before = len(self._notices)
        self._notices = [n for n in self._notices if n.expires is None or n.expires > now]
        return len(self._notices) != before

    def current(self) -> list[Notice]:
        return self._notices[-SHOWN:]

    def __iter__(self) -> Iterator[Notice]:
        return iter(list(self._notices))

    def __len__(self) -> int:
        return len(self._notices)


class Notices(Static):
    """The strip that shows the board's newest notices; no rows when there are none."""

    DEFAULT_CSS = """
    Notices {
        height: auto;
        max-height: 4;
        display: none;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    Notices.-shown { display: block; }
    Notices > .notices--warning { color: $text-warning; text-style: bold; }
    Notices > .notices--error { color: $text-error; text-style: bold; }
    Notices > .notices--information { color: $foreground; }
    """

    COMPONENT_CLASSES = {"notices--warning", "notices--error", "notices--information"}  # noqa: RUF012

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[int, ...] | None = None

    def on_mount(self) -> None:
        show = getattr(self.app, "show_notices", None)
        if callable(show):
            self.call_after_refresh(show)

    def show(self, notices: list[Notice]) -> None:
        serials = tuple(n.serial for n in notices)
        if serials == self._shown:
            return
        self._shown = serials
        # Newest first, each in at most two rows: the latest news is never the part cut off.
        room = max(20, 2 * (self.app.size.width - 2))
        text = Text(no_wrap=False, overflow="fold")
        for i, notice in enumerate(reversed(notices)):
            if i:
                text.append("\n")
            style = self.get_component_rich_style(f"notices--{notice.severity}", partial=True)
            line = notice.line()
            text.append(line if len(line) <= room else line[: room - 1] + "…", style=style)
        self.update(text)
        self.set_class(bool(notices), "-shown")
