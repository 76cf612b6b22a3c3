"""The run screen: header, DAG, step detail, audit pane and footer, and the run behind them.

The screen owns the run state (a fold of the engine's events, delivered in batches by the
bridge) and hands it down to its widgets; they post selection changes up. The engine runs
in a worker of group "engine"; the workflow file is watched by a worker of group "watch".
Its messages name steps, runs and files and quote errors and refusals: the placeholder, the
banner and every notification are plain text made `terminal_safe` (never markup).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from console.errors import ConsoleError, WorkflowError
from console.run.exit_codes import EXIT_CODES
from console.textsafe import terminal_safe
from console.ui.widgets.header import RunHeader

# The screen paints its shell (header, "loading FILE…", footer) before anything else loads:
# the run domain (events, state, engine, pydantic's workflow model), the DAG and the step
# detail, the dialogs, the audit log and the file watcher are imported where first used.
if TYPE_CHECKING:
    from console.events import Event, RunOutcome
    from console.host.handle import RunHandle
    from console.policy.verdict import Verdict
    from console.run.engine import EngineSettings
    from console.run.state import RunState
    from console.ui.bridge import EventBridge
    from console.ui.screens.approval import GateAction, GateAnswer
    from console.ui.screens.params import ParamValues
    from console.ui.widgets.dag import DagView
    from console.ui.widgets.step_detail import StepDetail
    from console.workflow.loaded import LoadedWorkflow

_MOUNTED_ONCE_LOADED = ("console.ui.widgets.dag", "console.ui.widgets.step_detail")
Clock = Callable[[], datetime]
RunFactory = Callable[
    ["LoadedWorkflow", Mapping[str, str | int | bool], "EngineSettings"], "RunHandle"
]
SettingsFor = Callable[["LoadedWorkflow"], "EngineSettings"]
# A step that starts waiting takes the selection unless the person moved it this recently.
QUIET_BEFORE_AUTOSELECT_S = 4.0


@dataclass(frozen=True)
class RunOptions:
    path: Path
    loaded: LoadedWorkflow | None  # None: load `path` in a worker after the first frame
    given_params: Mapping[str, str | int | bool]
    settings_for: SettingsFor
    run_factory: RunFactory
    clock: Clock
    user: str
    host: str
    start: bool = False
    watch: bool = True
    blink: bool = True


class RunScreen(Screen[None]):
    # Narrow terminals show the step detail only on `enter`; wide ones always.
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012 (declared without ClassVar by Screen)
        (0, "-narrow"),
        (110, "-wide"),
    ]

    # The screen focuses the DAG itself once it is mounted; focusing the "loading…"
    # placeholder first would only make the footer rebuild its keys twice more.
    AUTO_FOCUS = ""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve", tooltip="Approve the selected step's gate"),
        Binding("x", "deny", "Deny", tooltip="Deny the selected step's gate (reason required)"),
        Binding("o", "override", "Override", show=False,
                tooltip="Override a soft policy on the selected step (reason required)"),
        Binding("r", "retry", "Retry", tooltip="Retry the failed step and its skipped dependents"),
        Binding("c", "cancel", "Cancel", tooltip="Cancel the selected step or the whole run"),
        Binding("s", "start", "Start", tooltip="Start a run (asks for params if needed)"),
        Binding("slash", "filter", "Filter", tooltip="Filter steps by name, tag or status"),
        Binding("g", "toggle_view", "Graph/list", show=False, tooltip="Switch graph and list"),
        Binding("b", "toggle_audit", "Audit", show=False, tooltip="Show or hide the audit pane"),
        Binding("escape", "back", "Back", show=False, tooltip="Close the filter or the detail"),
    ]

    def __init__(self, options: RunOptions) -> None:
        super().__init__()
        self.options = options
        self.loaded = options.loaded
        self.settings: EngineSettings | None = None
        self.load_error: str | None = None
        self._first_load = True
        self.given_params: dict[str, str | int | bool] = dict(options.given_params)
        self._state: RunState | None = None
        self.handle: RunHandle | None = None
        self._last_params: dict[str, str | int | bool] = {}
        self.bridge: EventBridge | None = None
        self.exit_code = 0
        self.verdicts: dict[str, str] = {}
        self.banner_text = ""
        self._last_person_move = -math.inf
        self._changed_during_run = False
        self._quit_after_run = False

    # --- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield RunHeader(user=self.options.user, host=self.options.host, id="header")
        yield Static("", id="banner")
        # The DAG and the step detail take the placeholder's place once the workflow has
        # loaded; the filter joins on `/`.
        with Horizontal(id="main"), VerticalScroll(id="placeholder"):
            yield Static(id="placeholder-text")
        yield Footer(compact=True)

    @property
    def state(self) -> RunState:
        """The run's state: a fold of the engine's events (empty until a run starts)."""
        if self._state is None:
            from console.run.state import RunState

            self._state = RunState()
        return self._state

    @state.setter
    def state(self, value: RunState) -> None:
        self._state = value

    @property
    def dag(self) -> DagView:
        from console.ui.widgets.dag import DagView

        return self.query_one("#dag", DagView)

    @property
    def detail(self) -> StepDetail:
        from console.ui.widgets.step_detail import StepDetail

        return self.query_one("#detail", StepDetail)

    async def on_mount(self) -> None:
        # Textual applies breakpoints on resize; a terminal may not send one at start.
        wide = self.app.size.width >= 110
        self.set_class(not wide, "-narrow")
        self.set_class(wide, "-wide")
        self.set_interval(1.0, self._tick)
        if self.loaded is not None:
            await self._workflow_ready(self.loaded)
            return
        self._show_placeholder(f"loading {self.options.path}…")
        self.refresh_views()
        self.call_after_refresh(self._load_workflow)

    def _show_placeholder(self, text: str) -> None:
        shown = Text(terminal_safe(text, multiline=True))
        self.query_one("#placeholder-text", Static).update(shown)

    @work(exclusive=True, group="load", exit_on_error=False, thread=True)
    def _load_workflow(self) -> tuple[LoadedWorkflow, EngineSettings]:
        """In a thread, after the first frame: parse and validate the file (pydantic and
        the engine are imported here too, so starting the run does not pay for them)."""
        from console.workflow.loader import load_workflow

        loaded = load_workflow(self.options.path)
        settings = self.options.settings_for(loaded)
        for module in _MOUNTED_ONCE_LOADED:  # imported off the UI thread
            importlib.import_module(module)
        return loaded, settings

    async def _workflow_ready(self, loaded: LoadedWorkflow) -> None:
        from console.ui.widgets.dag import DagView
        from console.ui.widgets.step_detail import StepDetail

        if not self.query("#dag"):
            await self.query("#placeholder").remove()
            await self.query_one("#main", Horizontal).mount(DagView(id="dag"),
                                                            StepDetail(id="detail"))
            self.dag.focus()
        first, self._first_load = self._first_load, False
        self.loaded = loaded
        self.load_error = None
        self.exit_code = 0
        if self.settings is None:
            self.settings = self.options.settings_for(loaded)
        self.dag.set_workflow(loaded.steps)
        self.refresh_views()
        if self.options.watch:
            self._watch_workflow()
        # A file fixed after failing to load waits for `s`: its run was not started blind.
        if self.options.start and first:
            self.begin_run(False)

    def _workflow_failed(self, error: BaseException | None) -> None:
        first, self._first_load = self._first_load, False
        if isinstance(error, ConsoleError):
            message, self.exit_code = error.message, error.exit_code
        else:
            message, self.exit_code = f"{self.options.path}: cannot load it: {error!r}", 1
        self.load_error = message
        then = "fix them and save (it loads again)" if self.options.watch else "fix them"
        self._show_placeholder(f"{self.options.path.name} has errors; {then}, or press q to "
                               f"quit:\n\n{message}")
        self.query_one("#placeholder").focus()
        if self.options.watch and first:
            self._watch_workflow()

    # --- state down --------------------------------------------------------------------

    def refresh_views(self, changed: set[str] | None = None) -> None:
        """Hand the state down; `changed` names the only steps whose state changed."""
        now = self.options.clock()
        loaded = self.loaded
        if loaded is None:
            self.query_one(RunHeader).show_file(self.options.path.name)
            return
        workflow = self.state.workflow or loaded.name
        self.query_one(RunHeader).show(workflow, self.state, now, len(loaded.steps))
        self.dag.set_state(self.state, now, changed)
        self._show_detail()

    def _show_detail(self) -> None:
        sid = self.dag.selected
        state = self.state.steps.get(sid) if sid is not None else None
        steps = self.loaded.steps if self.loaded is not None else {}
        model = steps.get(sid) if sid is not None else None
        verdict = self.verdicts.get(sid) if sid is not None else None
        self.detail.show(sid, model, state, self.options.clock(), verdict)

    def _tick(self) -> None:
        if self.state.live:
            self.refresh_views()

    def apply_events(self, batch: list[Event]) -> None:
        """Fold a batch of engine events into the state and redraw once."""
        from console.events import GateOpened, RunStarted, StepOutput

        opened: list[str] = []
        changed: set[str] | None = set()
        for event in batch:
            self.state.apply(event)
            if event.step is None:
                changed = None  # a run-wide event: redraw everything
            elif changed is not None:
                changed.add(event.step)
            if isinstance(event, GateOpened) and event.step is not None:
                opened.append(event.step)
            elif isinstance(event, RunStarted):
                from console.ui.widgets.audit_pane import AuditPane

                for pane in self.query(AuditPane):
                    pane.run_id = event.run
        self.refresh_views(changed)
        for sid in opened:
            self._gate_opened(sid)
        if any(isinstance(e, StepOutput) and e.step == self.dag.selected for e in batch):
            self.detail.refresh_log()

    def _gate_opened(self, sid: str) -> None:
        if time.monotonic() - self._last_person_move > QUIET_BEFORE_AUTOSELECT_S:
            self.dag.set_selected(sid, by_person=False)
        step = self.state.steps[sid]
        if (step.decision or {}).get("effect") == "deny":
            hint = "a soft policy denies it: press o to override (reason required)"
        else:
            hint = f"needs {step.approvals_required} approval(s): press a to approve, x to deny"
        self.notify(f"{sid} is waiting — {hint}", title="Approval needed",
                    severity="warning", timeout=10)

    def show_banner(self, text: str, kind: str = "warning") -> None:
        if not text and not self.banner_text:
            return  # clearing a hidden banner would still cost the screen a layout
        self.banner_text = text
        banner = self.query_one("#banner", Static)
        banner.update(Text(terminal_safe(text, multiline=True)))
        banner.set_class(bool(text), "-shown")
        banner.set_class(kind == "error", "-error")

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """A notification as plain text, safe for the terminal: it names steps and runs and
        quotes errors and refusals, none of which is markup (`markup` is ignored)."""
        super().notify(terminal_safe(message, multiline=True), title=title, severity=severity,
                       timeout=timeout, markup=False)

    # Handlers named by Textual's convention, so the DagView class loads with the workflow.
    def on_dag_view_step_selected(self, event: DagView.StepSelected) -> None:
        if event.by_person:
            self._last_person_move = time.monotonic()
        self._show_detail()

    def on_dag_view_step_opened(self, event: DagView.StepOpened) -> None:
        if self.has_class("-narrow"):
            self.toggle_class("-show-detail")
        else:
            self.query_one("#detail-scroll").focus()

    # --- starting and running ----------------------------------------------------------

    def begin_run(self, ask: bool = True) -> None:
        """Start a run: ask for params if some are missing (or, with `ask`, not given)."""
        if self.handle is not None and self._engine_busy():
            self.notify("A run is live already; one run at a time.", severity="warning")
            return
        if self.loaded is None:
            if self.load_error is None:
                self.notify(f"Still loading {self.options.path.name}.", severity="warning")
            else:
                self.notify(f"{self.options.path.name} has errors; fix them first.",
                            severity="error")
            return
        from console.errors import ParamError
        from console.ui.screens.params import ParamsScreen, as_text
        from console.workflow.loader import resolve_params

        declared = self.loaded.model.params
        missing = [n for n, p in declared.items() if p.is_required and n not in self.given_params]
        unasked = [n for n in declared if n not in self.given_params]
        if missing or (ask and unasked):
            self.app.push_screen(
                ParamsScreen(self.loaded.model, self.given_params, blink=self.options.blink),
                self._params_chosen,
            )
            return
        try:
            given = {k: as_text(v) for k, v in self.given_params.items()}
            params = resolve_params(self.loaded.model, given)
        except ParamError as exc:
            self.show_banner(exc.message, "error")
            return
        self._start(params)

    def _params_chosen(self, values: ParamValues | None) -> None:
        if values is None:
            self.notify("Run not started.", severity="information")
            return
        self._start(values)

    def _start(self, params: ParamValues, resume_from: str | None = None) -> None:
        from console.run.state import RunState

        self.state = RunState()
        self.verdicts.clear()
        if not self._changed_during_run:
            self.show_banner("")
        self.refresh_views()
        self._run_engine(dict(params), resume_from)

    def _engine_busy(self) -> bool:
        return any(w.group == "engine" and w.is_running for w in self.workers)

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def _run_engine(self, params: ParamValues, resume_from: str | None = None) -> RunOutcome:
        from console.ui.bridge import EventBridge

        assert self.loaded is not None and self.settings is not None
        settings = self.settings
        if resume_from is not None:
            settings = dataclasses.replace(settings, resume_from=resume_from)
        handle = self.options.run_factory(self.loaded, params, settings)
        self.handle = handle
        self._last_params = dict(params)
        bridge = self.bridge = EventBridge(self.apply_events)
        try:
            async for event in handle.events():
                bridge.publish(event)
            return await handle.wait()
        finally:
            bridge.close()

    @on(Worker.StateChanged)
    async def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "engine":
            if event.state == WorkerState.SUCCESS:
                self._run_ended(str(worker.result))
            elif event.state == WorkerState.ERROR:
                self._run_failed_to_start(worker.error)
        elif worker.group == "load":
            if event.state == WorkerState.SUCCESS:
                result = cast("tuple[LoadedWorkflow, EngineSettings]", worker.result)
                loaded, self.settings = result
                await self._workflow_ready(loaded)
            elif event.state == WorkerState.ERROR:
                self._workflow_failed(worker.error)
        elif worker.group == "watch" and event.state == WorkerState.ERROR:
            self.show_banner(f"Not watching {self.options.path.name} for changes: "
                             f"{worker.error}")

    def _run_ended(self, outcome: str) -> None:
        self.exit_code = EXIT_CODES.get(outcome, 1)
        self.refresh_views()
        self.notify(f"Run {self.state.run_id} {outcome}.", title="Run finished",
                    severity="information" if outcome == "succeeded" else "error")
        if self._changed_during_run:
            self._changed_during_run = False
            self.reload_workflow()
        if self._quit_after_run:
            self.app.exit(self.exit_code)
            return
        from console.ui.screens.summary import SummaryScreen

        self.app.push_screen(SummaryScreen(self.state, self._audit_head()))

    def _audit_head(self) -> str:
        from console.audit.log import AuditLog

        assert self.settings is not None
        try:
            with AuditLog(self.settings.audit_path) as log:
                seq, digest = log.head()
        except ConsoleError as exc:
            return f"unknown ({exc.message})"
        return f"{seq}:{digest}"

    def _run_failed_to_start(self, error: BaseException | None) -> None:
        if isinstance(error, ConsoleError):
            message, self.exit_code = error.message, error.exit_code
        else:
            message, self.exit_code = f"the run stopped unexpectedly: {error!r}", 1
        self.show_banner(f"Run not started: {message}", "error")
        self.notify(message, title="Run not started", severity="error", timeout=10)
        if self._quit_after_run:
            self.app.exit(self.exit_code)

    # --- watching the file ---------------------------------------------------------------

    @work(exclusive=True, group="watch", exit_on_error=False)
    async def _watch_workflow(self) -> None:
        from console.ui.watch import watch_files

        path = self.options.path.resolve()
        names = self.loaded.file_hashes if self.loaded is not None else {}
        files = [path, *(Path(name) for name in names if Path(name) != path)]
        await watch_files(files, self._files_changed)

    def _files_changed(self, changed: set[Path]) -> None:
        if self.state.live or self._engine_busy():
            self._changed_during_run = True
            self.show_banner(f"{self.options.path.name} changed on disk: the change applies to "
                             "the next run.")
            return
        self.reload_workflow()

    def reload_workflow(self) -> None:
        """Load the file again; on errors keep the last good DAG and say what is wrong."""
        from console.workflow.loader import load_workflow

        if self.loaded is None:
            self.load_error = None
            self._show_placeholder(f"loading {self.options.path}…")
            self._load_workflow()
            return
        try:
            loaded = load_workflow(self.loaded.path)
        except WorkflowError as exc:
            self.show_banner(f"{self.loaded.path.name} has errors; showing the last good "
                             f"version until they are fixed:\n{exc.message}", "error")
            return
        from console.run.state import RunState

        self.loaded = loaded
        self.state = RunState()
        self.dag.set_workflow(loaded.steps)
        self.show_banner("")
        self.refresh_views()
        self.notify(f"Reloaded {loaded.path.name}.", timeout=3)

    # --- actions -------------------------------------------------------------------------

    def _live_run(self) -> RunHandle | None:
        if self.handle is None or not self.state.live:
            self.notify("No run is live. Press s to start one.", severity="warning")
            return None
        return self.handle

    def _selected_step(self) -> str | None:
        sid = self.dag.selected
        if sid is None:
            self.notify("No step selected.", severity="warning")
        return sid

    def show_verdict(self, sid: str | None, verdict: Verdict) -> None:
        if sid is not None:
            self.verdicts[sid] = ("✓ " if verdict.ok else "✗ refused: ") + verdict.message
        self.notify(verdict.message, severity="information" if verdict.ok else "error",
                    title="" if verdict.ok else "Refused")
        self._show_detail()

    def action_approve(self) -> None:
        self._gate_action("approve")

    def action_deny(self) -> None:
        self._gate_action("deny")

    def action_override(self) -> None:
        self._gate_action("override")

    def _gate_action(self, action: GateAction) -> None:
        handle = self._live_run()
        sid = self._selected_step() if handle is not None else None
        if handle is None or sid is None:
            return
        step = self.state.steps.get(sid)
        from console.ui.screens.approval import ApprovalScreen
        from console.ui.widgets.node_status import describe

        if step is None or step.status != "awaiting_approval":
            word = describe(step, self.options.clock()).word if step else "pending"
            self.notify(f"{sid} is not waiting at a gate (it is {word}).", severity="warning")
            return
        if action == "approve" and (step.decision or {}).get("effect") == "deny":
            self.notify(f"A policy denies {sid}; approving cannot lift it. Press o to override "
                        "it (soft policies only, reason required).", severity="warning")
            return
        dialog = ApprovalScreen(step, action, reason_required=step.reason_required,
                                blink=self.options.blink)
        self.app.push_screen(dialog, partial(self._gate_answered, sid))

    async def _gate_answered(self, sid: str, answer: GateAnswer | None) -> None:
        handle = self.handle
        if answer is None or handle is None:
            return
        if answer.action == "approve":
            verdict = await handle.approve(sid, answer.reason)
        elif answer.action == "deny":
            verdict = await handle.deny(sid, answer.reason or "")
        else:
            verdict = await handle.override(sid, answer.reason or "")
        self.show_verdict(sid, verdict)

    async def action_retry(self) -> None:
        if self.handle is not None and not self.state.live and not self._engine_busy():
            self._retry_after_the_run(self.handle)
            return
        handle = self._live_run()
        sid = self._selected_step() if handle is not None else None
        if handle is not None and sid is not None:
            self.show_verdict(sid, await handle.retry(sid))

    def _retry_after_the_run(self, finished: RunHandle) -> None:
        """The run has ended: retrying a step resumes it (successes kept, gates asked again)."""
        sid = self._selected_step()
        step = self.state.steps.get(sid) if sid is not None else None
        if sid is None or step is None:
            return
        if step.status not in ("failed", "error", "cancelled", "denied", "skipped"):
            self.notify(f"{sid} {step.status.replace('_', ' ')}: nothing to retry.",
                        severity="warning")
            return
        self.notify(f"Resuming run {finished.run_id}: its successes are kept, {sid} runs again.")
        self._start(self._last_params, resume_from=finished.run_id)

    def action_cancel(self) -> None:
        if self._live_run() is None:
            return
        sid = self.dag.selected
        step = self.state.steps.get(sid) if sid is not None else None
        from console.ui.screens.confirm import ConfirmScreen

        choices = [("run", "Cancel the run"), ("no", "Keep going")]
        question = f"Cancel run {self.state.run_id}? Running steps are stopped."
        if sid is not None and step is not None and not step.finished:
            choices.insert(0, ("step", f"Cancel {sid}"))
            question = f"Cancel {sid}, or the whole run {self.state.run_id}?"
        self.app.push_screen(ConfirmScreen(question, choices), partial(self._cancel_chosen, sid))

    async def _cancel_chosen(self, sid: str | None, choice: str | None) -> None:
        handle = self.handle
        if handle is None or choice not in ("step", "run"):
            return
        if choice == "step" and sid is not None:
            self.show_verdict(sid, await handle.cancel(sid))
        else:
            self.show_verdict(None, await handle.cancel(None))

    def action_start(self) -> None:
        self.begin_run(ask=True)

    async def action_filter(self) -> None:
        if self.loaded is None:
            return
        fields = self.query("#filter").results(Input)
        field = next(fields, None)
        if field is None:
            field = Input(placeholder="filter: name, tag or status (tag:prod, status:failed)",
                          id="filter")
            field.cursor_blink = self.options.blink
            await self.mount(field, after=self.query_one("#main"))
        field.add_class("-shown")
        field.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.dag.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        field = self.query_one("#filter", Input)
        if not event.value.strip():
            field.remove_class("-shown")
        self.dag.focus()

    def action_back(self) -> None:
        if self.loaded is None:
            return
        field = next(self.query("#filter").results(Input), None)
        if field is not None and field.has_class("-shown"):
            field.value = ""
            field.remove_class("-shown")
            self.dag.set_filter("")
            self.dag.focus()
        elif self.has_class("-show-detail"):
            self.remove_class("-show-detail")
            self.dag.focus()
        elif self.focused is not self.dag:
            self.dag.focus()

    def action_toggle_view(self) -> None:
        if self.loaded is None:
            return
        mode = self.dag.toggle_mode()
        self.notify(f"Showing the {mode}.", timeout=2)

    def action_toggle_audit(self) -> None:
        from console.ui.widgets.audit_pane import AuditPane

        panes = self.query(AuditPane)
        if panes:
            panes.remove()
            self.dag.focus()
            return
        if self.settings is None:
            self.notify("The audit file is known once the workflow has loaded.",
                        severity="warning")
            return
        pane = AuditPane(self.settings.audit_path, self.state.run_id, id="audit")
        self.mount(pane, before=self.query_one(Footer))

    def request_quit(self) -> None:
        """`q`: quit; while a run is live, ask first, then cancel it (the engine records it)."""
        if self.handle is None or not self._engine_busy():
            self.app.exit(self.exit_code)
            return
        from console.ui.screens.confirm import ConfirmScreen

        question = (f"Run {self.state.run_id} is live. Quit and cancel it? "
                    "The cancellation is recorded in the audit trail.")
        self.app.push_screen(
            ConfirmScreen(
                question, [("quit", "Cancel the run and quit"), ("stay", "Keep running")]
            ),
            self._quit_chosen,
        )

    async def _quit_chosen(self, choice: str | None) -> None:
        if choice != "quit" or self.handle is None:
            return
        self._quit_after_run = True
        verdict = await self.handle.cancel(None)
        if not verdict.ok and not self._engine_busy():
            self.app.exit(self.exit_code)
        self.notify("Cancelling the run; quitting when it has stopped.", timeout=5)

    # --- stopping on a signal (the app catches them) -------------------------------------

    def interrupt_run(self, signal_name: str) -> bool:
        """A stop signal: interrupt the live run (the engine records it and stops the steps)
        and quit once it has ended. False when no run is live: nothing to wait for."""
        if self.handle is None or not self._engine_busy():
            return False
        self._quit_after_run = True
        self.handle.interrupt(signal_name)
        return True

    def quit_when_run_ends(self) -> bool:
        """Quit once the live run has ended, as it would have without the UI (the terminal
        is gone and SIGHUP is ignored). False when no run is live."""
        if self.handle is None or not self._engine_busy():
            return False
        self._quit_after_run = True
        return True
