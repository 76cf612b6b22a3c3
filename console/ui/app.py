"""ConsoleApp and the one factory that builds it for the CLI, the tests and snapshot apps."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding, BindingType
from textual.filter import Monochrome
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import Theme

from console.config import Config, ConfigError, save_theme
from console.run.lifeline import EXIT_INTERRUPTED, Lifeline, LiveRun, catch_stop_signals
from console.ui.color_filter import WithoutColor
from console.ui.dialog import Dialog
from console.ui.driver import ConsoleDriver
from console.ui.run_factories import (
    SettingsFor,
    default_run_factory,
    hosted_run_factory,
    local_identity,
    settings_maker,
    watched,
)
from console.ui.run_options import AttachTo
from console.ui.screens.help import HelpScreen
from console.ui.screens.run import Clock, RunFactory, RunOptions, RunScreen
from console.ui.themes import initial_theme, load_themes, next_theme, register_themes
from console.ui.widgets.notices import Notice, NoticeBoard, Notices

# The engine, the workflow model (pydantic) and the audit pane load after the first frame:
# the shell paints first, then a worker loads the workflow (see RunScreen).
if TYPE_CHECKING:
    from rich.console import RenderableType

    from console.host.handle import RunHandle
    from console.run.engine import EngineSettings, Executor
    from console.workflow.loaded import LoadedWorkflow

# The engine's default grace between SIGTERM and SIGKILL (EngineSettings.grace_s), for a
# signal that arrives before the workflow (and its settings) has loaded.
DEFAULT_GRACE_S = 10.0
# The lifeline ends the process this much before the stop budget runs out.
LIFELINE_MARGIN_S = 1.0
# Once no run is live, how long stopping may take (Textual's shutdown, the interpreter's).
SHUTDOWN_S = 5.0
# How often the app looks whether its terminal is still there.
TERMINAL_CHECK_S = 1.0
# How long a notice that stands for no state stays (seconds), by severity.
NOTICE_S = {"information": 4.0, "warning": 8.0, "error": 12.0}

_KEY_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
    "escape": "esc",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
}


def _key_label(keys: str) -> str:
    return " ".join(_KEY_NAMES.get(k, k) for k in keys.split(","))


def _bindings(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    return [
        (_key_label(b.key), b.tooltip or b.description)
        for b in bindings
        if isinstance(b, Binding)
    ]


# The app's own bindings' actions (BINDINGS below).
_APP_KEYS = frozenset({"next_theme", "help", "ask_quit"})


class ConsoleApp(App[int]):
    CSS_PATH = "console.tcss"
    TITLE = "console"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "next_theme", "Theme", show=False, tooltip="Switch to the next theme"),
        Binding("question_mark", "help", "Help", tooltip="Every key, in one place"),
        # Its own action, not Textual's "quit", so that ctrl+q ("quit") still works in dialogs.
        Binding("q", "ask_quit", "Quit", tooltip="Quit (asks first while a run is live)"),
    ]

    def __init__(self, options: RunOptions, *, themes: list[Theme], theme: str,
                 remember_theme: bool = True) -> None:
        # The driver never waits on a terminal that went away (see console/ui/driver.py).
        super().__init__(driver_class=ConsoleDriver)
        if self.no_color:
            # Textual's NO_COLOR filter still sends greys (and a black background): send no
            # colour at all, only bold, reverse and the like.
            self._filters = [f for f in self._filters if not isinstance(f, Monochrome)]
            self._filters.append(WithoutColor())
        self.live_run = LiveRun()
        options = dataclasses.replace(
            options, run_factory=watched(options.run_factory, self.live_run)
        )
        self.options = options
        self.theme_names = register_themes(self, themes)
        self.remember_theme = remember_theme
        self.theme = theme
        self.run_screen = RunScreen(options)
        self.lifeline: Lifeline | None = None
        self._signal_loop: asyncio.AbstractEventLoop | None = None
        self._caught: tuple[signal.Signals, ...] = ()
        self._hangup_handled = False
        self._exiting = False
        self.notices = NoticeBoard()

    def use_ansi_colours(self) -> None:
        """16 colours (TERM=xterm): statuses take ANSI colours, so that each differs in
        colour too (console.tcss, `.-ansi16`); truecolour greys all map to white there.
        They reach the terminal as ANSI codes: Textual would otherwise turn them into
        truecolour by its own palette, and back into the nearest of the 16 (red became
        magenta, green bright green)."""
        self.add_class("-ansi16")
        self.ansi_color = True

    def get_default_screen(self) -> Screen[None]:
        return self.run_screen

    def on_mount(self) -> None:
        # (Not headless: snapshots must not depend on the TERM of whoever runs the tests.)
        if self.console.color_system == "standard" and not self.no_color \
                and not self.is_headless:
            self.use_ansi_colours()
        self.set_interval(0.5, self._expire_notices)
        if self.is_headless:
            return
        self.lifeline = Lifeline(self._last_resort, self._stop_budget)
        self._signal_loop = asyncio.get_running_loop()
        self._caught = catch_stop_signals(self._signalled)
        self.lifeline.watch_signals()
        # SIGHUP may be ignored (nohup) or never sent: look at the terminal now and then too.
        self.set_interval(TERMINAL_CHECK_S, self._check_terminal)

    # --- notices (console/ui/widgets/notices.py): they take rows, never cover ----------

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False,
               key: str | None = None) -> None:
        """Say something in the notices strip above the footer. With `key` the notice
        stands for a state and stays until `withdraw(key)`; without, it expires after
        `timeout` seconds (by default, longer the graver it is). Plain text: `markup` is
        ignored."""
        expires = None
        if key is None:
            import time

            expires = time.monotonic() + (timeout if timeout is not None
                                          else NOTICE_S.get(severity, 5.0))
        self.notices.add(Notice(message, title, severity, key, expires))
        self.show_notices()

    def withdraw(self, key: str, *, prefix: bool = False) -> None:
        """The state a notice stood for has ended: take it away."""
        gone = self.notices.withdraw_where(key) if prefix else self.notices.withdraw(key)
        if gone:
            self.show_notices()

    def _expire_notices(self) -> None:
        # Each tick also brings a screen just returned to up to date (the strip redraws
        # only when its notices changed).
        self.notices.expire()
        self.show_notices()

    def show_notices(self) -> None:
        try:
            screen = self.screen
        except ScreenStackError:  # no screen yet, or the app is closing
            return
        for strip in screen.query(Notices):
            strip.show(self.notices.current())

    # --- stopping: signals, a lost terminal, the last resort ----------------------------

    def _signalled(self, name: str) -> None:
        """In the signal handler: hand the signal to the event loop (which may be blocked:
        the lifeline, armed by the signal too, then ends the process)."""
        if self.lifeline is not None:
            self.lifeline.arm(self._stop_budget(), firm=False)
        loop = self._signal_loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the lifeline decides
                loop.call_soon_threadsafe(self._stop_for, name)

    def _stop_for(self, name: str) -> None:
        """Interrupt the live run (the engine records it and stops the steps) and quit once
        it has ended, with 130; without a live run, quit now. A hangup counts once: the
        kernel and the shell may both send one, and the lost terminal reports it too."""
        if name == "SIGHUP":
            if self._hangup_handled:
                return
            self._hangup_handled = True
            self._check_terminal()
        screen = self.run_screen
        if not screen.interrupt_run(name):
            self.exit(screen.exit_code if screen.handle is not None else EXIT_INTERRUPTED)
        if self.lifeline is not None:
            self.lifeline.arm(self._stop_budget())

    @on(ConsoleDriver.TerminalLost)
    def _terminal_lost(self) -> None:
        if signal.SIGHUP in self._caught:
            self._stop_for("SIGHUP")
        elif not self.run_screen.quit_when_run_ends():
            # SIGHUP ignored (nohup): a live run goes on to its end; nothing else can happen.
            self.exit(self.run_screen.exit_code)

    def _check_terminal(self) -> None:
        driver = self._driver
        if isinstance(driver, ConsoleDriver):
            driver.check_terminal()

    def exit(self, result: int | None = None, return_code: int = 0,
             message: RenderableType | None = None) -> None:
        super().exit(result, return_code, message)
        self._exiting = True
        if self.lifeline is not None and self.lifeline.due is not None:
            # Stopping, and the run is over: only Textual's shutdown is left to wait for.
            self.lifeline.arm(self._stop_budget())

    def _stop_budget(self) -> float:
        """How long the process may take to stop from now, less a margin so that it is gone
        by then: with a live run, what the engine says it needs (the grace for its steps,
        cleanups), else the grace plus 5 s; without, SHUTDOWN_S. Called in the signal
        handler too: reads plain attributes only."""
        screen = self.run_screen
        if self._exiting or not self.live_run.live:
            return SHUTDOWN_S - LIFELINE_MARGIN_S
        grace = screen.settings.grace_s if screen.settings is not None else DEFAULT_GRACE_S
        budget = grace + 5.0
        settle = getattr(screen.handle, "settle_within_s", None)
        if callable(settle):
            with contextlib.suppress(Exception):
                budget = float(settle())
        return max(budget - LIFELINE_MARGIN_S, 1.0)

    def _last_resort(self) -> None:
        """In the lifeline's thread, just before os._exit: no step outlives the console, and
        the terminal (if still there) is given back."""
        self.live_run.kill_steps()
        driver = self._driver
        if isinstance(driver, ConsoleDriver):
            driver.restore_now("console: the run did not stop in time after the signal; "
                               "its steps were killed\n")

    def print_exit_note(self) -> None:
        """Once the UI has closed: the run's id, where it got to and the audit head, so
        nothing on screen is lost with it."""
        state = self.run_screen.state
        if state.run_id is None:
            return
        from console.textsafe import terminal_safe

        where = state.status if not state.live else f"{state.status}, still going in its host"
        head = self.run_screen.audit_head() if self.run_screen.settings is not None else None
        print(terminal_safe(f"console: run {state.run_id} {where}"
                            + ("; audit head (keep it to prove the trail later):" if head else ""))
              + (f"\n  {terminal_safe(head)}" if head else ""))

    # --- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The app's own keys are not offered while a dialog is open (console/ui/dialog.py):
        the keys that work there are the dialog's."""
        if action in _APP_KEYS and isinstance(self.screen, Dialog):
            return False
        return super().check_action(action, parameters)

    async def action_quit(self) -> None:
        self.run_screen.request_quit()

    async def action_ask_quit(self) -> None:
        await self.action_quit()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.key_rows()))

    def action_next_theme(self) -> None:
        self.theme = next_theme(self.theme, self.theme_names)
        self.notify(f"Theme: {self.theme}", timeout=2)
        if self.remember_theme:
            try:
                save_theme(self.theme)
            except ConfigError as exc:
                self.notify(exc.message, title="Theme not saved", severity="warning")

    def key_rows(self) -> list[tuple[str, str]]:
        from console.ui.widgets.audit_pane import AuditPane
        from console.ui.widgets.dag import DagView
        from console.ui.widgets.log_tail import LogTail

        rows = _bindings(RunScreen.BINDINGS) + _bindings(DagView.BINDINGS)
        rows += _bindings(ConsoleApp.BINDINGS)
        rows += [(f"{key} (audit pane)", text) for key, text in _bindings(AuditPane.BINDINGS)]
        rows += [(key, f"log: {text}") for key, text in _bindings(LogTail.BINDINGS)]
        rows += [
            ("enter (dialog)", "Confirm the dialog (approve, deny, override, start)"),
            ("esc (dialog)", "Cancel the dialog"),
            ("← → (question)", "The previous / next choice"),
            ("space (form)", "Turn a bool param's switch on or off"),
            ("ctrl+s (form)", "Start the run from the params form"),
            ("tab shift+tab", "Move between panes and fields"),
            ("ctrl+p", "Command palette: every action by name"),
            ("ctrl+q", "Quit (asks first while a run is live)"),
        ]
        return rows

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        run = self.run_screen
        commands: list[tuple[str, str, Callable[[], object]]] = [
            ("Approve step", "Approve the selected step's gate", run.action_approve),
            ("Deny step", "Deny the selected step's gate (reason required)", run.action_deny),
            ("Override policy", "Override a soft policy on the selected step", run.action_override),
            ("Retry step", "Retry the selected failed step", run.action_retry),
            ("Cancel step or run", "Cancel the selected step or the whole run", run.action_cancel),
            ("Start run", "Start a run of this workflow", run.action_start),
            ("Filter steps", "Filter by name, tag or status", run.action_filter),
            ("Toggle graph/list", "Switch the DAG between graph and list", run.action_toggle_view),
            ("Toggle audit pane", "Show or hide the audit trail", run.action_toggle_audit),
            ("Next theme", "Switch to the next console theme", self.action_next_theme),
            ("Keys", "Every key, in one place", self.action_help),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)


