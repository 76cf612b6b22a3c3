"""The params form: asks for the params not given on the command line before a run starts.

Each field is checked with the same rule as `-p` (coerce_param_value), and the whole set
once more with resolve_params, so the form can never start a run the command
line would have refused. Names, descriptions, choices, defaults and the problems that quote
them are the workflow author's text: drawn `terminal_safe`, as rich Text (never markup).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static, Switch

from console.errors import ParamError
from console.textsafe import terminal_safe
from console.ui.dialog import Dialog
from console.workflow.params import resolve_params
from console.workflow.spec import Param, Workflow, coerce_param_value

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


def placeholder_for(param: Param) -> str:
    """What an empty field asks for, in words: the kind of value, its pattern, required."""
    kind = {"int": "a whole number, e.g. 3", "string": "any text"}.get(param.type, param.type)
    if param.pattern:
        kind = f"text matching {param.pattern}"
    return f"required: {kind}" if param.is_required else f"optional: {kind}"


def field_problem(param: Param, raw: str) -> str:
    """What is wrong with `raw` for `param` ("" if nothing), the pattern quoted as the
    workflow file writes it (the loader's own message doubles its backslashes)."""
    if param.type == "string" and param.pattern is not None:
        if re.search(param.pattern, raw) is None:
            return f"{raw} does not match the pattern {param.pattern}"
        return ""
    try:
        coerce_param_value(param, raw)
    except ValueError as exc:
        return str(exc)
    return ""


def switch_words(value: bool) -> str:
    """A switch's state in words, for terminals that show it in one colour."""
    return "on (true)" if value else "off (false)"


class ParamsScreen(Dialog[ParamValues | None]):
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
    ParamsScreen .param-label { margin-top: 1; width: 1fr; }
    ParamsScreen .param-problem { color: $text-error; height: auto; width: 1fr; display: none; }
    ParamsScreen .param-problem.-shown { display: block; }
    ParamsScreen .param-switch { height: auto; }
    ParamsScreen .switch-state { width: auto; padding: 1 1; }
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
                    field = self._field(name, param)
                    if isinstance(field, Switch):
                        with Horizontal(classes="param-switch"):
                            yield field
                            yield Label(switch_words(field.value), id=f"state-{name}",
                                        classes="switch-state")
                    else:
                        yield field
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
        placeholder = terminal_safe(placeholder_for(param))
        if terminal_safe(shown) != shown:
            # An Input draws its value as it is: a default a terminal would act on is left
            # out of the field and named in the placeholder; an empty field takes it.
            shown, placeholder = "", f"{placeholder}, default {terminal_safe(shown)}"
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
            problem = self._problem(name, param, raw)
            self._show_problem(name, problem)
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

    @staticmethod
    def _problem(name: str, param: Param, raw: Mapping[str, str]) -> str:
        if name in raw:
            return field_problem(param, raw[name])
        return "required — give a value" if param.is_required else ""

    def _show_problem(self, name: str, problem: str) -> None:
        shown = self.query_one(f"#problem-{name}", Static)
        shown.update(Text(terminal_safe(problem)))
        shown.set_class(bool(problem), "-shown")

    def _recheck(self, widget_id: str | None) -> None:
        """A field changed: a problem it showed goes as soon as the value is right (and
        says what is wrong now, if it still is)."""
        name = (widget_id or "").removeprefix("param-")
        shown = next(self.query(f"#problem-{name}").results(Static), None)
        if name not in self.asked or shown is None:
            return
        if shown.has_class("-shown"):
            self._show_problem(name, self._problem(name, self.workflow.params[name],
                                                   self._raw_values()))
        self.query_one("#params-problem", Static).update("")

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        self._recheck(event.input.id)

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        self._recheck(event.select.id)

    @on(Switch.Changed)
    def _switch_changed(self, event: Switch.Changed) -> None:
        name = (event.switch.id or "").removeprefix("param-")
        for state in self.query(f"#state-{name}").results(Label):
            state.update(switch_words(event.value))
        self._recheck(event.switch.id)

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
