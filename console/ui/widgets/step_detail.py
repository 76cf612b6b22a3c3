"""The selected step: command, env (secrets masked), attempts, timing, the gate's decision
with every rule and reason, approvals so far, and the live tail of its log.

Nearly all of it is someone else's text (the workflow's, an approver's reason, an error):
every such string is drawn through `terminal_safe`, as rich Text (never markup).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from console.present import duration
from console.run.state import StepState
from console.textsafe import terminal_safe
from console.ui.widgets.log_tail import LogTail
from console.ui.widgets.node_status import describe, instance_row

# The workflow model (pydantic) loads after the first frame; a step's model exists only then.
if TYPE_CHECKING:
    from console.workflow.spec import Step

MASK = "••••••"


def masked_env(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """`${secret:NAME}` never shows its value, only which secret it is."""
    from console.workflow.spec import SECRET_REFERENCE

    return [
        (name, SECRET_REFERENCE.sub(lambda m: f"{MASK} (secret {m.group(1)})", value))
        for name, value in env.items()
    ]


def _command_text(state: StepState, model: Step | None) -> str:
    command: tuple[str, ...] | list[str] | str | None = state.command
    if command is None and model is not None:
        command = model.run
    if command is None:
        return "—"
    if isinstance(command, str):
        return command
    return " ".join(_quote(arg) for arg in command)


def _quote(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./=:@%+,{}" for c in arg) else repr(arg)


def _when(ts: str | None) -> str:
    if ts is None:
        return "—"
    return ts.replace("T", " ")[:19] + " UTC"


class StepDetail(Vertical):
    """Shows one step; the screen calls `show` whenever the step or its state changes."""

    DEFAULT_CSS = """
    StepDetail #detail-scroll { height: 1fr; padding: 0 1; }
    StepDetail #detail-body { height: auto; }
    StepDetail #detail-log { height: 1fr; border-top: solid $panel-lighten-2; }
    StepDetail #detail-log:focus { border-top: heavy $border; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # `show` comes with every batch of events: while hidden (a narrow terminal) the
        # latest call waits for the Show event, and an unchanged step is not redrawn.
        self._waiting: tuple[str | None, Step | None, StepState | None, datetime,
                             str | None, Mapping[str, StepState] | None,
                             str | None] | None = None
        self._drawn: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-scroll"):
            yield Static(id="detail-body")
        yield LogTail(id="detail-log")

    @property
    def log_tail(self) -> LogTail:
        return self.query_one("#detail-log", LogTail)

    def refresh_log(self) -> None:
        if self.display:
            self.log_tail.refresh_tail()

    def show(
        self,
        step_id: str | None,
        model: Step | None,
        state: StepState | None,
        now: datetime,
        verdict: str | None = None,
        instances: Mapping[str, StepState] | None = None,
        chosen: str | None = None,
    ) -> None:
        """`instances`: a step run as instances, each by its key; `chosen`: the one whose
        log the log pane shows."""
        if not self.display:
            self._waiting = (step_id, model, state, now, verdict, instances, chosen)
            return
        self._waiting = None
        body = self.query_one("#detail-body", Static)
        if step_id is None:
            if self._drawn != ():
                self._drawn = ()
                body.update(Text("No step selected.", style="italic"))
                self.log_tail.show(None)
            return
        state = state or StepState(id=step_id)
        listed = tuple((k, i.status, i.attempt) for k, i in (instances or {}).items())
        drawn = (step_id, id(model), repr(state), describe(state, now).word, verdict, listed,
                 chosen)
        if drawn != self._drawn:
            self._drawn = drawn
            body.update(render_detail(step_id, model, state, now, verdict, instances, chosen))
        shown = instances.get(chosen) if instances and chosen else None
        source = shown if shown is not None else state
        log_path = Path(source.log_path) if source.log_path else None
        tail = self.log_tail
        tail.label = f"log: {terminal_safe(shown.id)}" if shown else "log"
        if log_path != tail.latest or source.attempt != tail.attempts:
            tail.show(log_path, source.attempt)
        else:
            tail.refresh_tail()

    def on_show(self) -> None:
        if self._waiting is not None:
            self.show(*self._waiting)

    # --- what the log pane asks for ----------------------------------------------------

    def on_log_tail_find_asked(self) -> None:
        from console.ui.screens.log_prompt import LogPrompt

        tail = self.log_tail

        def found(text: str | None) -> None:
            tail.focus()
            if text is None:
                return
            count = tail.find(text.strip())
            if text.strip() and not count:
                self.notify(f"Not in the lines read: {text.strip()}", severity="warning",
                            timeout=3, markup=False)

        prompt = LogPrompt("Find in the log (any case):", tail.query_text,
                           hint="enter: find, then n / N: next / previous · escape: back",
                           blink=self._blink())
        self.app.push_screen(prompt, found)

    def on_log_tail_save_asked(self) -> None:
        from console.ui.screens.log_prompt import LogPrompt

        tail = self.log_tail
        source = tail.path
        if source is None:
            self.notify("This step has no log yet.", severity="warning", timeout=3)
            return

        def chosen(answer: str | None) -> None:
            tail.focus()
            if answer is None:
                return
            if not answer.strip():
                self.notify("Not saved: no file named.", severity="warning", markup=False)
                return
            message, ok = save_log(source, Path(answer.strip()).expanduser())
            self.notify(message, severity="information" if ok else "error", markup=False)

        default = Path.cwd() / f"{source.parent.name}-{source.name}"
        prompt = LogPrompt(f"Save the whole log {source.name} to:", str(default),
                           hint="enter: save (never over an existing file) · escape: back",
                           blink=self._blink())
        self.app.push_screen(prompt, chosen)

    def _blink(self) -> bool:
        options = getattr(self.screen, "options", None)
        return bool(getattr(options, "blink", True))


