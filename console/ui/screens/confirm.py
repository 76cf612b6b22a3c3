"""A yes/no (or one-of-several) question as a modal that dismisses with the chosen key.

The question and the labels are plain text (they name steps and runs): drawn `terminal_safe`,
never read as markup.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label
from textual.widgets.button import ButtonVariant

from console.textsafe import terminal_safe
from console.ui.dialog import Dialog


class ConfirmScreen(Dialog[str | None]):
    """Dismisses with the chosen choice's key, or None on escape.

    `enter` picks the focused button; the first choice has the focus. The dialog is never
    wider than the screen: at 60 columns the question wraps instead of being cut.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Back", show=True),
        Binding("left,h", "app.focus_previous", "Previous choice", show=False),
        Binding("right,l", "app.focus_next", "Next choice", show=False),
    ]

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 70; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $panel; padding: 0 1;
    }
    ConfirmScreen #question { width: 100%; margin-bottom: 1; }
    ConfirmScreen Horizontal { width: auto; height: auto; }
    ConfirmScreen #hint { width: 100%; color: $text-muted; }
    ConfirmScreen Button { margin: 0 1 0 0; min-width: 10; }
    """

    def __init__(self, question: str, choices: Sequence[tuple[str, str]],
                 danger: Collection[str] | None = None) -> None:
        super().__init__()
        self.question = question
        self.choices = list(choices)
        # Drawn as dangerous (default: the first choice, which has the focus).
        self.danger = set(danger) if danger is not None else {self.choices[0][0]}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(terminal_safe(self.question, multiline=True)), id="question")
            with Horizontal():
                for key, label in self.choices:
                    variant: ButtonVariant = "error" if key in self.danger else "default"
                    yield Button(Text(terminal_safe(label)), id=f"choice-{key}", variant=variant)
            yield Label("enter chooses the highlighted · ← → move · escape: back",
                        id="hint")

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    @on(Button.Pressed)
    def _chosen(self, event: Button.Pressed) -> None:
        assert event.button.id is not None
        self.dismiss(event.button.id.removeprefix("choice-"))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