def make_app(
    workflow: LoadedWorkflow | Path | str,
    *,
    params: Mapping[str, str | int | bool] | None = None,
    settings: EngineSettings | SettingsFor | None = None,
    theme: str | None = None,
    start: bool = False,
    clock: Clock | None = None,
    executor: Executor | None = None,
    run_factory: RunFactory | None = None,
    watch: bool = True,
    blink: bool = True,
    identity: tuple[str, str] | None = None,
    config: Config | None = None,
    remember_theme: bool = True,
    audit_path: Path | None = None,
    attach: AttachTo | None = None,
) -> ConsoleApp:
    """Build the app. `params` are the values given (e.g. `-p`); the form asks for the rest.

    Given a path, the app paints at once and loads the file in a worker right after the
    first frame ("loading FILE…", or its errors, in place of the DAG). `start` runs at once
    (asking for missing params first); otherwise the app opens idle and `s` starts a run.
    `settings` may be a function of the loaded workflow (called in the loading worker);
    `clock`, `identity` and `blink=False` pin snapshot apps. `audit_path` (--audit)
    outranks `settings`, `[workflow] audit` and the config file.
    """
    if isinstance(workflow, (Path, str)):
        path, loaded = Path(workflow), None
    else:
        path, loaded = workflow.path, workflow
    config = config if config is not None else Config.load()
    themes = load_themes()
    chosen = initial_theme(theme, config, os.environ, [t.name for t in themes])
    user, host = identity if identity is not None else local_identity()
    options = RunOptions(
        path=path,
        loaded=loaded,
        given_params=dict(params or {}),
        settings_for=settings_maker(settings, config, audit_path),
        run_factory=run_factory or default_run_factory(executor),
        clock=clock or (lambda: datetime.now(UTC)),
        user=user,
        host=host,
        start=start,
        watch=watch,
        blink=blink,
        attach=attach,
        bell=config.bell,
    )
    return ConsoleApp(options, themes=themes, theme=chosen, remember_theme=remember_theme)


