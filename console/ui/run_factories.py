"""How the UI gets its runs and their settings: hosted in a process of their own and
attached to, or in this process (tests, snapshots); the settings once the workflow loaded;
who the person at the keyboard is."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pwd
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from console.config import Config
from console.paths import default_audit_path
from console.run.lifeline import LiveRun
from console.ui.screens.run import RunFactory

if TYPE_CHECKING:
    from console.host.handle import RunHandle
    from console.run.engine import EngineSettings, Executor
    from console.workflow.loaded import LoadedWorkflow


def watched(factory: RunFactory, live_run: LiveRun) -> RunFactory:
    """Every run the app hosts itself tells `live_run` whether it runs, and which steps
    (the lifeline kills those process groups if the process must end at once)."""

    def build(loaded: LoadedWorkflow, params: Mapping[str, str | int | bool],
              settings: EngineSettings) -> RunHandle | Awaitable[RunHandle]:
        from console.host.handle import InProcessRun

        handle = factory(loaded, params, settings)
        if isinstance(handle, InProcessRun):
            handle.add_sink(live_run)
        return handle

    return build


def hosted_run_factory() -> RunFactory:
    """Each run in a host process of its own, attached to through its socket."""

    def build(loaded: LoadedWorkflow, params: Mapping[str, str | int | bool],
              settings: EngineSettings) -> Awaitable[RunHandle]:
        return _start_hosted(loaded.path, dict(params), settings)

    return build


async def _start_hosted(path: Path, params: dict[str, str | int | bool],
                        settings: EngineSettings) -> RunHandle:
    from console.errors import ControlError
    from console.host.attached import AttachedRun
    from console.host.process import start_host_process

    settings = dataclasses.replace(settings, control_socket=True)
    started = await asyncio.to_thread(start_host_process, path, params, settings)
    if started.socket_path is None:
        raise ControlError(f"run {started.run_id} started without a control socket")
    return await AttachedRun.connect(started.socket_path)


def default_run_factory(executor: Executor | None) -> RunFactory:
    def build(loaded: LoadedWorkflow, params: Mapping[str, str | int | bool],
              settings: EngineSettings) -> RunHandle:
        from console.host.handle import InProcessRun
        from console.host.run_host import RunHost

        return InProcessRun(RunHost(loaded, params, (), settings, executor=executor))

    return build


SettingsFor = Callable[["LoadedWorkflow"], "EngineSettings"]


def settings_maker(given: EngineSettings | SettingsFor | None, config: Config,
                    audit_path: Path | None) -> SettingsFor:
    """The run settings, once the workflow is loaded (its `[workflow] audit` counts)."""

    def make(loaded: LoadedWorkflow) -> EngineSettings:
        from console.run.settings import EngineSettings  # not the engine: a viewer needs none

        if callable(given):
            settings = given(loaded)
        elif given is not None:
            settings = given
        else:
            settings = EngineSettings(audit_path=_audit_path(loaded, config))
        settings = dataclasses.replace(settings, via="tui")
        if audit_path is not None:
            settings = dataclasses.replace(settings, audit_path=audit_path)
        return settings

    return make


def _audit_path(loaded: LoadedWorkflow, config: Config) -> Path:
    """`[workflow] audit` (relative to the workflow), else the config file's, else the default."""
    if loaded.model.workflow.audit:
        return (loaded.base_dir / Path(loaded.model.workflow.audit).expanduser()).resolve()
    return config.audit_path or default_audit_path()


def local_identity() -> tuple[str, str]:
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return user, socket.gethostname()
