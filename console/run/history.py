"""Runs as the audit trail remembers them, and the runs live on this host right now.

`fold_audit` folds every run's events into its RunState (`console status` lists them;
`--resume` reads the run it continues from here). `ask_live_runs` asks every control
socket in the runtime directory for its run's status, whoever started the run: the
directory is shared by every user of the host, and each run judges, from the asker's uid
(SO_PEERCRED), whether that person may approve its open gates. `all_views` merges the
two by run id into RunViews, what a live run says winning over the audit's picture.
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from console.audit.log import read_records
from console.errors import ControlError
from console.events import UnknownEventError, event_from_json
from console.run.control_client import RUN_ID_PATTERN, request
from console.run.control_server import run_state_to_json
from console.run.state import FINISHED, RunState

LIVE_TIMEOUT_S = 2.0  # per socket; sockets are asked in parallel
LIVE_WORKERS = 16


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
    """Is `pid` a running process? A zombie is not: a run host killed with -9 whose parent
    is gone stays one until an init that reaps it does (some containers' PID 1 never do)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive unless it is a zombie
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc to ask: kill() said it exists
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] != "Z"


@dataclass(frozen=True)
class LiveAnswer:
    """What one control socket in the runtime directory said about its run."""

    run_id: str
    socket_path: Path
    owner_uid: int  # who created the socket file (the kernel's word, unlike the answer's)
    status: dict[str, Any] | None  # the run's `status` answer; None if it gave none
    error: str | None = None  # why there is no status (no answer in time, a bad answer)


def ask_live_runs(
    runtime_dir: Path,
    wanted: str | None = None,
    *,
    timeout_s: float = LIVE_TIMEOUT_S,
    workers: int = LIVE_WORKERS,
) -> dict[str, LiveAnswer]:
    """Every run listening in `runtime_dir` (or those whose id starts with `wanted`), asked
    for its status, at most `workers` at a time, each within `timeout_s`.

    A socket nobody listens on (the run was killed), a file that is not a socket, a symlink
    and a name that is not a run id are skipped without a word; so is a directory that
    does not exist or cannot be read. A run that does not answer in time is kept, with
    `error` saying so.
    """
    sockets = list(_run_sockets(runtime_dir, wanted))
    if not sockets:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(sockets))) as pool:
        answers = pool.map(lambda found: _ask(found, timeout_s), sockets)
        return {answer.run_id: answer for answer in answers if answer is not None}


def _run_sockets(runtime_dir: Path, wanted: str | None) -> Iterator[tuple[str, Path, int]]:
    try:
        entries = list(os.scandir(runtime_dir))
    except OSError:
        return
    for entry in entries:
        run_id, dot, suffix = entry.name.rpartition(".")
        if not dot or suffix != "sock" or not RUN_ID_PATTERN.fullmatch(run_id):
            continue
        if wanted is not None and not run_id.startswith(wanted):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISSOCK(info.st_mode):
            yield run_id, Path(entry.path), info.st_uid


def _ask(found: tuple[str, Path, int], timeout_s: float) -> LiveAnswer | None:
    run_id, path, owner_uid = found
    try:
        answer = request(run_id, {"op": "status"}, timeout_s, socket_path=path)
    except ControlError as exc:
        if isinstance(exc.__cause__, ConnectionRefusedError | FileNotFoundError):
            return None  # a stale socket, or the run ended while we asked: not live
        if not os.path.lexists(path):
            return None
        return LiveAnswer(run_id, path, owner_uid, None, exc.message)
    status = answer.get("status")
    if not answer.get("ok") or not isinstance(status, dict):
        return LiveAnswer(run_id, path, owner_uid, None, "it gave no status")
    return LiveAnswer(run_id, path, owner_uid, status)


# --- how each run stands now: the audit's picture, brought up to date by the run ---------


@dataclass
class RunView:
    """One run as `console status` shows it."""

    state: dict[str, Any]  # run_state_to_json() shape, from the socket or the audit fold
    status: str  # the run's status, or "abandoned", or "no answer"
    live: bool
    source: str  # "socket" or "audit"
    note: str = ""  # why the status is what it is, when that is not obvious
    # The open gates, as the live run reported them for the caller: summary, approvals,
    # approvals_required, approvers, approve_command, and (from a run that judges its
    # asker) may_approve and why_not.
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.state.get("run_id") or "")

    @property
    def progress(self) -> tuple[int, int]:
        steps = self.state.get("steps") or {}
        done = sum(1 for s in steps.values() if s.get("status") in FINISHED)
        return done, len(steps)

    @property
    def shown_status(self) -> str:
        status = "awaiting approval" if self.live and self.gates else self.status
        return f"{status}*" if self.note else status

    @property
    def may_approve(self) -> bool | None:
        """Whether the caller may act on one of the run's open gates now; None when the
        run did not say (it is not live, or predates the judgement)."""
        if not self.gates:
            return False if self.live and self.source == "socket" else None
        judged = [bool(g["may_approve"]) for g in self.gates.values() if "may_approve" in g]
        return any(judged) if judged else None

    def summary(self) -> dict[str, Any]:
        done, total = self.progress
        keys = ("workflow", "workflow_path", "user", "uid", "host", "pid")
        out: dict[str, Any] = {"run_id": self.run_id, "status": self.status}
        out.update({key: self.state.get(key) for key in keys})
        out.update(
            live=self.live, source=self.source, note=self.note or None, done=done, total=total,
            started=self.state.get("started_ts"), finished=self.state.get("finished_ts"),
            gates=self.gates, may_approve=self.may_approve,
        )
        return out


