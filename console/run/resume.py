"""`--resume RUN_ID`: which steps of an earlier run can be reused, if the files are unchanged.

Only successes carry over. Approvals never do: every gate not yet passed asks again.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from console.audit.log import read_records
from console.errors import ResumeError
from console.run.events import UnknownEventError, event_from_json
from console.run.state import SUCCESSFUL, RunState
from console.workflow.loaded import LoadedWorkflow


def load_run_state(audit_path: Path, run_id: str) -> RunState | None:
    state: RunState | None = None
    if not audit_path.exists():
        return None
    for record in read_records(audit_path):
        if record.get("run") != run_id:
            continue
        try:
            event = event_from_json(record)
        except (UnknownEventError, TypeError, ValueError):
            continue
        if state is None:
            state = RunState()
        state.apply(event)
    return state


def previous_run(audit_path: Path, run_id: str, loaded: LoadedWorkflow) -> dict[str, str]:
    """The steps that succeeded in `run_id` (step -> run they first succeeded in)."""
    old = load_run_state(audit_path, run_id)
    if old is None or old.run_id is None:
        raise ResumeError(
            f"run {run_id} is not in the audit trail {audit_path} — `console status` lists runs"
        )
    if old.workflow_path != str(loaded.path):
        raise ResumeError(
            f"run {run_id} ran {old.workflow_path}, not {loaded.path}; resume it with that file"
        )
    if old.status == "running" and _alive(old.pid) and old.host == socket.gethostname():
        raise ResumeError(f"run {run_id} is still live (pid {old.pid}); wait for it or cancel it")
    changed = [
        path
        for path in sorted(set(old.file_hashes) | set(loaded.file_hashes))
        if old.file_hashes.get(path) != loaded.file_hashes.get(path)
    ]
    if changed:
        what = ", ".join(changed)
        raise ResumeError(
            f"cannot resume run {run_id}: {what} changed since it ran (SHA-256 differs); "
            "approvals and results bind to the files as they were — start a new run instead"
        )
    reused: dict[str, str] = {}
    for sid, step in old.steps.items():
        if sid in loaded.steps and step.status in SUCCESSFUL:
            origin = (
                step.reason.removeprefix("succeeded in run ")
                if step.status == "reused" and step.reason
                else run_id
            )
            reused[sid] = origin
    return reused


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
