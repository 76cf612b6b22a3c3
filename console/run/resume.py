"""`--resume RUN_ID`: which steps of an earlier run can be reused, if the files are unchanged.

Only successes carry over. Approvals never do: every gate not yet passed asks again.
"""

from __future__ import annotations

import socket
from pathlib import Path

from console.errors import ResumeError
from console.run.history import fold_audit, pid_alive
from console.run.state import SUCCESSFUL, RunState
from console.workflow.fleet import instance_id
from console.workflow.graph import topological_order
from console.workflow.loaded import LoadedWorkflow


def previous_run(audit_path: Path, run_id: str, loaded: LoadedWorkflow) -> dict[str, str]:
    """The steps that succeeded in `run_id` (step -> run they first succeeded in)."""
    return previous_run_with_outputs(audit_path, run_id, loaded)[0]


def previous_run_with_outputs(
    audit_path: Path, run_id: str, loaded: LoadedWorkflow
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The steps to reuse, and the outputs they handed on (restored from the audit). A step
    with a secret output is not reused: the audit holds only its SHA-256."""
    old = fold_audit(audit_path, run_id).get(run_id) if audit_path.exists() else None
    if old is None or old.status == "pending":
        raise ResumeError(
            f"run {run_id} is not in the audit trail {audit_path} — `console status` lists runs"
        )
    if old.workflow_path != str(loaded.path):
        raise ResumeError(
            f"run {run_id} ran {old.workflow_path}, not {loaded.path}; resume it with that file"
        )
    if (
        old.status == "running"
        and old.pid
        and pid_alive(old.pid)
        and old.host == socket.gethostname()
    ):
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
    # A step is reused only if everything it needs is reused too: a step downstream of
    # one that runs again (an `if = "always"` cleanup after a denial, say) runs again
    # after it, and gets an outcome of its own.
    reused: dict[str, str] = {}
    outputs: dict[str, dict[str, str]] = {}
    for sid in topological_order(loaded.steps):
        step = old.steps.get(sid)
        if step is None or step.status not in SUCCESSFUL:
            continue
        if any(loaded.steps[sid].output_specs.values()):
            continue  # a secret output cannot be restored: the step runs again
        if not all(need in reused for need in loaded.steps[sid].needs):
            continue
        origin = (
            step.reason.removeprefix("succeeded in run ")
            if step.status == "reused" and step.reason
            else run_id
        )
        reused[sid] = origin
        if step.outputs:
            outputs[sid] = dict(step.outputs)
    _reuse_instances(old, loaded, reused, run_id)
    return reused, outputs


def _reuse_instances(old: RunState, loaded: LoadedWorkflow, reused: dict[str, str],
                     run_id: str) -> None:
    """A step on many hosts that did not succeed as a whole runs again on the hosts that
    did not succeed; each host that did is reused (`deploy[web-03]`)."""
    for sid, hosts in loaded.targets.items():
        if sid in reused or not all(need in reused for need in loaded.steps[sid].needs):
            continue
        instances = old.instances.get(sid, {})
        for host in hosts:
            instance = instances.get(host)
            if instance is None or instance.status not in SUCCESSFUL:
                continue
            origin = (
                instance.reason.removeprefix("succeeded in run ")
                if instance.status == "reused" and instance.reason
                else run_id
            )
            reused[instance_id(sid, host)] = origin
