"""`console _host` (hidden): the run host process that `console run` starts for its UI, and
`fork_host`, the same host forked from `console run --detach`.

It reads its HostSpec from a pipe, runs the workflow with the stop signals of its own
(console/host/run_host.py), writes one line per event to its log (`<run dir>/host.log`),
and tells its parent once the run has started, or why it could not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Mapping
from pathlib import Path

from console.commands.printer import PlainPrinter
from console.errors import ConsoleError
from console.events import RunOutcome
from console.host.process import (
    HostSpec,
    StartedHost,
    absolute_settings,
    enter_workdir,
    fork_host_process,
    report_started,
    start_host_process,
)
from console.host.run_host import RunHost
from console.run.exit_codes import EXIT_CODES
from console.run.ids import new_run_id
from console.run.settings import EngineSettings
from console.startup import settled
from console.workflow.loaded import LoadedWorkflow
from console.workflow.plan_cache import load_for_run


def main(args: argparse.Namespace) -> int:
    with os.fdopen(args.spec_fd, "r") as feed:
        spec = HostSpec.from_json(json.load(feed))
    ready_fd: int = args.ready_fd
    enter_workdir(Path(spec.workflow).parent)
    try:
        loaded = load_for_run(spec.workflow)
    except ConsoleError as exc:
        report_started(ready_fd, None, exc.message)
        return exc.exit_code
    host = RunHost(loaded, spec.params, [PlainPrinter()], spec.settings(), run_id=spec.run_id,
                   initiator_uid=spec.initiator_uid)
    settled()
    return EXIT_CODES[asyncio.run(_host(host, ready_fd))]


def fork_host(
    loaded: LoadedWorkflow, params: Mapping[str, str | int | bool], settings: EngineSettings
) -> StartedHost:
    """`console run --detach`: start the run host from this process (forked, so the run
    path's imports and the loaded workflow are reused), else as `console _host`."""
    run_id = new_run_id()
    settings = absolute_settings(settings)

    def host_main(ready_fd: int) -> int:
        host = RunHost(loaded, dict(params), [PlainPrinter()], settings, run_id=run_id)
        settled()
        return EXIT_CODES[asyncio.run(_host(host, ready_fd))]

    started = fork_host_process(run_id, settings, host_main, loaded.base_dir)
    return started or start_host_process(loaded.path, params, settings)


async def _host(host: RunHost, ready_fd: int) -> RunOutcome:
    run = asyncio.get_running_loop().create_task(host.run_in_foreground())
    try:
        socket_path = await host.started()
    except ConsoleError as exc:
        report_started(ready_fd, None, exc.message)
    except BaseException as exc:
        report_started(ready_fd, None, f"the run could not start: {exc!r}")
    else:
        report_started(ready_fd, socket_path, None)
    return await run