def run_tui_attached(workflow: Path, socket_path: Path, theme: str | None = None) -> int:
    """`console attach RUN`: the UI on a run hosted elsewhere, acting as this user through
    its socket. `d` or a closed terminal detaches (exit 0; the run goes on); a host that
    goes away is said in place (exit 1)."""

    async def attach() -> RunHandle:
        from console.host.attached import AttachedRun

        return await AttachedRun.connect(socket_path)

    app = make_app(workflow, attach=attach, theme=theme, watch=False)
    code = app.run()
    app.print_exit_note()
    return 1 if code is None else code


def run_tui_recorded(workflow: Path, handle: RunHandle, theme: str | None = None) -> int:
    """`console attach RUN` on a run that has ended: its record, read-only."""

    async def recorded() -> RunHandle:
        return handle

    app = make_app(workflow, attach=recorded, theme=theme, watch=False)
    code = app.run()
    return 0 if code is None else code


def run_tui_path(
    path: Path | str,
    params: dict[str, str | int | bool],
    settings_for: SettingsFor,
    theme: str | None = None,
) -> int:
    """`console run FILE` with the file not yet loaded: the UI paints first, then loads the
    file, calls `settings_for(loaded)` (in the loading worker thread) and starts the run in a
    run host process of its own, attached to it (docs/host.md): closing the terminal, `d`,
    or `q` then "detach" leaves the run going. A file with errors shows them in place of
    the DAG; `q` then exits 1. Returns the exit code: 0 all succeeded, 1 failed, 3 denied,
    130 interrupted or cancelled, 0 when detached from a run still going."""
    app = make_app(path, params=params, settings=settings_for, theme=theme, start=True,
                   run_factory=hosted_run_factory())
    code = app.run()
    app.print_exit_note()
    return 1 if code is None else code
