"""The picker `console attach` opens when several runs are live: what waits on you first.

Each line is a live run (its id, workflow, who started it, its state); under it, each open
gate with whether you may pass it and when it expires. Runs with a gate you may approve
come first. `enter` attaches to the highlighted run, `escape` or `q` leaves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from console.textsafe import terminal_safe


@dataclass(frozen=True)
class LiveRun:
    run_id: str
    status: Mapping[str, Any]

    @property
    def gates(self) -> dict[str, Mapping[str, Any]]:
        gates = self.status.get("gates") or {}
        return {str(k): v for k, v in gates.items() if isinstance(v, Mapping)}

    @property
    def waits_on_you(self) -> bool:
        return any(gate.get("may_approve") for gate in self.gates.values())


def ordered(runs: list[LiveRun]) -> list[LiveRun]:
    """Runs with a gate you may approve first (the soonest deadline first), then the rest."""
    def key(run: LiveRun) -> tuple[bool, str, str]:
        deadlines = [str(g.get("deadline")) for g in run.gates.values()
                     if g.get("may_approve") and g.get("deadline")]
        return (not run.waits_on_you, min(deadlines, default="~"), run.run_id)

    return sorted(runs, key=key)


def describe(run: LiveRun) -> Text:
    status = run.status
    head = (f"{run.run_id}  {status.get('workflow', '?')}  {status.get('status', '?')}  "
            f"started by {status.get('user', '?')}")
    text = Text(terminal_safe(head), style="bold" if run.waits_on_you else "")
    for step, gate in run.gates.items():
        mark = "you may approve" if gate.get("may_approve") else (
            f"not you: {gate.get('why_not')}" if gate.get("why_not") else "")
        deadline = f", expires {str(gate['deadline'])[:16].replace('T', ' ')} UTC" \
            if gate.get("deadline") else ""
        line = (f"\n    {step}: {gate.get('approvals', 0)}/{gate.get('approvals_required', 1)}"
                f" approvals{deadline}" + (f" ({mark})" if mark else ""))
        text.append(terminal_safe(line, multiline=True))
    return text


class PickerApp(App[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "quit_picker", "Leave"),
    ]

    def __init__(self, runs: list[LiveRun]) -> None:
        super().__init__()
        self.runs = ordered(runs)

    def compose(self) -> ComposeResult:
        yield Static(f" {len(self.runs)} live runs on this host; enter attaches", id="title")
        yield OptionList(*(Option(describe(run), id=run.run_id) for run in self.runs))
        yield Footer()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.exit(event.option.id)

    def action_quit_picker(self) -> None:
        self.exit(None)