def view_run(state: RunState, host: str | None = None, live: LiveAnswer | None = None) -> RunView:
    """How the run stands now: live (from `live`, what its socket in the runtime directory
    said, or asked over the socket the audit recorded), finished, abandoned, elsewhere."""
    folded = run_state_to_json(state)
    this_host = host if host is not None else socket.gethostname()
    if live is not None:
        if live.status is not None:
            return live_view(folded, live.status)
        note = f"control socket did not answer ({live.error}); state from the audit file"
        return RunView(folded, state.status, live=True, source="audit", note=note)
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
        answer = request(str(state.run_id), {"op": "status"}, LIVE_TIMEOUT_S,
                         socket_path=socket_path)
    except ControlError as exc:
        note = f"control socket did not answer ({exc.message}); state from the audit file"
        return RunView(folded, state.status, live=True, source="audit", note=note)
    live_state = answer.get("status")
    if not answer.get("ok") or not isinstance(live_state, dict):
        note = "control socket gave no status; state from the audit file"
        return RunView(folded, state.status, live=True, source="audit", note=note)
    return live_view(folded, live_state)


def live_view(folded: Mapping[str, Any], live_state: Mapping[str, Any]) -> RunView:
    merged = merge_live(folded, live_state)
    gates = live_state.get("gates")
    open_gates = {
        str(step): dict(gate)
        for step, gate in (gates.items() if isinstance(gates, Mapping) else ())
        if isinstance(gate, Mapping)
    }
    status = str(merged.get("status") or "running")
    return RunView(merged, status, live=True, source="socket", gates=open_gates)


def view_live_only(answer: LiveAnswer, host: str | None = None) -> RunView:
    """A live run the caller's audit file does not know (another user's, or recorded in
    another audit file): all there is to show is what its socket said."""
    owner = _user_name(answer.owner_uid)
    base: dict[str, Any] = {
        "run_id": answer.run_id, "workflow": None, "workflow_path": None, "user": None,
        "uid": None, "host": host if host is not None else socket.gethostname(), "pid": None,
        "control_socket": str(answer.socket_path), "started_ts": None, "finished_ts": None,
        "status": "running", "steps": {},
    }
    if answer.status is None:
        base["user"] = owner
        note = f"its control socket {answer.socket_path} did not answer ({answer.error})"
        return RunView(base, "no answer", live=True, source="socket", note=note)
    view = live_view(base, answer.status)
    if not view.state.get("user"):
        view.state["user"] = owner
    return view


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


def all_views(runs: Mapping[str, RunState], live: Mapping[str, LiveAnswer]) -> list[RunView]:
    """One view per run id, from the audit and the runtime directory, oldest first."""
    views = []
    unclaimed = dict(live)
    for run_id, state in runs.items():
        if state.started_ts is None:
            continue
        views.append(view_run(state, live=claimed_answer(state, unclaimed.pop(run_id, None))))
    views.extend(view_live_only(answer) for answer in unclaimed.values())
    return sorted(views, key=_started_key)


def claimed_answer(state: RunState, answer: LiveAnswer | None) -> LiveAnswer | None:
    """`answer`, if it can be this audit run's: its socket is the one the run recorded, or
    it belongs to the run's user (anyone can make a socket of any name in a shared dir)."""
    if answer is None:
        return None
    recorded = state.control_socket and Path(state.control_socket) == answer.socket_path
    return answer if recorded or answer.owner_uid == state.uid else None


def _started_key(view: RunView) -> tuple[str, str]:
    started = view.state.get("started_ts")
    return str(started or started_from_run_id(view.run_id) or ""), view.run_id


def started_from_run_id(run_id: str) -> str | None:
    """Run ids begin with their start time, UTC (console/run/ids.py): e.g.
    20261125-230512-3f9a1c -> 2026-11-25T23:05:12."""
    for layout in ("%Y%m%d-%H%M%S", "%Y%m%dT%H%M%SZ"):
        stamp = run_id.rpartition("-")[0]
        try:
            return datetime.strptime(stamp, layout).strftime("%Y-%m-%dT%H:%M:%S")
        except ValueError:
            continue
    return None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"
