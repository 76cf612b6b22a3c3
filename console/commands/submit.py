"""`console run FILE` on a host with `console serve`: submit the run, then attach to it.

The service runs the workflow as its own user with its credentials and records you (by
SO_PEERCRED) as the one who started it; you then watch and act on it through the run's
control socket, as with any run: the UI, `--no-tui` (the events as lines, exit code =
outcome; Ctrl-C detaches, the run goes on), or `--detach`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from console.host.serve_client import ServiceError, ask, reachable
from console.host.serve_config import ServeConfig, ServeConfigError, find_serve_config
from console.host.serve_paths import config_path
from console.textsafe import terminal_safe


def service_for(args: argparse.Namespace) -> ServeConfig | None:
    """The service to submit to: with --service, one must be reachable; without, one is
    used when reachable; --local never."""
    if getattr(args, "local", False):
        return None
    wanted = bool(getattr(args, "service", False))
    try:
        config = find_serve_config()
    except ServeConfigError as exc:
        if wanted:
            raise
        print(f"console: {terminal_safe(exc.message)}; running as yourself", file=sys.stderr)
        return None
    if config is None:
        if wanted:
            raise ServiceError(f"no console serve on this host: {config_path()} does not exist")
        return None
    if reachable(config.socket):
        return config
    if wanted:
        raise ServiceError(
            f"console serve does not answer on {config.socket} (is it running? "
            "`systemctl status console-serve`); --local runs as yourself"
        )
    return None


def submit_and_attach(args: argparse.Namespace, config: ServeConfig) -> int:
    request: dict[str, Any] = {
        "op": "submit", "workflow": os.path.abspath(args.file), "params": dict(args.params),
    }
    if args.resume:
        request["resume"] = args.resume
    answer = ask(config, request)
    run_id, socket_path = str(answer["run"]), Path(str(answer["socket"]))
    workflow = Path(str(answer["workflow"]))
    if getattr(args, "detach", False):
        print(f"run {run_id} started by console serve (run host pid {answer.get('pid')})")
        print(f"  watch it and act on it:  console attach {run_id}")
        print(f"  its status:              console status {run_id}")
        return 0
    if not args.no_tui and sys.stdin.isatty() and sys.stdout.isatty():
        from console.ui.app import run_tui_attached

        return run_tui_attached(workflow, socket_path, theme=args.theme)
    print(f"run {run_id} started by console serve; following it (Ctrl-C detaches)",
          file=sys.stderr)
    try:
        return asyncio.run(_follow(socket_path))
    except KeyboardInterrupt:
        print(f"console: detached; run {run_id} goes on: console attach {run_id}",
              file=sys.stderr)
        return 130


async def _follow(socket_path: Path) -> int:
    from console.commands.printer import PlainPrinter
    from console.host.attached import AttachedRun
    from console.run.exit_codes import EXIT_CODES

    run = await AttachedRun.connect(socket_path)
    printer = PlainPrinter()
    try:
        async for event in run.events():
            printer.publish(event)
        outcome = await run.wait()
    finally:
        await run.close()
    return EXIT_CODES[outcome]
