"""One line asked for the log pane: the text to find, or the file to save the log to.

It sits at the bottom of the screen, over the footer only, so the log it is about stays in
view. The question names files and steps: plain text, never markup.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Label

from console.textsafe import terminal_safe
from console.ui.dialog import Dialog


class LogPrompt(Dialog[str | None]):
    """Dismisses with the text typed (enter), or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Back", show=False),
    ]

    DEFAULT_CSS = """
    LogPrompt { align: left bottom; background: $background 0%; }
    LogPrompt > Vertical {
        width: 1fr; height: auto; border: tall $border; background: $panel; padding: 0 1;
    }
    LogPrompt #prompt-question { width: 1fr; }
    LogPrompt #prompt-hint { width: 1fr; color: $text-muted; }
    """

    def __init__(self, question: str, value: str = "", *, placeholder: str = "",
                 hint: str = "enter: ok · escape: back", blink: bool = True) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.placeholder = placeholder
        self.hint = hint
        self.blink = blink

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(terminal_safe(self.question)), id="prompt-question")
            field = Input(self.value, placeholder=self.placeholder, id="prompt-input")
            field.cursor_blink = self.blink
            yield field
            yield Label(Text(self.hint), id="prompt-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
