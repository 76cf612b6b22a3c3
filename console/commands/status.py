"""`console status [RUN_ID] [--json]`: the runs recorded in the audit file and their state.

One pass over the audit file folds every run's events into a RunState. A run without
`run.finished` whose process is gone from this host is "abandoned"; a live one is asked
over its control socket for its current state (the fold is the fallback). Everything shown
comes from the audit file or another process (workflow names, users, reasons, run ids):
every cell goes through `terminal_safe` before its width is measured.
"""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.config import audit_path as configured_audit_path
from console.errors import ConsoleError, ControlError
from console.events import parse_ts
from console.run.control_client import request
from console.run.control_server import run_state_to_json
from console.run.history import fold_audit, pid_alive
from console.run.state import FINISHED, RunState
from console.textsafe import terminal_safe
from console.workflow.model import format_duration

SOCKET_TIMEOUT_S = 2.0


@dataclass
class RunView:
    """One run as `console status` shows it."""

    state: dict[str, Any]  # run_state_to_json() shape, from the socket or the audit fold
    status: str  # the run's status, or "abandoned"
    live: bool
    source: str  # "socket" or "audit"
    note: str = ""  # why the status is what it is, when that is not obvious

    @property
    def run_id(self) -> str:
        return str(self.state.get("run_id") or "")

    @property
    def progress(self) -> tuple[int, int]:
        steps = self.state.get("steps") or {}
        done = sum(1 for s in steps.values() if s.get("status") in FINISHED)
        return done, len(steps)

    def summary(self) -> dict[str, Any]:
        done, total = self.progress
        keys = ("workflow", "workflow_path", "user", "uid", "host", "pid")
        out: dict[str, Any] = {"run_id": self.run_id, "status": self.status}
        out.update({key: self.state.get(key) for key in keys})
        out.update(
            live=self.live, source=self.source, note=self.note or None, done=done, total=total,
            started=self.state.get("started_ts"), finished=self.state.get("finished_ts"),
        )
        return out


def view_run(state: RunState, host: str | None = None) -> RunView:
    """How the run stands now: finished, abandoned, elsewhere, or live (asked over its socket)."""
    folded = run_state_to_json(state)
    this_host = host if host is not None else socket.gethostname()
    if state.finished_ts is not None or state.started_ts is None:
        return RunView(folded, state.status, live=False, source="audit")
    if state.host != this_host:
        note = f"runs on host {state.host}; ask there"
        return RunView(folded, state.status, live=False, source="audit", note=note)
    if state.pid is None or not pid_alive(state.pid):
        note = f"no run.finished recorded and process {state.pid} is gone from {this_host}"
        return RunView(folded, "abandoned", live=False, source="audit", note=note)
    socket_path = Path(state.control_socket) if state.control_socket else None
    try:
        answer = request(str(state.run_id), {"op": "status"}, SOCKET_TIMEOUT_S,
                         socket_path=socket_path)
    except ControlError as exc:
        note = f"control socket did not answer ({exc.message}); state from the audit file"
        return RunView(folded, state.status, live=True, source="audit", note=note)
    live_state = answer.get("status")
    if not answer.get("ok") or not isinstance(live_state, dict):
        note = "control socket gave no status; state from the audit file"
        return RunView(folded, state.status, live=True, source="audit", note=note)
    merged = merge_live(folded, live_state)
    return RunView(merged, str(merged.get("status", state.status)), live=True, source="socket")