def save_log(source: Path, target: Path) -> tuple[str, bool]:
    """Copy the whole log `source` to `target` (a new file); what happened, and whether
    it was saved."""
    if target.is_dir():
        target = target / source.name
    try:
        with source.open("rb") as reader, target.open("xb") as writer:
            shutil.copyfileobj(reader, writer)
    except FileExistsError:
        return f"Not saved: {target} exists; give another name.", False
    except OSError as exc:
        return f"Not saved: {exc.filename or target}: {exc.strerror or exc}.", False
    return f"Saved the log to {target} ({target.stat().st_size} bytes).", True



def render_detail(
    step_id: str, model: Step | None, state: StepState, now: datetime, verdict: str | None,
    instances: Mapping[str, StepState] | None = None, chosen: str | None = None,
) -> RenderableType:
    look = describe(state, now)
    parts: list[RenderableType] = []
    head = Text()
    head.append(terminal_safe(step_id), style="bold")
    head.append(f"  {look.icon} {look.word}")
    parts.append(head)
    if model is not None and model.description:
        parts.append(Text(terminal_safe(model.description, multiline=True), style="italic"))
    if model is not None and (model.tags or model.needs):
        line = Text()
        if model.needs:
            line.append("needs ", style="dim").append(terminal_safe(", ".join(model.needs)))
        if model.tags:
            line.append("  tags " if model.needs else "tags ", style="dim")
            line.append(terminal_safe(", ".join(model.tags)))
        parts.append(line)
    if verdict:
        parts.append(Text(terminal_safe(verdict), style="bold"))

    parts.append(_section("Command"))
    parts.append(Text(terminal_safe(_command_text(state, model), multiline=True)))
    if model is not None and model.env:
        parts.append(_section("Env"))
        for name, value in masked_env(model.env):
            parts.append(Text.assemble((terminal_safe(name), "bold"), "=", terminal_safe(value)))

    parts.append(_section("Run"))
    attempts = "not started"
    if state.attempt:
        attempts = f"attempt {state.attempt} of {state.max_attempts}"
    if model is not None and model.retry.attempts > 1 and not state.attempt:
        attempts += f" (up to {model.retry.attempts} attempts)"
    parts.append(Text(attempts))
    parts.append(Text(f"started  {_when(state.started_ts)}"))
    if state.finished_ts:
        parts.append(Text(f"finished {_when(state.finished_ts)}"))
    if state.duration_s is not None:
        parts.append(Text(f"took     {duration(state.duration_s)}"))
    if model is not None and model.timeout is not None:
        from console.workflow.spec import format_duration

        parts.append(Text(f"timeout  {format_duration(model.timeout)}"))
    if state.exit_code is not None:
        parts.append(Text(f"exit code {state.exit_code}"))
    if state.error:
        parts.append(Text(terminal_safe(f"error: {state.error}")))
    if state.reason:
        parts.append(Text(terminal_safe(f"reason: {state.reason}")))

    parts.extend(_gate_parts(state, model))
    if instances:
        noun = "Hosts" if model is not None and model.on is not None else "Instances"
        parts.append(_section(f"{noun} ({len(instances)}) — enter: a {noun[:-1].lower()}'s log"))
        width = max(len(k) for k in instances)
        for key, instance in instances.items():
            row = instance_row(key, instance, now, width)
            if key == chosen:
                row.stylize("reverse")
            parts.append(row)
    return Group(*parts)


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def _gate_parts(state: StepState, model: Step | None) -> list[RenderableType]:
    parts: list[RenderableType] = []
    decision: dict[str, Any] | None = state.decision
    if decision is None and model is not None and model.approval is not None:
        parts.append(_section("Gate"))
        approval = model.approval
        who = ", ".join(approval.approvers) or "anyone but policy limits"
        parts.append(Text(terminal_safe(f"step approval: {approval.approvals} from {who}")
                          + ("; reason required" if approval.reason else "")))
        return parts
    if decision is None:
        return parts
    parts.append(_section("Decision"))
    summary = f"{decision.get('effect', '?')}: {decision.get('summary', '')}".rstrip(": ")
    parts.append(Text(terminal_safe(summary)))
    for rule in decision.get("rules") or []:
        if not isinstance(rule, dict):
            continue
        line = Text("• ")
        line.append(terminal_safe(str(rule.get("name", "?"))), style="bold")
        line.append(terminal_safe(f"  {rule.get('effect', '?')}"))
        if rule.get("level"):
            line.append(terminal_safe(f" ({rule['level']})"))
        if rule.get("reason"):
            line.append(terminal_safe(f" — {rule['reason']}"))
        parts.append(line)
    if state.approvals_required:
        parts.append(_section("Approvals"))
        given = f"{len(state.approvals)} of {state.approvals_required} given"
        if state.approvers:
            given += f"; approvers: {', '.join(state.approvers)}"
        if state.reason_required:
            given += "; a reason is required"
        parts.append(Text(terminal_safe(given)))
        if state.gate_deadline:
            parts.append(Text(f"denied if undecided by {_when(state.gate_deadline)}"))
        if state.approve_command and state.status == "awaiting_approval":
            parts.append(Text(terminal_safe(f"from another terminal: {state.approve_command}"),
                              style="dim"))
    for record in state.approvals:
        reason = f" — {record.reason}" if record.reason else ""
        who = f"{record.user} (uid {record.uid}, {record.via})"
        parts.append(Text(terminal_safe(f"✓ {who} {_when(record.ts)}{reason}")))
    if state.overridden_by is not None:
        o = state.overridden_by
        parts.append(Text(terminal_safe(
            f"⚑ overridden by {o.user} (uid {o.uid}) {_when(o.ts)} — {o.reason}")))
    return parts
