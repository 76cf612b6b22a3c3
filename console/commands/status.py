"""`console status [RUN_ID] [--json]`: the runs on this host and their state.

Two sources, merged by run id (what a live run says wins over the audit's picture):
- the caller's audit file, folded in one pass: finished runs, abandoned ones (no
  `run.finished` and the process is gone), runs recorded on another host;
- every control socket in the runtime directory, whoever started the run: a colleague's
  run shows up too, so the second approver of a two-person gate can find it.

A live run judges, on its side and from the asker's uid (SO_PEERCRED), whether the asker
may approve each of its open gates; the table says "awaiting approval (you may approve)"
there. Everything shown comes from the audit file or another process (workflow names,
users, reasons, run ids): every cell goes through `terminal_safe` before it is measured,
and the table is fitted to the terminal's width ($COLUMNS, else the terminal's; whole
values when the output is not a terminal).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console import paths
from console.config import audit_path as configured_audit_path
from console.errors import ConsoleError
from console.host.serve_paths import served_paths
from console.present import STATUS_WORDS, cells, cut, pad_to, short_why, step_time
from console.run.history import (
    RunView,
    all_views,
    ask_live_runs,
    claimed_answer,
    fold_audit,
    started_from_run_id,
    view_live_only,
    view_run,
)
from console.run.state import held_wave
from console.textsafe import terminal_safe

DEFAULT_WIDTH = 80
# The narrowest a truncated WORKFLOW or USER cell gets (its header still fits).
MIN_FLEXIBLE = 6


def main(args: argparse.Namespace) -> int:
    audit_path = configured_audit_path(getattr(args, "audit", None))
    runtime = paths.runtime_dir()
    wanted: str | None = getattr(args, "run_id", None)
    runs = fold_audit(audit_path, wanted) if audit_path.exists() else {}
    live = ask_live_runs(runtime, wanted)
    served = served_paths()
    if served is not None:  # team mode: the service's runs, and its audit trail if readable
        live.update(ask_live_runs(served[0], wanted))
        if served[1] != audit_path and os.access(served[1], os.R_OK):
            runs.update(fold_audit(served[1], wanted))
    if wanted is not None:
        run_id = _pick([*runs, *live], wanted, audit_path, runtime)
        answer = live.get(run_id)
        if run_id in runs:
            view = view_run(runs[run_id], live=claimed_answer(runs[run_id], answer))
        else:
            assert answer is not None
            view = view_live_only(answer)
        if args.json:
            print(json.dumps({"audit": str(audit_path), **view.summary(), "state": view.state},
                             indent=2))
        else:
            print(render_run(view))
        return 0
    views = all_views(runs, live)
    if args.json:
        print(json.dumps({"audit": str(audit_path), "runtime_dir": str(runtime),
                          "runs": [v.summary() for v in views]}, indent=2))
    elif not views:
        print(f"no runs recorded in {audit_path}, and none live in {runtime}")
    else:
        print(render_table(views))
    return 0


def _pick(run_ids: Iterable[str], wanted: str, audit_path: Path, runtime: Path) -> str:
    found = sorted(set(run_ids))
    if wanted in found:
        return wanted
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConsoleError(
            f"no run {wanted} in {audit_path}, nor live in {runtime}; `console status` lists "
            "the runs recorded there and the live ones (use --audit PATH for another audit "
            "file)"
        )
    several = ", ".join(terminal_safe(run) for run in found)
    raise ConsoleError(f"{wanted} matches several runs: {several}; give more of it")


# --- rendering -------------------------------------------------------------------------


def render_table(views: Sequence[RunView], width: int | None = None) -> str:
    """One row per run; under a live run waiting at gates, one line per gate saying whether
    you may approve it; notes (for a status marked `*`) last.

    With a `width` (default: $COLUMNS, else the terminal's; none when the output is not a
    terminal, like `ps`), no line is wider: STARTED goes first (the run id begins with the
    start time), then WORKFLOW and USER are cut short, ending in `…`; notes are wrapped.
    """
    if width is None:
        width = table_width()
    rows: list[tuple[str, ...]] = [("RUN", "WORKFLOW", "STATUS", "STEPS", "STARTED (UTC)", "USER")]
    for view in views:
        done, total = view.progress
        rows.append((
            view.run_id,
            str(view.state.get("workflow") or "?"),
            view.shown_status,
            f"{done}/{total}",
            _short_ts(view.state.get("started_ts") or started_from_run_id(view.run_id)),
            str(view.state.get("user") or "?"),
        ))
    if width is not None and _natural_width(rows) > width:
        rows = [row[:4] + row[5:] for row in rows]
    table = _fit_columns(rows, width, flexible=(1, len(rows[0]) - 1))
    lines = [table[0]]
    for view, row in zip(views, table[1:], strict=True):
        lines.append(row)
        if view.live:
            steps = view.state.get("steps") or {}
            lines.extend(_cut_to("  " + gate_line(step, gate, (steps.get(step) or {}).get("wave")),
                                 width)
                         for step, gate in view.gates.items())
    for view in views:
        if not view.note:
            continue
        note = terminal_safe(f"* {view.run_id}: {view.note}")
        if width is None:
            lines.append(note)
        else:
            lines.extend(textwrap.wrap(note, width=max(width, 20), subsequent_indent="    ",
                                       break_on_hyphens=False))
    return "\n".join(lines)


def table_width() -> int | None:
    """$COLUMNS if set, else the terminal's width; None (no limit) when stdout is no
    terminal, so a pipe or a file gets every value whole."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return None


