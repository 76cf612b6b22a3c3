"""Child process for the UI benchmarks: `python ui_probe.py MODE [WORKFLOW] [KEYS_FOR_S]`.

The app runs headless (App.run(headless=True), 80x24). App._display is wrapped on the
instance: Textual calls it with each composed frame (the compositor's update, rendered and
ready to write), so its first call with something to show is the first frame. Headless
skips only the terminal write, which costs the same for every app.

Like the `console` program, the probe calls console.startup.starting() before anything is
imported (for a console app, not for `minimal`).

MODE first-frame: prints `frame` on stdout at the first frame, then exits. WORKFLOW
`minimal` is a one-label Textual app (the yardstick); otherwise make_app(WORKFLOW).
MODE dag-frame: the same, at the first frame with the DAG drawn: the run screen's DagView
holds the workflow's steps, shows some of them and has a size (the file loaded, the DAG
laid out and rendered into that frame), the first frame a person can use. For `minimal`,
the first frame (the label is all there is).
MODE run: make_app(WORKFLOW, start=True); exits when the run's engine worker ends.
MODE keys: make_app(WORKFLOW, start=True); every 0.2 s moves the DAG selection (the `l` or `j`
key, as a Key event sent by the app's driver, the way a terminal's input arrives) and records
the time from the key to the first frame that shows the new selection; prints
`latency MS` per key, until the run ends.
"""

from __future__ import annotations

import sys

if sys.argv[2:3] != ["minimal"]:
    # What `console` (console/__main__.py) does before its imports: the console app is
    # measured as the program runs it; the minimal app is plain Textual.
    from console.startup import starting

    starting()

import asyncio
import time
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Label

SIZE = (80, 24)


class Minimal(App[None]):
    def compose(self) -> ComposeResult:
        yield Label("hello")


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _hook_frames(app: App[Any], on_frame: Any) -> None:
    display = app._display

    def wrapped(screen: Any, renderable: Any) -> None:
        display(screen, renderable)
        if renderable is not None and app._running and not app._batch_count:
            on_frame()

    app._display = wrapped  # type: ignore[method-assign]


def _build(workflow: str, start: bool) -> App[Any]:
    if workflow == "minimal":
        return Minimal()
    from console.ui.app import make_app

    app: App[Any] = make_app(Path(workflow), start=start, watch=False, remember_theme=False)
    return app


def first_frame(workflow: str) -> None:
    app = _build(workflow, start=False)
    shown = False

    def on_frame() -> None:
        nonlocal shown
        if not shown:
            shown = True
            _say("frame")
            app.exit()

    _hook_frames(app, on_frame)
    app.run(headless=True, size=SIZE)


def dag_frame(workflow: str) -> None:
    app = _build(workflow, start=False)
    shown = False

    def dag_drawn() -> bool:
        screen = getattr(app, "run_screen", None)
        if screen is None:
            return True  # the minimal app: its first frame is all of it
        views = list(screen.query("#dag"))  # mounted once the file has loaded
        return any(bool(v.steps) and bool(v.shown_steps) and v.size.area > 0 for v in views)

    def on_frame() -> None:
        nonlocal shown
        if not shown and dag_drawn():
            shown = True
            _say("frame")
            app.exit()

    _hook_frames(app, on_frame)
    app.run(headless=True, size=SIZE)


def _engine_done(app: App[Any]) -> bool:
    """The run is over and the screen has been handed its last events."""
    screen = getattr(app, "run_screen", None)
    if screen is None:
        return True
    status = screen.state.status
    return status not in ("pending", "running") and not screen._engine_busy()


def run_to_end(workflow: str) -> None:
    app = _build(workflow, start=True)

    async def wait_for_run(pilot: Pilot[Any]) -> None:
        while not _engine_done(app):
            await asyncio.sleep(0.01)
        app.exit()

    app.run(headless=True, size=SIZE, auto_pilot=wait_for_run)


def keys_under_load(workflow: str) -> None:
    app = _build(workflow, start=True)
    waiting: list[tuple[float, str | None]] = []  # (pressed at, selection before)

    def dag() -> Any:
        return app.run_screen.dag  # type: ignore[attr-defined]

    def on_frame() -> None:
        if waiting:
            pressed, before = waiting[0]
            if dag().selected != before:
                waiting.clear()
                _say(f"latency {(time.perf_counter() - pressed) * 1000:.2f}")

    _hook_frames(app, on_frame)

    async def press_keys(pilot: Pilot[Any]) -> None:
        while app.run_screen.loaded is None:  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)  # make_app(path) loads the file after the first frame
        while not _engine_done(app):
            await asyncio.sleep(0.2)
            if waiting:
                continue
            view = dag()
            if view.selected == view._order[-1]:
                view.set_selected(view._order[0], by_person=False)
                await asyncio.sleep(0.05)
            waiting.append((time.perf_counter(), view.selected))
            view.focus()
            # From the first step (alone in its layer) forward a layer, then down the layer.
            key = "l" if view.selected == view._order[0] else "j"
            assert app._driver is not None
            app._driver.send_message(events.Key(key, key))  # as the terminal driver does
        app.exit()

    app.run(headless=True, size=SIZE, auto_pilot=press_keys)


if __name__ == "__main__":
    mode, workflow = sys.argv[1], sys.argv[2]
    modes = {"first-frame": first_frame, "dag-frame": dag_frame, "run": run_to_end,
             "keys": keys_under_load}
    modes[mode](workflow)
