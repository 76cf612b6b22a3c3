"""Runs as the audit trail remembers them: every run's events folded into its RunState.

`console status` lists them; `--resume` reads the run it continues from here.
"""

from __future__ import annotations

import os
from pathlib import Path

from console.audit.log import read_records
from console.events import UnknownEventError, event_from_json
from console.run.state import RunState


def fold_audit(path: Path, wanted: str | None = None) -> dict[str, RunState]:
    """Every run in the audit file (or those whose id starts with `wanted`), folded in one pass.

    Records of a type this version does not know (e.g. `audit.recovered_tail`) are skipped.
    """
    runs: dict[str, RunState] = {}
    for record in read_records(path):
        run_id = record.get("run")
        if not isinstance(run_id, str) or not run_id:
            continue  # e.g. the writer's own `audit.recovered_tail`, which belongs to no run
        if wanted is not None and not run_id.startswith(wanted):
            continue
        try:
            event = event_from_json(record)
        except (UnknownEventError, TypeError, ValueError, KeyError):
            continue
        state = runs.get(run_id)
        if state is None:
            state = runs[run_id] = RunState(run_id=run_id)
        state.apply(event)
        seq = record.get("seq")
        if isinstance(seq, int):
            state.last_seq = seq
    return runs


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
