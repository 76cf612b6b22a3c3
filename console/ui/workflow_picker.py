"""The picker `console` opens in a directory with several workflows: each file's name, the
workflow's name and description and how many steps it has (or why it does not load).
`enter` opens the highlighted one; `escape` or `q` leaves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from console.errors import ConsoleError
from console.textsafe import terminal_safe


def describe_file(path: Path, shown: str) -> Text:
    from console.workflow.loader import load_workflow

    text = Text(terminal_safe(shown), style="bold")
    try:
        loaded = load_workflow(path)
    except ConsoleError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "does not load"
        text.append("\n    ")
        text.append(terminal_safe(f"does not load: {first.split(': ', 1)[-1]}"), style="red")
        return text
    model = loaded.model
    steps = len(loaded.steps)
    text.append(terminal_safe(f"  {loaded.name} ({steps} step{'s' if steps != 1 else ''})"))
    if model.workflow.description:
        text.append("\n    ")
        text.append(terminal_safe(model.workflow.description), style="dim")
    return text


class WorkflowPickerApp(App[Path | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "leave", "Leave"),
    ]

    def __init__(self, paths: Sequence[Path], base: Path) -> None:
        super().__init__()
        self.paths = list(paths)
        self.base = base

    def compose(self) -> ComposeResult:
        yield Static(f" {len(self.paths)} workflows in {terminal_safe(str(self.base))}; "
                     "enter opens one", id="title")
        yield OptionList(*(Option(describe_file(path, str(path.relative_to(self.base))),
                                  id=str(index)) for index, path in enumerate(self.paths)))
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.exit(self.paths[int(event.option.id or 0)])

    def action_leave(self) -> None:
        self.exit(None)