def gate_line(step: str, gate: Mapping[str, Any], wave: Sequence[int] | None = None) -> str:
    """`deploy: awaiting approval 1/2 (you may approve)`, or `(not you: why)`; a step on
    many hosts between waves: `deploy: awaiting approval 0/1 for wave 3/3 (…)`."""
    override = str(gate.get("approve_command") or "").startswith("console override")
    line = f"{step}: " + ("awaiting an override" if override else "awaiting approval")
    required = gate.get("approvals_required")
    if isinstance(required, int) and required > 0:
        line += f" {gate.get('approvals', 0)}/{required}"
    held = held_wave(wave)
    if held is not None:
        line += f" for wave {held[0]}/{held[1]}"
    may = gate.get("may_approve")
    if may is True:
        line += f" (you may {'override' if override else 'approve'})"
    elif may is False:
        line += f" (not you: {short_why(gate.get('why_not'))})"
    return terminal_safe(line)


def render_run(view: RunView, now: datetime | None = None) -> str:
    state = view.state
    done, total = view.progress
    status = view.status + (" (live)" if view.live else "")
    uid = state.get("uid")
    who = f"{state.get('user') or '?'}" + (f" (uid {uid})" if uid is not None else "")
    head = [
        ("run", view.run_id),
        ("workflow", f"{state.get('workflow') or '?'} ({state.get('workflow_path') or '?'})"),
        ("status", status + (f": {view.note}" if view.note else "")),
        ("started by", f"{who} on {state.get('host') or '?'}, pid {state.get('pid')}"),
        ("started", _short_ts(state.get("started_ts"))),
        ("finished", _short_ts(state.get("finished_ts"))),
        ("progress", f"{done}/{total} steps finished"),
    ]
    width = max(len(k) for k, _ in head)
    lines = [f"{key.ljust(width)}  {terminal_safe(value)}" for key, value in head]
    rows = [("STEP", "STATUS", "ATTEMPT", "DURATION", "REASON")]
    moment = now or datetime.now(UTC)
    commands: list[str] = []
    for step_id, step in (state.get("steps") or {}).items():
        gate = view.gates.get(step_id) if view.live else None
        status = str(step.get("status"))
        rows.append((
            step_id,
            STATUS_WORDS.get(status, status),
            f"{step.get('attempt', 0)}/{step.get('max_attempts', 1)}",
            _step_duration(step, moment),
            _step_reason(step, gate),
        ))
        if status == "awaiting_approval" or gate is not None:
            commands += _gate_command(step_id, step, gate or {})
    return "\n".join([*lines, "", *_columns(rows), *commands])


