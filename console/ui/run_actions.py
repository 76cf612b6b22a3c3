"""What a person asks of the run from the run screen: start it (asking for the params it
lacks), approve, deny or override a gate, retry a step, cancel a step or the run, and quit
(cancelling a live run first).

Each action checks it can be taken now and says why not, asks in a dialog when it needs an
answer, then acts on the run through its `RunHandle` only; the Verdict the handle answers
goes back to the screen (`show_verdict`). The actions read and call the screen only through
`RunView`. The dialogs and the loader are imported where first used, off the first frame.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from textual.app import App
    from textual.notifications import SeverityLevel

    from console.host.handle import RunHandle
    from console.policy.verdict import Verdict
    from console.run.state import RunState
    from console.ui.run_options import RunOptions
    from console.ui.screens.approval import GateAction, GateAnswer
    from console.ui.screens.params import ParamValues
    from console.ui.widgets.dag import DagView
    from console.workflow.loaded import LoadedWorkflow


class RunView(Protocol):
    """The part of the run screen the actions read and call."""

    options: RunOptions
    loaded: LoadedWorkflow | None
    load_error: str | None
    given_params: dict[str, str | int | bool]
    handle: RunHandle | None
    last_params: dict[str, str | int | bool]  # those of the last run started
    exit_code: int
    quit_after_run: bool

    @property
    def app(self) -> App[object]: ...

    @property
    def state(self) -> RunState: ...

    @property
    def dag(self) -> DagView: ...

    def run_busy(self) -> bool: ...

    def detach(self) -> None: ...

    def hosted_elsewhere(self) -> bool: ...

    def start_run(self, params: ParamValues, resume_from: str | None = None) -> None: ...

    def show_banner(self, text: str, kind: str = "warning") -> None: ...

    def show_verdict(self, sid: str | None, verdict: Verdict) -> None: ...

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None: ...


class RunActions:
    """The person's actions on the run shown by `view`."""

    def __init__(self, view: RunView) -> None:
        self.view = view

    # --- starting ------------------------------------------------------------------------

    def start(self, ask: bool = True) -> None:
        """Start a run: ask for params if some are missing (or, with `ask`, not given)."""
        view = self.view
        if view.options.attach is not None:
            view.notify(f"Attached to run {view.state.run_id}; start a run of your own with "
                        "`console run FILE`.", severity="warning")
            return
        if view.handle is not None and view.run_busy():
            view.notify("A run is live already; one run at a time.", severity="warning")
            return
        name = view.options.path.name
        if view.loaded is None:
            if view.load_error is None:
                view.notify(f"Still loading {name}.", severity="warning")
            else:
                view.notify(f"{name} has errors; fix them first.", severity="error")
            return
        from console.errors import ParamError
        from console.ui.screens.params import ParamsScreen, as_text
        from console.workflow.params import resolve_params

        model, given_params = view.loaded.model, view.given_params
        missing = [n for n, p in model.params.items() if p.is_required and n not in given_params]
        unasked = [n for n in model.params if n not in given_params]
        if missing or (ask and unasked):
            dialog = ParamsScreen(model, given_params, blink=view.options.blink)
            view.app.push_screen(dialog, self._params_chosen)
            return
        try:
            params = resolve_params(model, {k: as_text(v) for k, v in given_params.items()})
        except ParamError as exc:
            view.show_banner(exc.message, "error")
            return
        view.start_run(params)

    def _params_chosen(self, values: ParamValues | None) -> None:
        if values is None:
            self.view.notify("Run not started.", severity="information")
            return
        self.view.start_run(values)

    # --- gates ---------------------------------------------------------------------------

    def gate(self, action: GateAction) -> None:
        """Approve, deny or override the selected step's gate, in a dialog asking why."""
        view = self.view
        handle = self._live_run()
        sid = self._selected_step() if handle is not None else None
        if handle is None or sid is None:
            return
        step = view.state.steps.get(sid)
        from console.ui.screens.approval import ApprovalScreen
        from console.ui.widgets.node_status import describe

        if step is None or step.status != "awaiting_approval":
            word = describe(step, view.options.clock()).word if step else "pending"
            view.notify(f"{sid} is not waiting at a gate (it is {word}).", severity="warning")
            return
        import os

        from console.policy.verdict import Verdict
        from console.ui.gate_wait import waits_on_others

        elsewhere = waits_on_others(view.state, sid, os.getuid())
        if action == "approve" and elsewhere is not None:
            view.show_verdict(sid, Verdict(False, elsewhere))
            return
        if action == "override" and (step.decision or {}).get("effect") != "deny":
            view.notify(f"Nothing to override on {sid}: no policy denies it, it waits for "
                        "approval (a approves, x denies).", severity="warning")
            return
        if action == "approve" and (step.decision or {}).get("effect") == "deny":
            view.notify(f"A policy denies {sid}; approving cannot lift it. Press o to override "
                        "it (soft policies only, reason required).", severity="warning")
            return
        dialog = ApprovalScreen(step, action, reason_required=step.reason_required,
                                blink=view.options.blink)
        view.app.push_screen(dialog, partial(self._gate_answered, sid))

    async def _gate_answered(self, sid: str, answer: GateAnswer | None) -> None:
        handle = self.view.handle
        if answer is None or handle is None:
            return
        if answer.action == "approve":
            verdict = await handle.approve(sid, answer.reason)
        elif answer.action == "deny":
            verdict = await handle.deny(sid, answer.reason or "")
        else:
            verdict = await handle.override(sid, answer.reason or "")
        self.view.show_verdict(sid, verdict)

    # --- retrying and cancelling ---------------------------------------------------------

    async def retry(self) -> None:
        """Retry the selected step: in the live run, or by resuming the run that ended."""
        view = self.view
        if view.handle is not None and not view.state.live and not view.run_busy():
            self._retry_after_the_run(view.handle)
            return
        handle = self._live_run()
        sid = self._selected_step() if handle is not None else None
        if handle is not None and sid is not None:
            view.show_verdict(sid, await handle.retry(sid))

    def _retry_after_the_run(self, finished: RunHandle) -> None:
        """The run has ended: retrying a step resumes it (successes kept, gates asked again)."""
        view = self.view
        sid = self._selected_step()
        step = view.state.steps.get(sid) if sid is not None else None
        if sid is None or step is None:
            return
        if step.status not in ("failed", "error", "cancelled", "denied", "skipped"):
            view.notify(f"{sid} {step.status.replace('_', ' ')}: nothing to retry.",
                        severity="warning")
            return
        view.notify(f"Resuming run {finished.run_id}: its successes are kept, {sid} runs again.")
        view.start_run(view.last_params, resume_from=finished.run_id)

    def cancel(self) -> None:
        """Cancel the selected step or the whole run, as chosen in a dialog."""
        view = self.view
        if self._live_run() is None:
            return
        sid = view.dag.selected
        step = view.state.steps.get(sid) if sid is not None else None
        from console.ui.screens.confirm import ConfirmScreen

        run_id = view.state.run_id
        choices = [("run", "Cancel the run"), ("no", "Keep going")]
        question = f"Cancel run {run_id}? Running steps are stopped."
        if sid is not None and step is not None and not step.finished:
            choices.insert(0, ("step", f"Cancel {sid}"))
            question = f"Cancel {sid}, or the whole run {run_id}?"
        view.app.push_screen(ConfirmScreen(question, choices), partial(self._cancel_chosen, sid))

    async def _cancel_chosen(self, sid: str | None, choice: str | None) -> None:
        handle = self.view.handle
        if handle is None or choice not in ("step", "run"):
            return
        if choice == "step" and sid is not None:
            self.view.show_verdict(sid, await handle.cancel(sid))
        else:
            self.view.show_verdict(None, await handle.cancel(None))

    # --- quitting ------------------------------------------------------------------------

    def quit(self) -> None:
        """Quit; while a run is live, ask first, then cancel it (the engine records it)."""
        view = self.view
        if view.handle is None or not view.run_busy():
            view.app.exit(view.exit_code)
            return
        from console.ui.screens.confirm import ConfirmScreen

        if view.hosted_elsewhere():
            question = (f"Run {view.state.run_id} goes on in its host. Detach, or cancel it? "
                        "A cancellation is recorded in the audit trail.")
            choices = [("detach", "Detach"), ("quit", "Cancel the run"), ("stay", "Stay")]
            view.app.push_screen(ConfirmScreen(question, choices, danger={"quit"}),
                                 self._quit_chosen)
            return
        else:
            question = (f"Run {view.state.run_id} is live. Quit and cancel it? "
                        "The cancellation is recorded in the audit trail.")
            choices = [("stay", "Keep running"), ("quit", "Cancel the run and quit")]
        # The harmless choice has the focus: enter never cancels a run by accident.
        view.app.push_screen(ConfirmScreen(question, choices, danger={"quit"}), self._quit_chosen)

    async def _quit_chosen(self, choice: str | None) -> None:
        view = self.view
        if choice == "detach":
            view.detach()
            return
        if choice != "quit" or view.handle is None:
            return
        view.quit_after_run = True
        verdict = await view.handle.cancel(None)
        if not verdict.ok and not view.run_busy():
            view.app.exit(view.exit_code)
        view.notify("Cancelling the run; quitting when it has stopped.", timeout=5)

    # --- what every action checks first --------------------------------------------------

    def _live_run(self) -> RunHandle | None:
        if self.view.handle is None or not self.view.state.live:
            self.view.notify("No run is live. Press s to start one.", severity="warning")
            return None
        return self.view.handle

    def _selected_step(self) -> str | None:
        sid = self.view.dag.selected
        if sid is None:
            self.view.notify("No step selected.", severity="warning")
        return sid
