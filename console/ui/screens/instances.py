"""Pick one instance of a step run on many hosts (or over a matrix): its log goes to the
detail's log pane. Each row: the status icon and word, the host (or combination), and for a
host the fingerprint of the key it presented."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from console.run.state import StepState
from console.textsafe import terminal_safe
from console.ui.dialog import Dialog
from console.ui.widgets.node_status import instance_row


class InstancePicker(Dialog[str | None]):
    """Dismisses with the chosen instance's key, or None on escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Back", show=True),
    ]

    DEFAULT_CSS = """
    InstancePicker { align: center middle; }
    InstancePicker > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 90%;
        border: round $primary; background: $panel; padding: 0 1;
    }
    InstancePicker OptionList { height: auto; max-height: 18; }
    """

    def __init__(self, step_id: str, instances: Mapping[str, StepState], now: datetime,
                 current: str | None) -> None:
        super().__init__()
        self.step_id = step_id
        self.instances = dict(instances)
        self.now = now
        self.current = current

    def compose(self) -> ComposeResult:
        width = max((len(k) for k in self.instances), default=0)
        with Vertical():
            yield Label(Text(f"{terminal_safe(self.step_id)}: whose log? (enter)",
                             style="bold"))
            yield OptionList(*(Option(instance_row(key, state, self.now, width), id=key)
                               for key, state in self.instances.items()))

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        keys = list(self.instances)
        if self.current in keys:
            options.highlighted = keys.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
