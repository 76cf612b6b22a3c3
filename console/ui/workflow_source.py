"""Where the run screen's workflow comes from: its file, loaded in a worker thread after the
first frame, watched for changes (with the shared policy files it reads), read again.

A widget that draws nothing: the screen tells it what to do (`load`, `start_watching`,
`read_again`) and it posts what happened up (`Loaded`, `Failed`, `Changed`, `WatchFailed`);
the screen decides what each means for what it shows. Its workers are in the groups "load"
and "watch", and their failures are handled by group. The loader (pydantic, the workflow
model) and the file watcher are imported where first used, off the first frame.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.message import Message
from textual.widget import Widget
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from console.run.engine import EngineSettings
    from console.ui.run_options import SettingsFor
    from console.workflow.loaded import LoadedWorkflow


class WorkflowSource(Widget):
    """Loads, watches and reads again one workflow file; draws nothing."""

    DEFAULT_CSS = "WorkflowSource { display: none; }"

    @dataclass
    class Loaded(Message):
        """The file loaded (in the worker), with the run settings it implies."""

        loaded: LoadedWorkflow
        settings: EngineSettings

    @dataclass
    class Failed(Message):
        """The file did not load; a ConsoleError says what, where and how to fix it."""

        error: BaseException | None

    @dataclass
    class Changed(Message):
        """A watched file was written, replaced or removed."""

        paths: set[Path]

    @dataclass
    class WatchFailed(Message):
        """Watching stopped: later changes on disk go unseen."""

        error: BaseException | None

    def __init__(self, path: Path, settings_for: SettingsFor, *, preload: Iterable[str] = (),
                 id: str | None = None) -> None:
        """`preload` names modules the screen mounts once the workflow has loaded: the
        loading thread imports them, so that mounting them costs the UI thread nothing."""
        super().__init__(id=id)
        self.path = path
        self.settings_for = settings_for
        self.preload = tuple(preload)

    @work(exclusive=True, group="load", exit_on_error=False, thread=True)
    def load(self) -> tuple[LoadedWorkflow, EngineSettings]:
        """In a thread: the file's plan, kept or validated now (console/workflow/plan_cache.py;
        the engine is imported here too, so starting the run does not pay for it); posts
        Loaded or Failed."""
        from console.workflow.plan_cache import load_for_run

        loaded = load_for_run(self.path)
        settings = self.settings_for(loaded)
        for module in self.preload:
            importlib.import_module(module)
        return loaded, settings

    def kept(self) -> LoadedWorkflow | None:
        """The file's kept plan (console/workflow/plan_cache.py), read now, on the UI's
        thread: a file that ran before opens with its DAG in the first frame, without the
        loading frame and the worker's round trip; None: `load` it."""
        from console.workflow.plan_cache import kept_plan

        return kept_plan(self.path)

    def read_again(self, loaded: LoadedWorkflow) -> LoadedWorkflow:
        """Read the file of `loaded` again, now; raises WorkflowError if it has errors."""
        from console.workflow.plan_cache import load_for_run

        return load_for_run(loaded.path)

    @work(exclusive=True, group="watch", exit_on_error=False)
    async def start_watching(self, loaded: LoadedWorkflow | None) -> None:
        """Watch the file, and the files `loaded` was read from (its shared policies);
        posts Changed for each change. Starting again replaces the watch."""
        from console.ui.watch import watch_files

        path = self.path.resolve()
        names = loaded.file_hashes if loaded is not None else {}
        files = [path, *(Path(name) for name in names if Path(name) != path)]
        await watch_files(files, self._files_changed)

    def _files_changed(self, changed: set[Path]) -> None:
        self.post_message(self.Changed(changed))

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "load":
            if event.state == WorkerState.SUCCESS:
                loaded, settings = cast("tuple[LoadedWorkflow, EngineSettings]", worker.result)
                self.post_message(self.Loaded(loaded, settings))
            elif event.state == WorkerState.ERROR:
                self.post_message(self.Failed(worker.error))
        elif worker.group == "watch" and event.state == WorkerState.ERROR:
            self.post_message(self.WatchFailed(worker.error))
