"""What the app hands the run screen: the workflow file (or the workflow already loaded),
the params given on the command line, how to make the run's settings and start a run, and
the clock, identity and switches that tests and snapshot apps pin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

# Light on purpose: the run screen imports this before its first frame.
if TYPE_CHECKING:
    from console.host.handle import RunHandle
    from console.run.engine import EngineSettings
    from console.workflow.loaded import LoadedWorkflow

Clock = Callable[[], datetime]
# Starts a run: its handle, at once (a run in this process) or once it has started
# elsewhere (a run host process).
RunFactory = Callable[
    ["LoadedWorkflow", Mapping[str, str | int | bool], "EngineSettings"],
    "RunHandle | Awaitable[RunHandle]",
]
SettingsFor = Callable[["LoadedWorkflow"], "EngineSettings"]
# A run that lives elsewhere, to show instead of starting one (`console attach`).
AttachTo = Callable[[], Awaitable["RunHandle"]]


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
    attach: AttachTo | None = None
    bell: bool = True  # ring when a gate waits on this user or a step fails (config `bell`)
