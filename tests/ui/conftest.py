"""Helpers for the UI tests: the demo workflow on disk, a frozen clock, scripted events
(the states the snapshots pin) and a scripted executor for runs through the real Engine."""

from __future__ import annotations

import asyncio
import hashlib
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from console.events import (
    Event,
    GateEvaluated,
    GateOpened,
    RunFinished,
    RunStarted,
    StepDenied,
    StepFinished,
    StepReady,
    StepSkipped,
    StepStarted,
)
from console.exec.base import ExecResult, Started, StepCommand
from console.run.engine import EngineSettings
from console.ui.app import ConsoleApp, make_app
from console.workflow.loaded import LoadedWorkflow
from console.workflow.loader import load_workflow

T0 = datetime(2025, 3, 14, 9, 0, 0, tzinfo=UTC)
RUN = "20250314T090000-snap"

DEMO = """\
[workflow]
name = "payments-deploy"
description = "Blue/green deploy of the payments API"

[params]
version = { type = "string", pattern = '^\\d+\\.\\d+\\.\\d+$', default = "1.4.2" }

[steps.build]
run = ["make", "build", "VERSION={{ params.version }}"]
tags = ["ci"]

[steps.test]
needs = ["build"]
run = "pytest -q"
retry = { attempts = 2 }

[steps.lint]
needs = ["build"]
run = "ruff check ."

[steps.migrate]
needs = ["test"]
run = "alembic upgrade head"
env = { DATABASE_URL = "${secret:PAYMENTS_DB_URL}" }
tags = ["prod", "db"]
approval = { approvals = 2, reason = true }

[steps.deploy]
needs = ["migrate", "lint"]
run = ["./switch-traffic.sh", "green"]
tags = ["prod"]

[steps.notify]
needs = ["deploy", "build"]
run = "echo deployed"
"""


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def frozen_clock(seconds: float = 75.0) -> Callable[[], datetime]:
    moment = T0 + timedelta(seconds=seconds)
    return lambda: moment


