"""Argument parsing and dispatch. No logic of its own: each subcommand lives in
`console/commands/<name>.py` as `main(args) -> int`, imported only when used so that
quick commands (`validate`) never pay for the UI's imports.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from console import __version__
from console.errors import ConsoleError
from console.startup import exit_now, starting
from console.textsafe import terminal_safe

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Formatter(argparse.HelpFormatter):
    """argparse's, told the terminal's width the way shutil.get_terminal_size would: argparse
    asks for a formatter on every add_argument, and its own imports shutil (with bz2 and
    lzma, ~2 ms) for that."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


def _columns() -> int:
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"console: error: {message}\n")


def _param(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. -p version=1.4.2)")
    return key, value


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        type=_param,
        default=[],
        metavar="KEY=VALUE",
        help="a workflow param (repeatable)",
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with `only`, just that subcommand's parser (argparse builds each
    parser's messages through gettext, ~5 ms for all eighteen, on every command)."""
    parser = _Parser(
        prog="console",
        description="A keyboard-first terminal console for deployment workflows.",
    )
    parser.add_argument("--version", action="version", version=f"console {__version__}")
    parser.add_argument("--theme", help="UI theme (dark, light, high-contrast, monochrome)")
    parser.add_argument("--audit", metavar="PATH", help="audit file (default: XDG state dir)")
    parser.set_defaults(command="ui", file=None, params=[], no_tui=False, resume=None)
    # Options repeated on subcommands use SUPPRESS, so `console --audit X status` keeps X.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, declare) in _COMMANDS.items():
        if only is None or name == only:
            # The run host process that `run --detach` starts is not for people: no help.
            declare(sub.add_parser(name) if name == "_host" else
                    sub.add_parser(name, help=help_text, description=help_text))
    return parser


def _run(run: argparse.ArgumentParser) -> None:
    run.add_argument("file", metavar="FILE")
    _add_params(run)
    run.add_argument("--no-tui", action="store_true", help="run without the UI")
    run.add_argument(
        "--detach", action="store_true",
        help="start the run in a host process of its own, print its id and how to attach, exit",
    )
    run.add_argument("--resume", metavar="RUN_ID", help="resume an earlier run of this workflow")
    run.add_argument("--audit", metavar="PATH", help="audit file", default=argparse.SUPPRESS)
    run.add_argument("--theme", help="UI theme", default=argparse.SUPPRESS)
    run.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="time between SIGTERM and SIGKILL when stopping a step (default 10)",
    )
    run.add_argument("--fsync-always", action="store_true", help="fsync every audit line")
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "--service", action="store_true",
        help="submit the run to this host's console serve (the default when one is reachable)",
    )
    where.add_argument(
        "--local", action="store_true",
        help="run as yourself even when a console serve is reachable",
    )


def _validate(validate: argparse.ArgumentParser) -> None:
    validate.add_argument("files", metavar="FILE", nargs="+")


def _plan(plan: argparse.ArgumentParser) -> None:
    plan.add_argument("file", metavar="FILE")
    _add_params(plan)
    plan.add_argument("--as", dest="as_user", metavar="USER", help="show what USER could approve")


def _graph(graph: argparse.ArgumentParser) -> None:
    graph.add_argument("file", metavar="FILE")
    graph.add_argument("--compact", action="store_true", help="the grouped form for large DAGs")


def _gate_action(reason_required: bool) -> Callable[[argparse.ArgumentParser], None]:
    def declare(action: argparse.ArgumentParser) -> None:
        action.add_argument("run_id", metavar="RUN_ID")
        action.add_argument("step", metavar="STEP")
        action.add_argument("--reason", required=reason_required, metavar="TEXT")

    return declare


def _cancel(cancel: argparse.ArgumentParser) -> None:
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("step", metavar="STEP", nargs="?")


def _attach(attach: argparse.ArgumentParser) -> None:
    attach.add_argument("run_id", metavar="RUN", nargs="?")
    attach.add_argument("--theme", help="UI theme", default=argparse.SUPPRESS)
    attach.add_argument("--audit", metavar="PATH", help="audit file", default=argparse.SUPPRESS)


def _status(status: argparse.ArgumentParser) -> None:
    status.add_argument("run_id", metavar="RUN_ID", nargs="?")
    status.add_argument("--json", action="store_true")
    status.add_argument("--audit", metavar="PATH", help="audit file", default=argparse.SUPPRESS)


