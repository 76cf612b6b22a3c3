"""The params form: asks for the params not given on the command line before a run starts.

Each field is checked with the same rule as `-p` (coerce_param_value), and the whole set
once more with the loader's resolve_params, so the form can never start a run the command
line would have refused. Names, descriptions, choices, defaults and the problems that quote
them are the workflow author's text: drawn `terminal_safe`, as rich Text (never markup).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, Switch

from console.errors import ParamError
from console.textsafe import terminal_safe
from console.workflow.loader import resolve_params
from console.workflow.model import Param, Workflow, coerce_param_value

ParamValues = dict[str, str | int | bool]


def as_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe_param(name: str, param: Param) -> str:
    parts: list[str] = [param.type]
    if param.choices:
        parts.append("one of " + ", ".join(param.choices))
    if param.pattern:
        parts.append(f"matching {param.pattern}")
    parts.append("required" if param.is_required else "optional")
    head = f"{name} ({'; '.join(parts)})"
    return f"{head}: {param.description}" if param.description else head


class ParamsScreen(ModalScreen[ParamValues | None]):
    """Dismisses with every param resolved (given ones included), or None on escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Start the run"),
    ]

    DEFAULT_CSS = """
    ParamsScreen { align: center middle; }
    ParamsScreen > Vertical {
        width: 72; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $panel; padding: 0 1;
    }
    ParamsScreen #params-title { text-style: bold; }
    ParamsScreen VerticalScroll { height: auto; max-height: 16; }
    ParamsScreen .param-label { margin-top: 1; }
    ParamsScreen .param-problem { color: $text-error; height: auto; }
    ParamsScreen #params-problem { color: $text-error; height: auto; }
    ParamsScreen #params-hint { color: $text-muted; }
    """

    def __init__(self, workflow: Workflow, given: Mapping[str, str | int | bool],
                 *, blink: bool = True) -> None:
        super().__init__()
        self.workflow = workflow
        self.given = {k: as_text(v) for k, v in given.items()}
        self.asked = [name for name in workflow.params if name not in self.given]
        self.blink = blink

    def compose(self) -> ComposeResult:
        with Vertical():
            title = terminal_safe(f"Params for {self.workflow.workflow.name}")
            yield Label(Text(title), id="params-title")
            with VerticalScroll():
                for name in self.asked:
                    param = self.workflow.params[name]
                    label = terminal_safe(describe_param(name, param), multiline=True)
                    yield Label(Text(label), classes="param-label")
                    yield self._field(name, param)
                    yield Static("", id=f"problem-{name}", classes="param-problem")
            yield Static("", id="params-problem")
            yield Button("Start the run", id="params-start", variant="primary")
            yield Label("enter or ctrl+s starts · escape cancels", id="params-hint")

    def _field(self, name: str, param: Param) -> Input | Select[str] | Switch:
        default = param.default
        if param.type == "choice":
            assert param.choices is not None
            options = [(Text(terminal_safe(choice)), choice) for choice in param.choices]
            value = str(default) if default is not None else Select.NULL
            return Select(options, value=value, id=f"param-{name}", allow_blank=default is None)
        if param.type == "bool":
            return Switch(value=bool(default), id=f"param-{name}")
        shown = as_text(default) if default is not None else ""
        placeholder: str = param.type
        if terminal_safe(shown) != shown:
            # An Input draws its value as it is: a default a terminal would act on is left
            # out of the field and named in the placeholder; an empty field takes it.
            shown, placeholder = "", f"{param.type}, default {terminal_safe(shown)}"
        field = Input(value=shown, placeholder=placeholder, id=f"param-{name}")
        field.cursor_blink = self.blink
        return field

    def on_mount(self) -> None:
        first = self.query(f"#param-{self.asked[0]}" if self.asked else "#params-start").first()
        first.focus()

    def _raw_values(self) -> dict[str, str]:
        values = dict(self.given)
        for name in self.asked:
            widget = self.query_one(f"#param-{name}")
            if isinstance(widget, Switch):
                values[name] = as_text(widget.value)
            elif isinstance(widget, Select):
                if widget.value is not Select.NULL:
                    values[name] = str(widget.value)
            elif isinstance(widget, Input) and widget.value.strip():
                values[name] = widget.value
        return values

    def validate(self) -> ParamValues | None:
        """Check every field; show each problem beside its field. None while any remains."""
        raw = self._raw_values()
        ok = True
        for name in self.asked:
            param = self.workflow.params[name]
            problem = ""
            if name in raw:
                try:
                    coerce_param_value(param, raw[name])
                except ValueError as exc:
                    problem = str(exc)
            elif param.is_required:
                problem = "required — give a value"
            self.query_one(f"#problem-{name}", Static).update(Text(terminal_safe(problem)))
            ok = ok and not problem
        overall = self.query_one("#params-problem", Static)
        if not ok:
            overall.update("")
            return None
        try:
            resolved = resolve_params(self.workflow, raw)
        except ParamError as exc:
            overall.update(Text(terminal_safe(exc.message, multiline=True)))
            return None
        overall.update("")
        return dict(resolved)

    def action_submit(self) -> None:
        values = self.validate()
        if values is not None:
            self.dismiss(values)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#params-start")
    def _pressed(self) -> None:
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)
