"""`console attach [RUN]`: the full UI on a run hosted elsewhere, by any user on this host.

With RUN: the live run whose id starts with RUN (asked through its control socket, so the
actions are taken as you, by SO_PEERCRED), or, if it has ended, the run as your audit trail
recorded it, read-only. Without RUN: the only live run, or the list of live runs with what
waits on you, to pick one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import tomli_w

from console.config import audit_path
from console.errors import ControlError
from console.events import Event, UnknownEventError, event_from_json
from console.host.recorded import RecordedRun
from console.host.serve_paths import served_paths
from console.paths import runtime_dir
from console.run.control_client import request
from console.run.history import LiveAnswer, ask_live_runs
from console.textsafe import terminal_safe


def main(args: argparse.Namespace) -> int:
    wanted: str | None = args.run_id
    live = ask_live_runs(runtime_dir(), wanted)
    served = served_paths()
    if served is not None:  # team mode: the service's runs too (docs/team-mode.md)
        live.update(ask_live_runs(served[0], wanted))
    answering = {run_id: found for run_id, found in live.items() if found.status is not None}
    if len(answering) == 1:
        [found] = answering.values()
        return _attach_live(found, args)
    if len(answering) > 1:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            print(_choices(answering, wanted), file=sys.stderr)
            return 2
        from console.ui.picker import LiveRun, PickerApp

        picked = PickerApp(
            [LiveRun(run_id, found.status or {}) for run_id, found in answering.items()]
        ).run()
        if picked is None:
            return 0
        return _attach_live(answering[picked], args)
    if wanted is None:
        print("console: no live run on this host to attach to (`console status` lists the "
              "runs you can see; `console run FILE --detach` starts one)", file=sys.stderr)
        return 1
    return _open_recorded(wanted, args)


def _choices(live: dict[str, LiveAnswer], wanted: str | None) -> str:
    """The live runs, the ones with a gate you may pass first; say which to pick."""
    def waits_on_you(found: LiveAnswer) -> bool:
        gates = (found.status or {}).get("gates") or {}
        return any(isinstance(g, dict) and g.get("may_approve") for g in gates.values())

    ordered = sorted(live.values(), key=lambda f: (not waits_on_you(f), f.run_id))
    head = (f"console: {len(live)} live runs start with {wanted!r}" if wanted
            else f"console: {len(live)} live runs on this host")
    lines = [f"{head}; attach to one: console attach RUN"]
    for found in ordered:
        status = found.status or {}
        note = "  ← waits on you" if waits_on_you(found) else ""
        lines.append(terminal_safe(
            f"  {found.run_id}  {status.get('workflow', '?')}  {status.get('status', '?')}  "
            f"started by {status.get('user', '?')}{note}"
        ))
    return "\n".join(lines)


def _attach_live(found: LiveAnswer, args: argparse.Namespace) -> int:
    hello = request(found.run_id, {"op": "hello"}, socket_path=found.socket_path)
    if not hello.get("ok"):
        raise ControlError(
            f"run {found.run_id} cannot be attached to: {hello.get('message', hello)}"
        )
    workflow = hello.get("workflow_path")
    if not isinstance(workflow, str) or not workflow:
        raise ControlError(f"run {found.run_id} did not say which workflow it runs")
    from console.ui.app import run_tui_attached

    if _readable(Path(workflow)):
        return run_tui_attached(Path(workflow), found.socket_path, theme=args.theme)
    shape = hello.get("shape")
    if not isinstance(shape, dict):
        raise ControlError(
            f"you cannot read {workflow}, and run {found.run_id} did not send its shape; "
            "`console status` and `console approve` still work"
        )
    with tempfile.TemporaryDirectory(prefix="console-attach-") as tmp:
        view = Path(tmp) / Path(workflow).name
        view.write_text(shape_as_toml(shape))
        return run_tui_attached(view, found.socket_path, theme=args.theme)


def _readable(path: Path) -> bool:
    try:
        with path.open("rb"):
            return True
    except OSError:
        return False


def shape_as_toml(shape: dict[str, Any]) -> str:
    """A workflow file to draw the DAG from: the run's steps as it sent them (commands
    masked, no env, no gates: the gates arrive as the run's own events)."""
    steps = shape.get("steps") or {}
    document: dict[str, Any] = {
        "workflow": {"name": str(shape.get("name") or "attached"),
                     "description": str(shape.get("description") or "")},
        "steps": {
            str(sid): {
                "run": step.get("run") or "true",
                "needs": list(step.get("needs") or []),
                "if": step.get("if") or "success",
                "tags": list(step.get("tags") or []),
                "description": str(step.get("description") or ""),
            }
            for sid, step in steps.items()
            if isinstance(step, dict)
        },
    }
    return tomli_w.dumps(document)


def _open_recorded(wanted: str, args: argparse.Namespace) -> int:
    from console.audit.reading import read_records

    path = audit_path(getattr(args, "audit", None))
    events: list[Event] = []
    run_id: str | None = None
    if path.exists():
        for record in read_records(path):
            rid = str(record.get("run", ""))
            if not rid.startswith(wanted) or (run_id is not None and rid != run_id):
                continue
            try:
                events.append(event_from_json(record))
            except (UnknownEventError, TypeError, ValueError):
                continue
            run_id = rid
    if run_id is None or not events:
        raise ControlError(
            f"no live run and no run in {path} starts with {wanted!r} — `console status` "
            "lists the runs you can see"
        )
    workflow = events[0].__dict__.get("workflow_path") or ""
    from console.ui.app import run_tui_recorded

    return run_tui_recorded(Path(str(workflow)), RecordedRun(run_id, events), theme=args.theme)
