"""The run screen: the workflow screen (screens/workflow.py) with the run behind it.

A run is started here (with the params given or asked for) and consumed through its
RunHandle only, in a worker of group "engine": the bridge hands its events to the screen in
batches, and its outcome sets the exit code and opens the summary. What a person asks of
the run (start, approve, deny, override, retry, cancel, quit) is RunActions
(run_actions.py); a stop signal the app catches ends in `interrupt_run` or
`quit_when_run_ends`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, ClassVar

from textual import events, on, work
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState

from console.errors import ConsoleError
from console.run.exit_codes import EXIT_CODES
from console.startup import settled
from console.ui.footer_keys import offer_keys
from console.ui.run_actions import RunActions
from console.ui.run_options import AttachTo, Clock, RunFactory, RunOptions, SettingsFor
from console.ui.screens.workflow import WorkflowScreen

if TYPE_CHECKING:
    from console.events import Event, RunOutcome
    from console.host.handle import RunHandle
    from console.ui.bridge import EventBridge
    from console.ui.screens.params import ParamValues
    from console.workflow.loaded import LoadedWorkflow

# What the app hands the screen lives in run_options.py; the app imports it from here.
__all__ = ["Clock", "RunFactory", "RunOptions", "RunScreen", "SettingsFor"]


class RunScreen(WorkflowScreen):
    # Every key of the screen, the workflow screen's too (the help lists them from here).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve", tooltip="Approve the selected step's gate"),
        Binding("x", "deny", "Deny", tooltip="Deny the selected step's gate (reason required)"),
        Binding("o", "override", "Override", show=False,
                tooltip="Override a soft policy on the selected step (reason required)"),
        Binding("r", "retry", "Retry", tooltip="Retry the failed step and its skipped dependents"),
        Binding("c", "cancel", "Cancel", tooltip="Cancel the selected step or the whole run"),
        Binding("s", "start", "Start", tooltip="Start a run (asks for params if needed)"),
        Binding("e", "next_failed", "Next failed", tooltip="Select the next failed step"),
        Binding("w", "next_gate", "Next gate", tooltip="Select the next step waiting at a gate"),
        Binding("slash", "filter", "Filter", tooltip="Filter steps by name, tag or status"),
        Binding("g", "toggle_view", "Graph/list", show=False, tooltip="Switch graph and list"),
        Binding("b", "toggle_audit", "Audit", show=False, tooltip="Show or hide the audit pane"),
        Binding("escape", "back", "Back", show=False, tooltip="Close the filter or the detail"),
        Binding("d", "detach", "Detach", show=False,
                tooltip="Leave an attached run; it goes on in its host"),
    ]
    # Keys the footer shows only while they do something (every key still answers).
    CONTEXTUAL_KEYS = frozenset({"approve", "deny", "override", "retry", "cancel", "start",
                                 "next_failed", "next_gate"})

    def __init__(self, options: RunOptions) -> None:
        super().__init__(options)
        self.given_params: dict[str, str | int | bool] = dict(options.given_params)
        self.handle: RunHandle | None = None
        self.last_params: dict[str, str | int | bool] = {}  # those of the last run started
        self.bridge: EventBridge | None = None
        self._changed_during_run = False
        self.quit_after_run = False
        self.actions = RunActions(self)
        self._following = False
        self._held: list[Event] = []  # an attached run's events that came before its DAG
        self._ended_early: str | None = None  # its outcome, if it ended before that too

    @on(events.Mount)
    def _follow_at_once(self) -> None:
        # An attached run is followed at once, while its file loads: the hello and the
        # replay cost the run's host, not this process. Its events wait for the DAG.
        if self.options.attach is not None and self.loaded is None:
            self._following = True
            self._follow(self.options.attach)

    # --- the workflow, as it concerns the run --------------------------------------------

    async def workflow_ready(self, loaded: LoadedWorkflow) -> bool:
        first = await super().workflow_ready(loaded)
        if first:
            settled()  # the UI, the workflow and its DAG are built: start-up is over
        if self._held:
            held, self._held = self._held, []
            self.apply_events(held)
        if self._ended_early is not None:
            outcome, self._ended_early = self._ended_early, None
            self._run_ended(outcome)
        if self.options.attach is not None and first and not self._following:
            self._following = True
            self._follow(self.options.attach)
        # A file fixed after failing to load waits for `s`: its run was not started blind.
        elif self.options.start and first:
            self.begin_run(False)
        return first

    def workflow_changed(self) -> None:
        if self.state.live or self.run_busy():
            self._changed_during_run = True
            self.show_banner(f"{self.options.path.name} changed on disk: the change applies to "
                             "the next run.")
            return
        super().workflow_changed()

    # --- starting and running ----------------------------------------------------------

    def begin_run(self, ask: bool = True) -> None:
        """Start a run: ask for params if some are missing (or, with `ask`, not given)."""
        self.actions.start(ask)

    def start_run(self, params: ParamValues, resume_from: str | None = None) -> None:
        from console.run.state import RunState

        self.state = RunState()
        self.verdicts.clear()
        if not self._changed_during_run:
            self.show_banner("")
        self.refresh_views()
        self._run_engine(dict(params), resume_from)

    def run_busy(self) -> bool:
        """The run's worker is running (the run may not have started, or ended, yet)."""
        return any(w.group == "engine" and w.is_running for w in self.workers)

    _engine_busy = run_busy  # the name tests/bench/ui_probe.py calls

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def _run_engine(self, params: ParamValues, resume_from: str | None = None) -> RunOutcome:
        assert self.loaded is not None and self.settings is not None
        settings = self.settings
        if resume_from is not None:
            settings = dataclasses.replace(settings, resume_from=resume_from)
        made = self.options.run_factory(self.loaded, params, settings)
        handle = await made if inspect.isawaitable(made) else made
        self.handle = handle
        self.last_params = dict(params)
        return await self._consume(handle)

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def _follow(self, attach: AttachTo) -> RunOutcome:
        """Show a run hosted elsewhere (`console attach`): no run of our own."""
        handle = await attach()
        self.handle = handle
        return await self._consume(handle)

    async def _consume(self, handle: RunHandle) -> RunOutcome:
        from console.ui.bridge import EventBridge

        bridge = self.bridge = EventBridge(self._apply_or_hold)
        try:
            async for event in handle.events():
                bridge.publish(event)
            return await handle.wait()
        finally:
            bridge.close()

    def _apply_or_hold(self, batch: list[Event]) -> None:
        if self.loaded is None:
            self._held.extend(batch)
        else:
            self.apply_events(batch)

    def hosted_elsewhere(self) -> bool:
        """The run lives in a host process of its own: leaving the UI leaves it running."""
        from console.host.handle import InProcessRun

        if self.options.attach is not None:
            return True
        return self.handle is not None and not isinstance(self.handle, InProcessRun)

    def detach(self) -> None:
        """Leave the run to its host and close the UI (`d`, or the terminal went)."""
        if not self.hosted_elsewhere():
            self.notify("This run lives in this window: q quits (and asks to cancel it).",
                        severity="warning")
            return
        self.quit_after_run = True
        if self.handle is not None and self.run_busy():
            self.handle.interrupt("detach")
        else:
            self.app.exit(0)

    def action_detach(self) -> None:
        self.detach()

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "engine":
            return
        if event.state == WorkerState.SUCCESS:
            self._run_ended(str(worker.result))
        elif event.state == WorkerState.ERROR:
            self._run_failed_to_start(worker.error)

    def _run_ended(self, outcome: str) -> None:
        if self.loaded is None and self.options.attach is not None:
            # An attached run that had ended (or ends) before its workflow file loaded: the
            # summary waits for the DAG and the events held for it.
            self._ended_early = outcome
            return
        self.exit_code = EXIT_CODES.get(outcome, 1)
        self.refresh_views()
        self.notify(f"Run {self.state.run_id} {outcome}.", title="Run finished",
                    severity="information" if outcome == "succeeded" else "error")
        if self._changed_during_run:
            self._changed_during_run = False
            self.reload_workflow()
        if self.quit_after_run:
            self.app.exit(self.exit_code)
            return
        from console.ui.screens.summary import SummaryScreen

        self.app.push_screen(SummaryScreen(self.state, self.audit_head()))

    def audit_head(self) -> str:
        from console.audit.log import AuditLog

        assert self.settings is not None
        try:
            with AuditLog(self.settings.audit_path) as log:
                seq, digest = log.head()
        except ConsoleError as exc:
            return f"unknown ({exc.message})"
        return f"{seq}:{digest}"

    def _run_failed_to_start(self, error: BaseException | None) -> None:
        if self.hosted_elsewhere() and self._left_attached_run(error):
            return
        if isinstance(error, ConsoleError):
            message, self.exit_code = error.message, error.exit_code
        else:
            message, self.exit_code = f"the run stopped unexpectedly: {error!r}", 1
        self.show_banner(f"Run not started: {message}", "error")
        self.notify(message, title="Run not started", severity="error", timeout=10)
        if self.quit_after_run:
            self.app.exit(self.exit_code)

    def _left_attached_run(self, error: BaseException | None) -> bool:
        """An attached run we stopped seeing: we detached (exit 0), or its host went away."""
        from console.host.attached import RunHostLost

        if isinstance(error, RunHostLost):
            workflow = self.state.workflow_path or "FILE"
            message = (f"The run host of {self.state.run_id} went away before the run ended "
                       f"({error.message}). Nothing runs it now; resume it with: "
                       f"console run {workflow} --resume {self.state.run_id}")
            self.exit_code = 1
            self.show_banner(message, "error")
            self.notify(message, title="Run host gone", severity="error", timeout=30)
            return True
        if self.quit_after_run:  # detached on purpose: the run goes on in its host
            self.app.exit(0)
            return True
        return False

    # --- the footer's keys: those that do something now ----------------------------------

    def refresh_views(self, changed: set[str] | None = None) -> None:
        super().refresh_views(changed)
        self.update_keys()

    def keys_that_apply(self) -> set[str]:
        state = self.state
        live = state.live
        sid = self.dag.selected if self.query("#dag") else None
        step = state.steps.get(sid) if sid is not None else None
        shown: set[str] = set()
        if live:
            shown.add("cancel")
        elif self.loaded is not None and self.options.attach is None and not self.run_busy():
            shown.add("start")
        if step is not None and live and step.status == "awaiting_approval":
            denied = (step.decision or {}).get("effect") == "deny"
            shown |= {"override", "deny"} if denied else {"approve", "deny"}
        if step is not None and step.status in ("failed", "error"):
            shown.add("retry")
        statuses = {s.status for s in state.steps.values()}
        if statuses & {"failed", "error"}:
            shown.add("next_failed")
        if "awaiting_approval" in statuses:
            shown.add("next_gate")
        return shown

    def update_keys(self) -> None:
        shown = self.keys_that_apply()
        offer_keys(self, self.CONTEXTUAL_KEYS, shown.__contains__)

    def action_next_failed(self) -> None:
        self._jump(("failed", "error"), "No step has failed.")

    def action_next_gate(self) -> None:
        self._jump(("awaiting_approval",), "No step is waiting at a gate.")

    def _jump(self, statuses: tuple[str, ...], none: str) -> None:
        """Select the next step (after the selected one, layer by layer, round again) in
        one of `statuses`."""
        if self.loaded is None:
            return
        order = self.dag.order
        found = [sid for sid in order
                 if (step := self.state.steps.get(sid)) is not None and step.status in statuses]
        if not found:
            self.notify(none, severity="warning")
            return
        here = order.index(self.dag.selected) if self.dag.selected in order else -1
        after = [sid for sid in found if order.index(sid) > here]
        self.dag.set_selected((after or found)[0], by_person=True)
        self.dag.focus()

    # --- a person's actions on the run (RunActions checks, asks and acts) ----------------

    def action_start(self) -> None:
        self.begin_run(ask=True)

    def action_approve(self) -> None:
        self.actions.gate("approve")

    def action_deny(self) -> None:
        self.actions.gate("deny")

    def action_override(self) -> None:
        self.actions.gate("override")

    async def action_retry(self) -> None:
        await self.actions.retry()

    def action_cancel(self) -> None:
        self.actions.cancel()

    def request_quit(self) -> None:
        """`q`: quit; while a run is live, ask first, then cancel it (the engine records it)."""
        self.actions.quit()

    # --- stopping on a signal (the app catches them) -------------------------------------

    def interrupt_run(self, signal_name: str) -> bool:
        """A stop signal: interrupt the live run (the engine records it and stops the steps)
        and quit once it has ended. False when no run is live: nothing to wait for."""
        if self.handle is None or not self.run_busy():
            return False
        self.quit_after_run = True
        self.handle.interrupt(signal_name)
        return True

    def quit_when_run_ends(self) -> bool:
        """Quit once the live run has ended, as it would have without the UI (the terminal
        is gone and SIGHUP is ignored). False when no run is live."""
        if self.handle is None or not self.run_busy():
            return False
        self.quit_after_run = True
        return True