def _audit(audit: argparse.ArgumentParser) -> None:
    audit_sub = audit.add_subparsers(
        dest="audit_command", metavar="ACTION", required=True, parser_class=_Parser
    )
    verify = audit_sub.add_parser("verify", help="check the hash chain; exit 1 if it is broken")
    verify.add_argument("path", metavar="PATH", nargs="?")
    verify.add_argument("--head", metavar="SEQ:HASH", help="a head kept elsewhere to check against")
    verify.add_argument(
        "--against-journal", nargs="?", const="", default=None, metavar="FILE",
        help="check against the heads console serve sent to the system journal "
        "(journalctl), or to the syslog FILE",
    )
    head = audit_sub.add_parser("head", help="print the chain's head as SEQ:HASH")
    head.add_argument("path", metavar="PATH", nargs="?")
    tail = audit_sub.add_parser("tail", help="print the last events")
    tail.add_argument("path", metavar="PATH", nargs="?")
    tail.add_argument("-f", "--follow", action="store_true")
    tail.add_argument("--run", dest="run_id", metavar="ID")
    tail.add_argument("--json", action="store_true")
    tail.add_argument("-n", "--lines", type=int, default=20, metavar="N")


def _nothing(parser: argparse.ArgumentParser) -> None:
    return None


def _host(host: argparse.ArgumentParser) -> None:
    host.add_argument("--spec-fd", type=int, required=True)
    host.add_argument("--ready-fd", type=int, required=True)


def _serve(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--config", metavar="PATH",
                       help="its config (default /etc/console/serve.toml, "
                       "or $CONSOLE_SERVE_CONFIG)")
    serve.add_argument("--install-unit", action="store_true",
                       help="print its systemd units (or write them with --unit-dir) and exit")
    serve.add_argument("--unit-dir", metavar="DIR",
                       help="with --install-unit: write the units there, e.g. /etc/systemd/system")


def _init(init: argparse.ArgumentParser) -> None:
    init.add_argument("file", metavar="FILE", nargs="?", default="workflow.toml")


# Each subcommand: its help line and what declares its arguments, in the order `--help` lists.
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("run a workflow (the UI, or headless with --no-tui)", _run),
    "validate": ("check workflow files; exit 0 if all are valid", _validate),
    "plan": ("show each step, what it runs and the policy decision, without running", _plan),
    "graph": ("draw the workflow's DAG in the terminal", _graph),
    "approve": ("approve a step waiting at a gate in a live run", _gate_action(False)),
    "deny": ("deny a step waiting at a gate in a live run", _gate_action(True)),
    "override": ("override a step waiting at a gate in a live run", _gate_action(True)),
    "cancel": ("cancel a live run, or one step of it", _cancel),
    "attach": ("the UI on a live run (any user's), or on a finished one, read-only", _attach),
    "status": ("runs on this host and their state", _status),
    "audit": ("verify, inspect and follow the audit trail", _audit),
    "schema": ("print the JSON Schema of the workflow format", _nothing),
    "_host": ("", _host),
    "serve": ("the team-mode host service: runs submitted workflows, one audit trail", _serve),
    "init": ("write a commented starter workflow", _init),
}
# Options of the main parser that take a value: `console --audit X run FILE`.
_VALUED_OPTIONS = ("--theme", "--audit")


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names, if it can be told without parsing (options before it
    other than --theme/--audit, e.g. --help, mean the whole parser is needed)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED_OPTIONS:
            skip = True
        elif arg.startswith(tuple(f"{o}=" for o in _VALUED_OPTIONS)):
            continue
        elif arg.startswith("-"):
            return None
        else:
            return arg if arg in _COMMANDS else None
    return None


_MODULES = {
    "ui": "ui",
    "run": "run",
    "validate": "validate",
    "plan": "plan",
    "graph": "graph",
    "approve": "control",
    "deny": "control",
    "override": "control",
    "cancel": "control",
    "attach": "attach",
    "status": "status",
    "audit": "audit",
    "schema": "schema",
    "init": "init",
    "_host": "host",
    "serve": "serve",
}


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    args = build_parser(only=_command_in(given)).parse_args(given)
    args.command = args.command or "ui"  # the subparsers' dest overwrites the default with None
    module = importlib.import_module(f"console.commands.{_MODULES[args.command]}")
    try:
        code: int = module.main(args)
    except ConsoleError as exc:
        print(f"console: {terminal_safe(exc.message, multiline=True)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("console: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # The last line of defence: a file or socket problem no command anticipated.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"console: {terminal_safe(f'{exc.strerror or exc}{where}')}", file=sys.stderr)
        return 1
    return code


def run() -> NoReturn:
    """The `console` program (`python -m console`, the installed script): main(), then an
    exit that skips the interpreter's teardown (console/startup.py)."""
    starting()
    exit_now(main())
