"""Random DAGs, run for real, checked against a small reference model of the outcome rule.

Each scenario is a DAG whose steps each do one thing: succeed, fail, wait at a gate that a
person approves, denies or cancels, get cancelled while running, or be the step during
which the run is interrupted (a signal) or cancelled as a whole. The engine runs it with
real processes; the model below, written from DESIGN.md's "Run outcomes" alone, says what
each step ends as, which steps ran, the run's outcome and exit code. A resumed run, with
everything fixed, is checked the same way.

The one thing the model takes from the run is which steps had started, or had been denied
or cancelled at their gate, when the stop came (which ready step got there first is the
scheduler's business, not the rule's).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.events import (
    CancelRequested,
    RecordingSink,
    RunInterrupted,
    StepCancelled,
    StepDenied,
    StepStarted,
)
from console.host.run_host import RunHost
from console.run.exit_codes import EXIT_CODES
from console.workflow.loader import load_workflow

from .conftest import settings_in

PLAIN = ("succeed", "fail", "approve", "deny", "cancel_at_gate", "cancel_running")
STOPS = ("interrupt", "cancel_run")
GATED = ("approve", "deny", "cancel_at_gate")
BLOCKING = ("cancel_running", *STOPS)
# What a step's process does is read from a file at run time, so a resumed run (which
# needs the same workflow file) can behave differently: "fail" or "block" (wait to be
# stopped), anything else succeeds.
BEHAVIOUR = {"fail": "fail", "cancel_running": "block", "interrupt": "block",
             "cancel_run": "block"}
COMMAND = (
    "case $(cat {directory}/{name}.does 2>/dev/null) in "
    "fail) exit 1;; block) exec sleep 30;; esac"
)


@dataclass(frozen=True)
class Step:
    needs: tuple[str, ...]
    when: str  # the step's `if`
    does: str  # one of PLAIN or STOPS


Scenario = Mapping[str, Step]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Step]:
    count = draw(st.integers(1, 6))
    names = [f"s{i}" for i in range(count)]
    stop_at = draw(st.one_of(st.none(), st.sampled_from(names)))
    steps: dict[str, Step] = {}
    for index, name in enumerate(names):
        needs = tuple(sorted(draw(st.sets(st.sampled_from(names[:index]), max_size=2))
                             if index else ()))
        when = draw(st.sampled_from(("success", "success", "failure", "always")))
        if name == stop_at and when != "always":
            does = draw(st.sampled_from(STOPS))
        else:
            does = draw(st.sampled_from(PLAIN))
        steps[name] = Step(needs, when, does)
    return steps


# --- the reference model ---------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    statuses: dict[str, str]
    ran: set[str]
    outcome: str
    exit_code: int


def model(
    scenario: Scenario, started_before_stop: set[str] | None, stop: str | None,
    reused: Mapping[str, str] | None = None,
) -> Expected:
    """What the rule says. `stop` is "interrupt" or "cancel_run" if one happened."""
    status: dict[str, str] = {}
    ran: set[str] = set()
    for name, step in scenario.items():  # names are in topological order
        if reused is not None and name in reused:
            status[name] = "reused"
            continue
        needs = [status[n] for n in step.needs]
        stopped = stop is not None and name not in (started_before_stop or set())
        if stopped and step.when != "always":
            status[name] = "skipped"
            continue
        if step.when == "success" and any(s not in ("succeeded", "reused") for s in needs):
            status[name] = "skipped"
            continue
        if step.when == "failure" and not any(s in ("failed", "error") for s in needs):
            status[name] = "skipped"
            continue
        does = step.does
        status[name] = {
            "succeed": "succeeded", "fail": "failed", "approve": "succeeded",
            "deny": "denied", "cancel_at_gate": "cancelled", "cancel_running": "cancelled",
            "interrupt": "cancelled", "cancel_run": "cancelled",
        }[does]
        if does not in ("deny", "cancel_at_gate"):
            ran.add(name)
    values = set(status.values())
    if stop == "interrupt":
        outcome = "interrupted"
    elif stop == "cancel_run" or "cancelled" in values:
        outcome = "cancelled"
    elif "denied" in values:
        outcome = "denied"
    elif values & {"failed", "error"}:
        outcome = "failed"
    else:
        outcome = "succeeded"
    codes = {"succeeded": 0, "failed": 1, "denied": 3, "cancelled": 130, "interrupted": 130}
    return Expected(status, ran, outcome, codes[outcome])


def reusable(scenario: Scenario, statuses: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, step in scenario.items():
        if statuses[name] in ("succeeded", "reused") and all(n in out for n in step.needs):
            out[name] = name
    return out


# --- running a scenario for real ---------------------------------------------------------


def workflow_text(scenario: Scenario, directory: Path) -> str:
    lines = ['[workflow]', 'name = "model"', "concurrency = 1", ""]
    for name, step in scenario.items():
        lines.append(f"[steps.{name}]")
        if step.needs:
            lines.append("needs = [" + ", ".join(f'"{n}"' for n in step.needs) + "]")
        lines.append(f'if = "{step.when}"')
        lines.append(f'run = "{COMMAND.format(directory=directory, name=name)}"')
        if step.does in GATED:
            lines.append("approval = { approvals = 1 }")
        lines.append("")
    return "\n".join(lines)


async def drive(engine: RunHost, scenario: Scenario) -> str:
    """Run it, acting as the people and the signals of the scenario do."""
    uid = os.getuid()
    task = asyncio.create_task(engine.run())
    acted: set[str] = set()
    async with asyncio.timeout(60):
        while not task.done():
            for name, st_ in list(engine.state.steps.items()):
                does = scenario[name].does
                if name in acted:
                    continue
                if st_.status == "awaiting_approval":
                    acted.add(name)
                    if does == "deny":
                        engine.deny(name, uid, "cli", "no")
                    elif does == "cancel_at_gate":
                        engine.cancel_step(name, uid, "cli")
                    else:
                        engine.approve(name, uid, "cli", None)
                elif st_.status == "running" and does in BLOCKING:
                    acted.add(name)
                    if does == "cancel_running":
                        engine.cancel_step(name, uid, "cli")
                    elif does == "interrupt":
                        engine.interrupt("SIGTERM")
                    else:
                        engine.cancel_run(uid, "cli")
            await asyncio.sleep(0.005)
    return await task


def started_before_stop(sink: RecordingSink) -> tuple[set[str] | None, str | None]:
    started: set[str] = set()
    for event in sink.events:
        if isinstance(event, RunInterrupted):
            return started, "interrupt"
        if isinstance(event, CancelRequested) and event.target == "run":
            return started, "cancel_run"
        if isinstance(event, StepStarted | StepDenied | StepCancelled) and event.step:
            started.add(event.step)
    return None, None


def run_for_real(
    directory: Path, scenario: Scenario, resume_from: str | None = None
) -> tuple[RunHost, RecordingSink, str]:
    path = directory / "wf.toml"
    if not path.exists():
        path.write_text(workflow_text(scenario, directory))
    for name, step in scenario.items():
        (directory / f"{name}.does").write_text(BEHAVIOUR.get(step.does, "succeed"))
    sink = RecordingSink()
    engine = RunHost(load_workflow(path), {}, [sink],
                    settings_in(directory, grace_s=0.2, resume_from=resume_from))
    outcome = asyncio.run(drive(engine, scenario))
    return engine, sink, outcome


def check(engine: RunHost, sink: RecordingSink, outcome: str, expected: Expected) -> None:
    statuses = {sid: s.status for sid, s in engine.state.steps.items()}
    ran = {e.step for e in sink.of_type(StepStarted) if e.step is not None}
    assert statuses == expected.statuses
    assert ran == expected.ran
    assert outcome == expected.outcome
    assert EXIT_CODES[outcome] == expected.exit_code  # type: ignore[index]


def fixed(scenario: Scenario) -> dict[str, Step]:
    return {name: Step(step.needs, step.when, "approve" if step.does in GATED else "succeed")
            for name, step in scenario.items()}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_engine_follows_the_outcome_rule_and_resume_keeps_reused_outcomes(
    scenario: dict[str, Step],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        engine, sink, outcome = run_for_real(directory, scenario)
        before, stop = started_before_stop(sink)
        check(engine, sink, outcome, model(scenario, before, stop))

        again = fixed(scenario)
        reused = reusable(scenario, {s: st_.status for s, st_ in engine.state.steps.items()})
        if len(reused) == len(scenario):
            return  # nothing to resume: the first run succeeded throughout
        engine2, sink2, outcome2 = run_for_real(directory, again, resume_from=engine.run_id)
        check(engine2, sink2, outcome2, model(again, None, None, reused=reused))


def test_the_model_agrees_with_the_design_on_a_known_case() -> None:
    """The model itself: bluegreen's shape, cancelled at the gate, cleanup runs."""
    scenario: Sequence[tuple[str, Step]] = (
        ("build", Step((), "success", "succeed")),
        ("switch", Step(("build",), "success", "cancel_at_gate")),
        ("rollback", Step(("switch",), "failure", "succeed")),
        ("cleanup", Step(("switch", "rollback"), "always", "succeed")),
    )
    expected = model(dict(scenario), None, None)
    assert expected.statuses == {"build": "succeeded", "switch": "cancelled",
                                 "rollback": "skipped", "cleanup": "succeeded"}
    assert (expected.outcome, expected.exit_code) == ("cancelled", 130)
    assert expected.ran == {"build", "cleanup"}
