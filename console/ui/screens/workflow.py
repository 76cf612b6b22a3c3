"""The workflow screen: header, banner, DAG, step detail, filter, audit pane and footer, with
a run's state drawn on them. RunScreen (screens/run.py) is this screen with the run added.

The screen owns the state (a fold of a run's events, applied in batches) and hands it down
to its widgets; they post selection changes up. Its workflow comes from a WorkflowSource,
which loads the file after the first frame, watches it and reads it again, and posts what
happened up; the screen decides what each means for what it shows.
Its messages name steps, runs and files and quote errors and refusals: the placeholder, the
banner and every notification are plain text made `terminal_safe` (never markup).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from console.errors import ConsoleError, WorkflowError
from console.textsafe import terminal_safe
from console.ui.widgets.header import RunHeader
from console.ui.widgets.notices import Notices
from console.ui.workflow_source import WorkflowSource

# The screen paints its shell (header, "loading FILE…", footer) before anything else loads:
# the run domain (events, state, engine, pydantic's workflow model), the DAG and the step
# detail, the dialogs, the audit log and the file watcher are imported where first used.
if TYPE_CHECKING:
    from console.events import Event
    from console.policy.verdict import Verdict
    from console.run.engine import EngineSettings
    from console.run.state import RunState, StepState
    from console.ui.run_options import RunOptions
    from console.ui.widgets.dag import DagView
    from console.ui.widgets.step_detail import StepDetail
    from console.workflow.loaded import LoadedWorkflow

# Imported in the loading thread: mounting them once the workflow has loaded is then cheap.
_MOUNTED_ONCE_LOADED = ("console.ui.widgets.dag", "console.ui.widgets.step_detail")
# A step that starts waiting takes the selection unless the person moved it this recently.
QUIET_BEFORE_AUTOSELECT_S = 4.0
# Under 110 columns the detail opens beside the DAG this wide (console.tcss), and in its
# place when the DAG would have too little room left to show its cards.
WIDE_FROM = 110
NARROW_DETAIL_W = 42


class WorkflowScreen(Screen[None]):
    """Shows one workflow file and a run's state; its keys are bound by RunScreen."""

    # Narrow terminals show the step detail only on `enter`; wide ones always.
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012 (declared without ClassVar by Screen)
        (0, "-narrow"),
        (WIDE_FROM, "-wide"),
    ]

    # The screen focuses the DAG itself once it is mounted; focusing the "loading…"
    # placeholder first would only make the footer rebuild its keys twice more.
    AUTO_FOCUS = ""

    def __init__(self, options: RunOptions) -> None:
        super().__init__()
        self.options = options
        self.loaded = options.loaded
        self.settings: EngineSettings | None = None
        self.load_error: str | None = None
        self._first_load = True
        self._state: RunState | None = None
        self.exit_code = 0
        self.verdicts: dict[str, str] = {}
        # A step run as instances: whose log the detail shows (picked with enter).
        self._chosen_instance: dict[str, str] = {}
        self.banner_text = ""
        self._last_person_move = -math.inf
        self._gate_notices: set[str] = set()  # steps whose gate has a notice up

    # --- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield RunHeader(user=self.options.user, host=self.options.host, id="header")
        yield Static("", id="banner")
        # The DAG and the step detail take the placeholder's place once the workflow has
        # loaded; the filter joins on `/`.
        with Horizontal(id="main"), VerticalScroll(id="placeholder"):
            yield Static(id="placeholder-text")
        yield Notices(id="notices")
        yield Footer(compact=True)
        yield WorkflowSource(self.options.path, self.options.settings_for,
                             preload=_MOUNTED_ONCE_LOADED, id="source")

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

    @property
    def source(self) -> WorkflowSource:
        return self.query_one("#source", WorkflowSource)

    def on_resize(self) -> None:
        # Under 100 columns the keys need the room of the palette's hint (ctrl+p still works).
        self.query_one(Footer).show_command_palette = self.app.size.width >= 100
        self._place_detail()

    def _place_detail(self) -> None:
        """Beside the DAG, or (too narrow for both) in its place until escape."""
        width = self.app.size.width
        # One column for the DAG's scrollbar, should it need one.
        alone = (width < WIDE_FROM and bool(self.query("#dag"))
                 and not self.dag.fits_across(width - NARROW_DETAIL_W - 1))
        self.set_class(alone, "-detail-alone")

    async def on_mount(self) -> None:
        # Textual applies breakpoints on resize; a terminal may not send one at start.
        wide = self.app.size.width >= WIDE_FROM
        self.set_class(not wide, "-narrow")
        self.set_class(wide, "-wide")
        self.on_resize()
        self.set_interval(1.0, self._tick)
        # `loaded` is set by workflow_ready once the DAG is mounted: an attached run's
        # events are held until then.
        loaded = self.loaded or self.source.kept()
        if loaded is not None:
            await self.workflow_ready(loaded)
            return
        self._show_placeholder(f"loading {self.options.path}…")
        self.refresh_views()
        self.call_after_refresh(self.source.load)

    def _show_placeholder(self, text: str) -> None:
        shown = Text(terminal_safe(text, multiline=True))
        self.query_one("#placeholder-text", Static).update(shown)

    # --- the workflow: loaded, failed, changed on disk -----------------------------------

    @on(WorkflowSource.Loaded)
    async def _workflow_loaded(self, event: WorkflowSource.Loaded) -> None:
        self.settings = event.settings
        await self.workflow_ready(event.loaded)

    async def workflow_ready(self, loaded: LoadedWorkflow) -> bool:
        """Show `loaded` (in the placeholder's place, the first time) and watch its files.
        True if it is the first load (RunScreen may then start the run)."""
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
            self.source.start_watching(self.loaded)
        return first

    @on(WorkflowSource.Failed)
    def _workflow_failed(self, event: WorkflowSource.Failed) -> None:
        first, self._first_load = self._first_load, False
        error = event.error
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
            self.source.start_watching(self.loaded)

    @on(WorkflowSource.Changed)
    def _files_changed(self) -> None:
        self.workflow_changed()

    def workflow_changed(self) -> None:
        """The file changed on disk: load it again (RunScreen waits while a run is live)."""
        self.reload_workflow()

    @on(WorkflowSource.WatchFailed)
    def _watch_failed(self, event: WorkflowSource.WatchFailed) -> None:
        self.show_banner(f"Not watching {self.options.path.name} for changes: {event.error}")

    def reload_workflow(self) -> None:
        """Load the file again; on errors keep the last good DAG and say what is wrong."""
        if self.loaded is None:
            self.load_error = None
            self._show_placeholder(f"loading {self.options.path}…")
            self.source.load()
            return
        try:
            loaded = self.source.read_again(self.loaded)
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
        instances = self.state.instances.get(sid) if sid is not None else None
        chosen = self._chosen_instance.get(sid) if sid is not None else None
        self.detail.show(sid, model, state, self.options.clock(), verdict, instances, chosen)

    def _tick(self) -> None:
        if self.state.live:
            self.refresh_views()

    def apply_events(self, batch: list[Event]) -> None:
        """Fold a batch of engine events into the state and redraw once."""
        from console.events import GateOpened, RunStarted, StepFinished, StepOutput

        opened: list[str] = []
        failed: list[str] = []
        changed: set[str] | None = set()
        for event in batch:
            self.state.apply(event)
            if event.step is None:
                changed = None  # a run-wide event: redraw everything
            elif changed is not None:
                # An instance (`deploy[web-03]`) is drawn in its step's group node.
                changed.add(event.step.partition("[")[0])
            if isinstance(event, GateOpened) and event.step is not None:
                opened.append(event.step)
            elif (isinstance(event, StepFinished) and event.step is not None
                  and event.outcome in ("failed", "error") and event.retry_in_s is None):
                failed.append(event.step)
            elif isinstance(event, RunStarted):
                from console.ui.widgets.audit_pane import AuditPane

                for pane in self.query(AuditPane):
                    pane.run_id = event.run
        self.refresh_views(changed)
        self._withdraw_stale_gates()
        for sid in opened:
            self._gate_opened(sid)
        if failed:
            self._steps_failed(failed)
        if any(isinstance(e, StepOutput) and e.step == self.dag.selected for e in batch):
            self.detail.refresh_log()

    def _person_is_elsewhere(self) -> bool:
        """Nobody moved the selection lately: the screen may move it to what needs them."""
        return time.monotonic() - self._last_person_move > QUIET_BEFORE_AUTOSELECT_S

    def ring(self) -> None:
        """The terminal bell, unless the config says `bell = false`."""
        if self.options.bell:
            self.app.bell()

    def _steps_failed(self, failed: list[str]) -> None:
        """A step failed for good (no attempt left): select it, say so, ring."""
        from console.ui.widgets.node_status import describe

        sid = failed[0]
        if self._person_is_elsewhere():
            self.dag.set_selected(sid.partition("[")[0], by_person=False)
        word = describe(self.state.step(sid), self.options.clock()).word
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        hint = ("enter picks whose log to show" if "[" in sid
                else "enter shows its log, e jumps to the next failure, r retries")
        self.notify(f"{sid} {word}{more}: {hint}.", title="Step failed", severity="error")
        self.ring()

    def _withdraw_stale_gates(self) -> None:
        """A gate's notice lasts as long as the gate: approved, denied, timed out, or the
        run over, it goes."""
        for sid in list(self._gate_notices):
            step = self.state.steps.get(sid)
            if step is None or step.status != "awaiting_approval" or not self.state.live:
                self._gate_notices.discard(sid)
                self.withdraw(f"gate:{sid}")

    def _gate_opened(self, sid: str) -> None:
        step = self.state.steps.get(sid)
        if step is None or step.status != "awaiting_approval" or not self.state.live:
            return  # decided in the same batch (a replay on attach): nothing waits on anyone
        if self._person_is_elsewhere():
            self.dag.set_selected(sid, by_person=False)
        import os

        from console.ui.gate_wait import waits_on_others

        elsewhere = waits_on_others(self.state, sid, os.getuid())
        if elsewhere is not None:
            self.show_banner(elsewhere)
            self._gate_notices.add(sid)
            self.notify(elsewhere, title="Waiting for someone else", key=f"gate:{sid}")
            return
        if (step.decision or {}).get("effect") == "deny":
            hint = "a soft policy denies it: press o to override (reason required)"
        else:
            hint = f"needs {step.approvals_required} approval(s): press a to approve, x to deny"
        from console.run.state import held_wave

        held = held_wave(step.wave)
        what = f"{sid}, wave {held[0]} of {held[1]}," if held is not None else sid
        self._gate_notices.add(sid)
        self.notify(f"{what} is waiting — {hint}", title="Approval needed",
                    severity="warning", key=f"gate:{sid}")
        self.ring()

    def show_banner(self, text: str, kind: str = "warning") -> None:
        if not text and not self.banner_text:
            return  # clearing a hidden banner would still cost the screen a layout
        self.banner_text = text
        banner = self.query_one("#banner", Static)
        banner.update(Text(terminal_safe(text, multiline=True)))
        banner.set_class(bool(text), "-shown")
        banner.set_class(kind == "error", "-error")

    def show_verdict(self, sid: str | None, verdict: Verdict) -> None:
        """The answer to a person's action: noted in the step's detail, and notified."""
        if sid is not None:
            self.verdicts[sid] = ("✓ " if verdict.ok else "✗ refused: ") + verdict.message
        self.notify(verdict.message, severity="information" if verdict.ok else "error",
                    title="" if verdict.ok else "Refused")
        self._show_detail()

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False,
               key: str | None = None) -> None:
        """A notice as plain text, safe for the terminal: it names steps and runs and quotes
        errors and refusals, none of which is markup (`markup` is ignored). With `key` it
        stands for a state, until `withdraw(key)` (see console/ui/widgets/notices.py)."""
        text = terminal_safe(message, multiline=True)
        say: Callable[..., None] = self.app.notify
        if key is not None and hasattr(self.app, "withdraw"):
            say(text, title=title, severity=severity, timeout=timeout, key=key)
            return
        say(text, title=title, severity=severity, timeout=timeout)

    def withdraw(self, key: str, *, prefix: bool = False) -> None:
        withdraw = getattr(self.app, "withdraw", None)
        if callable(withdraw):
            withdraw(key, prefix=prefix)

    # Handlers named by Textual's convention, so the DagView class loads with the workflow.
    def on_dag_view_step_selected(self, event: DagView.StepSelected) -> None:
        if event.by_person:
            self._last_person_move = time.monotonic()
        self._show_detail()
        self.update_keys()

    def update_keys(self) -> None:
        """RunScreen shows in the footer the keys that do something now."""

    def on_dag_view_step_opened(self, event: DagView.StepOpened) -> None:
        sid = self.dag.selected
        instances = self.state.instances.get(sid) if sid is not None else None
        if sid is not None and instances:
            self._pick_instance(sid, instances)
            return
        self._open_detail()

    def _pick_instance(self, sid: str, instances: dict[str, StepState]) -> None:
        from console.ui.screens.instances import InstancePicker

        def chosen(key: str | None) -> None:
            if key is not None:
                self._chosen_instance[sid] = key
                self._show_detail()
                self._open_detail()

        picker = InstancePicker(sid, instances, self.options.clock(),
                                self._chosen_instance.get(sid))
        self.app.push_screen(picker, chosen)

    def _open_detail(self) -> None:
        """Show the detail (beside the DAG when narrow) and give its log the focus: the
        log's title and border say so, and up / pageup then scroll the log."""
        self._place_detail()
        self.add_class("-show-detail")
        self.call_after_refresh(self.detail.log_tail.focus)

    # --- browsing: the filter, the detail, graph or list, the audit pane ---------------

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
        self.mount(pane, before=self.query_one(Notices))
