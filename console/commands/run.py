"""`console run FILE`: the UI, or headless with `--no-tui`."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from console.run.exit_codes import EXIT_CODES
from console.textsafe import terminal_safe

if TYPE_CHECKING:  # the UI path imports the engine only once its window is up
    from console.events import RunOutcome
    from console.host.run_host import RunHost
    from console.run.engine import EngineSettings
    from console.workflow.loaded import LoadedWorkflow



def audit_path_for(cli_audit: str | None, loaded: LoadedWorkflow | None) -> Path:
    """--audit, else the workflow's `[workflow] audit` (relative to its file), else the
    config file's `audit`, else the default."""
    from console.config import audit_path

    if not cli_audit and loaded is not None and loaded.model.workflow.audit:
        return (loaded.base_dir / Path(loaded.model.workflow.audit).expanduser()).resolve()
    return audit_path(cli_audit)


def settings_for(args: argparse.Namespace, loaded: LoadedWorkflow, via: str) -> EngineSettings:
    from console.run.engine import EngineSettings

    return EngineSettings(
        audit_path=audit_path_for(getattr(args, "audit", None), loaded),
        grace_s=args.grace if getattr(args, "grace", None) is not None else 10.0,
        fsync_always=bool(getattr(args, "fsync_always", False)),
        resume_from=getattr(args, "resume", None),
        via=via,
    )


def main(args: argparse.Namespace) -> int:
    given = dict(args.params)
    from console.host.serve_paths import may_submit

    if may_submit(getattr(args, "local", False), getattr(args, "service", False)):
        from console.commands.submit import service_for, submit_and_attach

        service = service_for(args)
        if service is not None:
            return submit_and_attach(args, service)
    if getattr(args, "detach", False):
        return detach(args, given)
    if not args.no_tui and sys.stdin.isatty() and sys.stdout.isatty():
        from console.ui.app import run_tui_path

        # The window paints first; the file loads behind it and its errors show in place.
        code: int = run_tui_path(
            args.file, given, lambda loaded: settings_for(args, loaded, "tui"), theme=args.theme
        )
        return code
    from console.workflow.plan_cache import load_for_run

    loaded = load_for_run(args.file, meanwhile=_import_run_path)
    from console.workflow.params import resolve_params

    if not args.no_tui:
        print("console: no terminal for the UI; running headless (--no-tui)", file=sys.stderr)
    params = resolve_params(loaded.model, given)
    return run_headless(loaded, params, settings_for(args, loaded, "cli"))


def detach(args: argparse.Namespace, given: dict[str, str]) -> int:
    """Validate, start the run in a host process of its own, say how to attach, exit 0."""
    from console.workflow.plan_cache import load_for_run

    loaded = load_for_run(args.file, meanwhile=lambda: import_module("console.commands.host"))
    from console.commands.host import fork_host
    from console.workflow.params import resolve_params

    params = resolve_params(loaded.model, given)
    started = fork_host(loaded, params, settings_for(args, loaded, "host"))
    print(f"run {started.run_id} started in the background (pid {started.pid})")
    print(f"  watch it and act on it:  console attach {started.run_id}")
    print(f"  its status:              console status {started.run_id}")
    print(f"  the host's log:          {terminal_safe(str(started.log_path))}")
    return 0


def _import_run_path() -> None:
    """What `run_headless` imports, done while new bytes are validated aside
    (console/workflow/validate_aside.py)."""
    for module in ("console.workflow.params", "console.config", "console.host.run_host",
                   "console.commands.live_view" if sys.stdout.isatty()
                   else "console.commands.printer"):
        import_module(module)


def run_headless(
    loaded: LoadedWorkflow, params: dict[str, str | int | bool], settings: EngineSettings
) -> int:
    from console.host.run_host import RunHost
    from console.startup import settled

    engine = RunHost(loaded, params, settings=settings)
    terminal = TerminalGuard()
    settled()  # what the run needs is imported and built
    if sys.stdout.isatty():
        from rich.console import Console

        from console.commands.live_view import LivePrinter, steps_table

        console = Console()
        with terminal, LivePrinter(console) as live:
            engine.add_sink(live)
            outcome = _run(engine)
        with terminal:
            console.print(steps_table(engine.state, title=f"run {engine.run_id}: {outcome}"))
    else:
        from console.commands.printer import PlainPrinter

        engine.add_sink(PlainPrinter())
        outcome = _run(engine)
    with terminal:
        _report_end(engine, settings)
    return EXIT_CODES[outcome]


def _report_end(engine: RunHost, settings: EngineSettings) -> None:
    broken = engine.audit_break
    if broken is not None:
        missing = terminal_safe(", ".join(str(u) for u in broken.unrecorded))
        print(
            f"console: {terminal_safe(broken.error)}\n"
            "console: the run was stopped (fail closed): nothing more started, running steps "
            "were stopped, no cleanup ran.\n"
            f"console: not recorded in {terminal_safe(broken.path)}: {missing}",
            file=sys.stderr,
        )
        return
    if engine.audit is not None:
        seq, digest = engine.audit.head()
        # The head on a line of its own: copied from a narrow terminal, it comes out whole.
        print(f"audit head ({terminal_safe(str(settings.audit_path))}), keep it to prove the "
              f"trail later:\n  {seq}:{digest}")


class TerminalGuard:
    """Writes to a terminal that went away (EIO, EPIPE) must not fail the run's exit:
    the first such error sends stdout and stderr to /dev/null and is otherwise ignored."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, OSError) and exc.errno in _GONE:
            _silence_terminal()
            return True
        return False


_GONE = (errno.EIO, errno.EPIPE, errno.ENXIO, errno.EBADF)


def _silence_terminal() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)


def _run(host: RunHost) -> RunOutcome:
    import asyncio  # imported with the run path, while new bytes are validated aside

    return asyncio.run(host.run_in_foreground())