def write_workflow(directory: Path, text: str = DEMO, name: str = "workflow.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def demo(tmp_path: Path) -> LoadedWorkflow:
    return load_workflow(write_workflow(tmp_path))


def settings_in(tmp_path: Path) -> EngineSettings:
    return EngineSettings(
        audit_path=tmp_path / "state" / "audit.jsonl",
        runs_dir=tmp_path / "state" / "runs",
        runtime_dir=tmp_path / "runtime",
        grace_s=1.0,
        via="tui",
    )


def snapshot_app(loaded: LoadedWorkflow, tmp_path: Path, **options: Any) -> ConsoleApp:
    """An app pinned for snapshots: frozen clock, fixed identity, no blink, no watcher."""
    values: dict[str, Any] = {
        "clock": frozen_clock(),
        "identity": ("alice", "build-01"),
        "blink": False,
        "watch": False,
        "theme": "dark",
        "remember_theme": False,
        "settings": settings_in(tmp_path),
    }
    values.update(options)
    return make_app(loaded, **values)


# --- scripted events: the run states the snapshots show ---------------------------------

DECISION_TWO_PEOPLE: dict[str, Any] = {
    "effect": "require_approval",
    "level": "hard",
    "approvals_required": 2,
    "approver_sets": [],
    "reason_required": True,
    "summary": "needs 2 approvals",
    "rules": [
        {"name": "step approval", "effect": "require_approval", "level": "hard",
         "reason": "the step asks for 2 approvals with a reason"},
        {"name": "prod needs two people", "effect": "require_approval", "level": "hard",
         "reason": "tags include prod"},
    ],
    "warnings": [],
}

DECISION_FREEZE: dict[str, Any] = {
    "effect": "deny",
    "level": "hard",
    "approvals_required": 0,
    "summary": "denied by Friday freeze",
    "rules": [{"name": "Friday freeze", "effect": "deny", "level": "hard",
               "reason": "Fri 15:00-23:59 Europe/Berlin"}],
    "warnings": [],
}


@dataclass
class Story:
    """Builds the events of a run of the demo workflow, with fixed times."""

    events: list[Event]

    @classmethod
    def started(cls, steps: tuple[str, ...] = ("build", "test", "lint", "migrate", "deploy",
                                                "notify")) -> Story:
        return cls([RunStarted(
            run=RUN, ts=ts(0), workflow="payments-deploy", workflow_path="/srv/workflow.toml",
            file_hashes={}, params={"version": "1.4.2"}, steps=steps, user="alice", uid=1000,
            host="build-01", pid=4242, version="0.1.0", concurrency=4, run_dir="/srv/runs",
        )])

    def start(self, step: str, at: float, attempt: int = 1, of: int = 1) -> Story:
        self.events.append(StepReady(run=RUN, step=step, ts=ts(at)))
        self.events.append(StepStarted(run=RUN, step=step, ts=ts(at), attempt=attempt,
                                       max_attempts=of, command=("make", "build"),
                                       log_path=f"/nonexistent/{step}.log", pid=100))
        return self

    def finish(self, step: str, at: float, took: float, outcome: str = "succeeded",
               exit_code: int | None = 0, attempt: int = 1) -> Story:
        self.events.append(StepFinished(
            run=RUN, step=step, ts=ts(at), attempt=attempt, outcome=outcome,  # type: ignore[arg-type]
            exit_code=exit_code, error=None, duration_s=took,
            log_path=f"/nonexistent/{step}.log", log_size=10, log_sha256="0" * 64,
        ))
        return self

    def gate(self, step: str, at: float,
             decision: Mapping[str, Any] = DECISION_TWO_PEOPLE) -> Story:
        self.events.append(GateEvaluated(run=RUN, step=step, ts=ts(at), decision=decision))
        self.events.append(GateOpened(
            run=RUN, step=step, ts=ts(at), approvals_required=2, approvers=("@sre",),
            reason_required=True, deadline=None,
            approve_command=f"console approve {RUN} {step} --reason \"...\"",
        ))
        return self

    def deny(self, step: str, at: float) -> Story:
        self.events.append(GateEvaluated(run=RUN, step=step, ts=ts(at), decision=DECISION_FREEZE))
        self.events.append(StepDenied(run=RUN, step=step, ts=ts(at), reason="Friday freeze",
                                      policies=("Friday freeze",)))
        return self

    def skip(self, step: str, at: float, reason: str) -> Story:
        self.events.append(StepSkipped(run=RUN, step=step, ts=ts(at), reason=reason))
        return self

    def end(self, outcome: str, at: float) -> Story:
        self.events.append(RunFinished(run=RUN, ts=ts(at), outcome=outcome,  # type: ignore[arg-type]
                                       counts={}, duration_s=at))
        return self


def running_story() -> Story:
    return Story.started().start("build", 1).finish("build", 13.4, 12.4) \
        .start("test", 14, of=2).start("lint", 14).finish("lint", 20.2, 6.2)


def awaiting_story() -> Story:
    return running_story().finish("test", 44, 30.0).gate("migrate", 44)


def denied_story() -> Story:
    return running_story().finish("test", 44, 30.0).deny("migrate", 44) \
        .skip("deploy", 44, "needs migrate, which was denied") \
        .skip("notify", 44, "needs deploy, which was skipped").end("denied", 44.5)


def failed_story() -> Story:
    return running_story().start("test", 30, attempt=2, of=2) \
        .finish("test", 44, 14.0, outcome="failed", exit_code=2, attempt=2) \
        .skip("migrate", 44, "needs test, which failed") \
        .skip("deploy", 44, "needs migrate, which was skipped") \
        .skip("notify", 44, "needs deploy, which was skipped").end("failed", 44.5)


# --- a scripted executor: deterministic results through the real Engine -----------------


class ScriptedExecutor:
    """Implements the Executor protocol: each step writes its scripted output and ends with
    its scripted exit code; a step in `hold` waits until released or cancelled."""

    def __init__(self, exits: Mapping[str, int] | None = None,
                 hold: set[str] | None = None) -> None:
        self.exits = dict(exits or {})
        self.hold = set(hold or ())
        self.released: dict[str, asyncio.Event] = {}
        self.ran: list[str] = []
        self._cancelled: set[str] = set()

    def release(self, step: str) -> None:
        self.released.setdefault(step, asyncio.Event()).set()

    async def run(self, cmd: StepCommand, on_started: Callable[[Started], None] | None = None
                  ) -> ExecResult:
        self.ran.append(cmd.step_id)
        if on_started is not None:
            on_started(Started(pid=4242))
        data = f"{cmd.step_id}: attempt {cmd.attempt}\n".encode()
        cmd.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd.log_path.write_bytes(data)
        if cmd.step_id in self.hold:
            await self.released.setdefault(cmd.step_id, asyncio.Event()).wait()
        code = self.exits.get(cmd.step_id, 0)
        if cmd.step_id in self._cancelled:
            outcome, code = "cancelled", -15
        else:
            outcome = "succeeded" if code == 0 else "failed"
        return ExecResult(outcome=outcome, exit_code=code, error=None, pid=4242,  # type: ignore[arg-type]
                          duration_s=0.5, log_path=cmd.log_path, log_size=len(data),
                          log_sha256=hashlib.sha256(data).hexdigest())

    def cancel(self, step_id: str) -> None:
        self._cancelled.add(step_id)
        self.release(step_id)

    async def shutdown(self) -> None:
        for step in list(self.released):
            self.release(step)


async def wait_for(pilot: Any, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until `predicate()` holds (fails the test after `timeout`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s")
        await pilot.pause(0.02)


GATED = """\
[workflow]
name = "gated"

[steps.build]
run = "echo build"

[steps.deploy]
needs = ["build"]
run = "echo deploy"
approval = { approvals = 1, reason = true }

[steps.after]
needs = ["deploy"]
run = "echo after"
"""