def _gate_command(step_id: str, step: Mapping[str, Any], gate: Mapping[str, Any]) -> list[str]:
    """Under the table, a waiting gate's command on a line of its own: in a cell it ran past
    the terminal's width, and copying the wrapped line cut it."""
    command = str(gate.get("approve_command") or step.get("approve_command") or "")
    if not command:
        return []
    verb = "override" if command.startswith("console override") else "approve"
    reason = " (a reason is required)" if "--reason" in command else ""
    return ["", terminal_safe(f"to {verb} {step_id}{reason}, run:"),
            "  " + terminal_safe(command)]


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    rows = [tuple(terminal_safe(cell) for cell in row) for row in rows]
    widths = [max(cells(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(pad_to(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def _natural_width(rows: Sequence[tuple[str, ...]]) -> int:
    rows = [tuple(terminal_safe(cell) for cell in row) for row in rows]
    return sum(max(cells(row[i]) for row in rows) for i in range(len(rows[0]))) + 2 * (
        len(rows[0]) - 1)


def _fit_columns(
    rows: Sequence[tuple[str, ...]], width: int | None, flexible: Sequence[int]
) -> list[str]:
    """Like `_columns`, but no wider than `width`: the widest flexible column loses a cell
    at a time (down to MIN_FLEXIBLE), cells cut short end in `…`; a line still too wide
    is cut at `width`."""
    rows = [tuple(terminal_safe(cell) for cell in row) for row in rows]
    widths = [max(cells(row[i]) for row in rows) for i in range(len(rows[0]))]
    if width is None:
        return _columns(rows)
    floor = {i: max(MIN_FLEXIBLE, cells(rows[0][i])) for i in flexible}
    while sum(widths) + 2 * (len(widths) - 1) > width:
        shrinkable = [i for i in flexible if widths[i] > floor[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    out = []
    for row in rows:
        shown = [pad_to(cut(cell, w), w) for cell, w in zip(row, widths, strict=True)]
        out.append(cut("  ".join(shown).rstrip(), width))
    return out


def _cut_to(text: str, width: int | None) -> str:
    return text if width is None else cut(text, width)


def _short_ts(ts: Any) -> str:
    if not isinstance(ts, str):
        return "-"
    return ts[:19].replace("T", " ")


def _step_duration(step: Mapping[str, Any], now: datetime) -> str:
    seconds = step.get("duration_s")
    started = step.get("started_ts")
    return step_time(float(seconds) if isinstance(seconds, int | float) else None,
                     started if isinstance(started, str) else None,
                     step.get("status") == "running", now) or "-"


def _step_reason(step: Mapping[str, Any], gate: Mapping[str, Any] | None = None) -> str:
    status = step.get("status")
    if status == "awaiting_approval" or gate is not None:
        return _gate_reason(step, gate or {})
    for key in ("reason", "error"):
        if step.get(key):
            return str(step[key])
    if status == "failed" and step.get("exit_code") is not None:
        return f"exit code {step['exit_code']}"
    overrider = step.get("overridden_by")
    if isinstance(overrider, Mapping):
        return f"overridden by {overrider.get('user')}: {overrider.get('reason')}"
    return ""


def _gate_reason(step: Mapping[str, Any], gate: Mapping[str, Any]) -> str:
    """A waiting gate's REASON cell: the count and whether you may act (the command goes
    under the table)."""
    command = gate.get("approve_command") or step.get("approve_command")
    if str(command or "").startswith("console override"):
        text = f"{gate.get('summary') or 'denied by a soft policy'}; needs an override"
        verb = "override"
    else:
        given = gate.get("approvals", len(step.get("approvals") or []))
        required = gate.get("approvals_required", step.get("approvals_required", 1))
        text = f"needs {required} approval(s), {given} given"
        verb = "approve"
    may = gate.get("may_approve")
    if may is True:
        text += f" (you may {verb})"
    elif may is False:
        text += f" (not you: {short_why(gate.get('why_not'))})"
    return text