def merge_live(folded: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The audit fold brought up to date with what the run said over its socket.

    Keys the fold knows take the live value; a live `steps` entry may be a full step or
    just its status; anything else the run reports is kept under `live`.
    """
    merged = dict(folded)
    extra: dict[str, Any] = {}
    for key, value in live.items():
        if key == "steps" and isinstance(value, Mapping):
            steps = {sid: dict(step) for sid, step in (folded.get("steps") or {}).items()}
            for sid, step in value.items():
                if isinstance(step, Mapping):
                    steps[sid] = {**steps.get(sid, {}), **step}
                elif isinstance(step, str):
                    steps.setdefault(sid, {"id": sid})["status"] = step
            merged["steps"] = steps
        elif key in folded:
            merged[key] = value
        else:
            extra[key] = value
    if extra:
        merged["live"] = extra
    return merged


def main(args: argparse.Namespace) -> int:
    audit_path = configured_audit_path(getattr(args, "audit", None))
    wanted: str | None = getattr(args, "run_id", None)
    runs = fold_audit(audit_path, wanted) if audit_path.exists() else {}
    if wanted is not None:
        view = view_run(_pick(runs, wanted, audit_path))
        if args.json:
            print(json.dumps({"audit": str(audit_path), **view.summary(), "state": view.state},
                             indent=2))
        else:
            print(render_run(view))
        return 0
    started = [state for state in runs.values() if state.started_ts is not None]
    views = [view_run(state) for state in sorted(started, key=_started_key)]
    if args.json:
        print(json.dumps({"audit": str(audit_path), "runs": [v.summary() for v in views]},
                         indent=2))
    elif not views:
        print(f"no runs recorded in {audit_path}")
    else:
        print(render_table(views))
    return 0


def _started_key(state: RunState) -> tuple[str, str]:
    return state.started_ts or "", state.run_id or ""


def _pick(runs: Mapping[str, RunState], wanted: str, audit_path: Path) -> RunState:
    if wanted in runs:
        return runs[wanted]
    if len(runs) == 1:
        return next(iter(runs.values()))
    if not runs:
        raise ConsoleError(
            f"no run {wanted} in {audit_path}; `console status` lists the runs recorded there "
            "(use --audit PATH for another audit file)"
        )
    several = ", ".join(terminal_safe(run) for run in sorted(runs))
    raise ConsoleError(f"{wanted} matches several runs: {several}; give more of it")


# --- rendering -------------------------------------------------------------------------


def render_table(views: Iterable[RunView]) -> str:
    rows = [("RUN", "WORKFLOW", "STATUS", "PROGRESS", "STARTED (UTC)", "USER")]
    for view in views:
        done, total = view.progress
        rows.append((
            view.run_id,
            str(view.state.get("workflow") or "?"),
            f"{view.status}*" if view.note else view.status,
            f"{done}/{total}",
            _short_ts(view.state.get("started_ts")),
            str(view.state.get("user") or "?"),
        ))
    lines = _columns(rows)
    notes = [terminal_safe(f"* {v.run_id}: {v.note}") for v in views if v.note]
    return "\n".join(lines + notes)


def render_run(view: RunView, now: datetime | None = None) -> str:
    state = view.state
    done, total = view.progress
    status = view.status + (" (live)" if view.live else "")
    who = f"{state.get('user') or '?'} (uid {state.get('uid')}) on {state.get('host') or '?'}"
    head = [
        ("run", view.run_id),
        ("workflow", f"{state.get('workflow') or '?'} ({state.get('workflow_path') or '?'})"),
        ("status", status + (f": {view.note}" if view.note else "")),
        ("started by", f"{who}, pid {state.get('pid')}"),
        ("started", _short_ts(state.get("started_ts"))),
        ("finished", _short_ts(state.get("finished_ts"))),
        ("progress", f"{done}/{total} steps finished"),
    ]
    width = max(len(k) for k, _ in head)
    lines = [f"{key.ljust(width)}  {terminal_safe(value)}" for key, value in head]
    rows = [("STEP", "STATUS", "ATTEMPT", "DURATION", "REASON")]
    moment = now or datetime.now(UTC)
    for step_id, step in (state.get("steps") or {}).items():
        rows.append((
            step_id,
            str(step.get("status")),
            f"{step.get('attempt', 0)}/{step.get('max_attempts', 1)}",
            _step_duration(step, moment),
            _step_reason(step),
        ))
    return "\n".join([*lines, "", *_columns(rows)])


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    rows = [tuple(terminal_safe(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def _short_ts(ts: Any) -> str:
    if not isinstance(ts, str):
        return "-"
    return ts[:19].replace("T", " ")


def _step_duration(step: Mapping[str, Any], now: datetime) -> str:
    seconds = step.get("duration_s")
    if seconds is None and step.get("status") == "running" and step.get("started_ts"):
        try:
            seconds = (now - parse_ts(str(step["started_ts"]))).total_seconds()
        except ValueError:
            return "-"
    if not isinstance(seconds, int | float):
        return "-"
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(float(seconds))


def _step_reason(step: Mapping[str, Any]) -> str:
    status = step.get("status")
    if status == "awaiting_approval":
        given = len(step.get("approvals") or [])
        text = f"needs {step.get('approvals_required', 1)} approval(s), {given} given"
        command = step.get("approve_command")
        return f"{text}; {command}" if command else text
    for key in ("reason", "error"):
        if step.get(key):
            return str(step[key])
    if status == "failed" and step.get("exit_code") is not None:
        return f"exit code {step['exit_code']}"
    overrider = step.get("overridden_by")
    if isinstance(overrider, Mapping):
        return f"overridden by {overrider.get('user')}: {overrider.get('reason')}"
    return ""
