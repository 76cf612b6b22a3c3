"""The approval dialog: approve (reason optional or required), deny or override (reason
required). Shows the decision's rules and the approvals so far; dismisses with the answer.
Step ids, rule names, reasons and approvers are someone else's text: drawn `terminal_safe`,
as rich Text (never markup)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Label, Static

from console.run.state import StepState
from console.textsafe import terminal_safe
from console.ui.dialog import Dialog

GateAction = Literal["approve", "deny", "override"]

_TITLES = {
    "approve": "Approve {step}",
    "deny": "Deny {step}",
    "override": "Override the policy on {step}",
}
_HINTS = {
    "approve": "enter approves · escape cancels",
    "deny": "enter denies (the step will not run) · escape cancels",
    "override": "enter overrides (recorded with your reason) · escape cancels",
}


@dataclass(frozen=True)
class GateAnswer:
    action: GateAction
    reason: str | None


def gate_summary(step: StepState) -> Text:
    """The decision's rules and the approvals given so far, as the dialog shows them."""
    text = Text()
    decision = step.decision or {}
    if decision.get("summary"):
        text.append(terminal_safe(str(decision["summary"])) + "\n", style="bold")
    for rule in decision.get("rules") or []:
        if not isinstance(rule, dict):
            continue
        text.append("• ")
        text.append(terminal_safe(str(rule.get("name", "?"))), style="bold")
        level = f", {rule['level']}" if rule.get("level") else ""
        text.append(terminal_safe(f" ({rule.get('effect', '?')}{level})"))
        if rule.get("reason"):
            text.append(terminal_safe(f": {rule['reason']}"))
        text.append("\n")
    text.append(f"Approvals: {len(step.approvals)} of {step.approvals_required} given")
    if step.approvers:
        text.append(terminal_safe(f" · approvers {', '.join(step.approvers)}"))
    for record in step.approvals:
        reason = f" — {record.reason}" if record.reason else ""
        text.append("\n" + terminal_safe(f"  ✓ {record.user} at {record.ts[11:19]}{reason}"))
    return text


class ApprovalScreen(Dialog[GateAnswer | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
    ]

    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; }
    ApprovalScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: round $warning; background: $panel; padding: 0 1;
    }
    ApprovalScreen.-deny > Vertical { border: round $error; }
    ApprovalScreen #title { text-style: bold; margin-bottom: 1; }
    ApprovalScreen #rules { height: auto; max-height: 10; }
    ApprovalScreen #problem { color: $text-error; height: auto; }
    ApprovalScreen #hint { color: $text-muted; }
    """

    def __init__(self, step: StepState, action: GateAction, *, reason_required: bool,
                 blink: bool = True) -> None:
        super().__init__(classes=f"-{action}")
        self.step = step
        self.action = action
        self.reason_required = reason_required or action != "approve"
        self.blink = blink

    def compose(self) -> ComposeResult:
        with Vertical():
            title = _TITLES[self.action].format(step=terminal_safe(self.step.id))
            yield Label(Text(title), id="title")
            with VerticalScroll(id="rules"):
                yield Static(gate_summary(self.step))
            need = "required" if self.reason_required else "optional"
            reason = Input(placeholder=f"reason ({need})", id="reason")
            reason.cursor_blink = self.blink
            yield reason
            yield Static("", id="problem")
            yield Label(_HINTS[self.action], id="hint")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Input.Submitted, "#reason")
    def _submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if self.reason_required and not reason:
            self.query_one("#problem", Static).update(
                f"A reason is required to {self.action} — type it, then enter."
            )
            return
        self.dismiss(GateAnswer(self.action, reason or None))

    def action_cancel(self) -> None:
        self.dismiss(None)
