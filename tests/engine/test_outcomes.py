"""Outcomes that tell the truth: cancels, interrupts, cleanups, resume (real processes)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from console.events import (
    CleanupsSkipped,
    Event,
    RecordingSink,
    RunFinished,
    StepStarted,
)
from console.host.run_host import RunHost
from console.run.history import fold_audit

from .conftest import Runner, start_until

GATED_WITH_CLEANUP = """
[workflow]
name = "gated"
[steps.build]
run = "true"
[steps.switch]
needs = ["build"]
run = "echo switched > {marker}"
approval = {{ approvals = 1 }}
[steps.verify]
needs = ["switch"]
run = "true"
[steps.cleanup]
needs = ["verify"]
if = "always"
run = "echo cleaned > {cleaned}"
"""


def _statuses(engine: RunHost) -> dict[str, str]:
    return {sid: st.status for sid, st in engine.state.steps.items()}


def _started(sink: RecordingSink) -> list[str | None]:
    return [e.step for e in sink.of_type(StepStarted)]


def _audit_records(engine: RunHost) -> list[dict[str, object]]:
    return [json.loads(line) for line in engine.settings.audit_path.read_text().splitlines()]


def _fold_agrees_with_last_record(engine: RunHost) -> str:
    """The fold of the audit file and its last record say the same outcome; return it."""
    records = _audit_records(engine)
    last = records[-1]
    assert last["type"] == "run.finished"
    folded = fold_audit(engine.settings.audit_path, engine.run_id)[engine.run_id]
    data = last["data"]
    assert isinstance(data, dict)
    assert folded.status == data["outcome"]
    return folded.status


def test_cancelling_a_step_at_its_gate_cancels_the_run_and_cleanup_runs(
    runner: Runner, tmp_path: Path
) -> None:
    marker, cleaned = tmp_path / "switched", tmp_path / "cleaned"
    engine, _sink = runner.engine(GATED_WITH_CLEANUP.format(marker=marker, cleaned=cleaned))

    async def go() -> str:
        task = await start_until(engine, "switch", "awaiting_approval")
        verdict = engine.cancel_step("switch", os.getuid(), "cli")
        assert verdict.ok, verdict.message
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(go()) == "cancelled"
    assert _statuses(engine) == {
        "build": "succeeded",
        "switch": "cancelled",
        "verify": "skipped",
        "cleanup": "succeeded",
    }
    assert not marker.exists()
    assert cleaned.read_text() == "cleaned\n"
    assert _fold_agrees_with_last_record(engine) == "cancelled"


def test_cancelling_the_run_at_a_gate_still_runs_the_cleanup(
    runner: Runner, tmp_path: Path
) -> None:
    marker, cleaned = tmp_path / "switched", tmp_path / "cleaned"
    engine, sink = runner.engine(GATED_WITH_CLEANUP.format(marker=marker, cleaned=cleaned))

    async def go() -> str:
        task = await start_until(engine, "switch", "awaiting_approval")
        assert engine.cancel_run(os.getuid(), "cli").ok
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(go()) == "cancelled"
    assert _statuses(engine)["cleanup"] == "succeeded"
    assert _started(sink) == ["build", "cleanup"]
    assert _fold_agrees_with_last_record(engine) == "cancelled"


LONG_THEN_CLEANUP = """
[workflow]
name = "long"
cleanup_timeout = "{cleanup_timeout}"
[steps.long]
run = "sleep 30"
[steps.after]
needs = ["long"]
run = "true"
[steps.cleanup]
needs = ["after"]
if = "always"
run = "{cleanup_run}"
"""


def test_an_interrupt_starts_nothing_new_but_the_cleanup(runner: Runner, tmp_path: Path) -> None:
    cleaned = tmp_path / "cleaned"
    engine, sink = runner.engine(
        LONG_THEN_CLEANUP.format(cleanup_timeout="5m", cleanup_run=f"echo ok > {cleaned}"),
        grace_s=0.5,
    )

    async def go() -> str:
        task = await start_until(engine, "long", "running")
        engine.interrupt("SIGTERM")
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(go()) == "interrupted"
    assert _statuses(engine) == {"long": "cancelled", "after": "skipped", "cleanup": "succeeded"}
    assert _started(sink) == ["long", "cleanup"]
    assert cleaned.exists()
    assert _fold_agrees_with_last_record(engine) == "interrupted"


def test_a_second_signal_abandons_the_cleanup_and_says_so(runner: Runner, tmp_path: Path) -> None:
    engine, sink = runner.engine(
        LONG_THEN_CLEANUP.format(cleanup_timeout="5m", cleanup_run="sleep 30"), grace_s=0.5
    )

    async def go() -> str:
        task = await start_until(engine, "long", "running")
        engine.interrupt("SIGINT")
        async with asyncio.timeout(30):
            while engine.state.steps["cleanup"].status != "running":
                await asyncio.sleep(0.01)
        engine.interrupt("SIGINT")
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(go()) == "interrupted"
    assert _statuses(engine)["cleanup"] == "cancelled"
    skipped = sink.of_type(CleanupsSkipped)
    assert len(skipped) == 1 and isinstance(skipped[0], CleanupsSkipped)
    assert skipped[0].steps == ("cleanup",) and skipped[0].signal == "SIGINT"
    types = [r["type"] for r in _audit_records(engine)]
    assert "run.cleanups_skipped" in types
    assert _fold_agrees_with_last_record(engine) == "interrupted"


def test_cleanup_timeout_bounds_the_cleanups_after_a_cancel(
    runner: Runner, tmp_path: Path
) -> None:
    engine, _ = runner.engine(
        LONG_THEN_CLEANUP.format(cleanup_timeout="700ms", cleanup_run="sleep 30"), grace_s=0.3
    )

    async def go() -> str:
        task = await start_until(engine, "long", "running")
        assert engine.cancel_run(os.getuid(), "cli").ok
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(go()) == "cancelled"
    cleanup = engine.state.steps["cleanup"]
    assert cleanup.status in ("error", "cancelled"), cleanup
    assert _fold_agrees_with_last_record(engine) == "cancelled"


def test_cleanup_runs_after_a_failure_and_after_a_denial(runner: Runner, tmp_path: Path) -> None:
    outcome, engine, _ = runner.run(
        """
        [workflow]
        name = "fails"
        [steps.build]
        run = "exit 3"
        [steps.cleanup]
        needs = ["build"]
        if = "always"
        run = "true"
        """
    )
    assert outcome == "failed"
    assert _statuses(engine) == {"build": "failed", "cleanup": "succeeded"}
    outcome, engine, _ = runner.run(
        """
        [workflow]
        name = "denied"
        [steps.deploy]
        run = "true"
        tags = ["prod"]
        [steps.cleanup]
        needs = ["deploy"]
        if = "always"
        run = "true"
        [[policy]]
        name = "never"
        match = { tags = ["prod"] }
        effect = "deny"
        """
    )
    assert outcome == "denied"
    assert _statuses(engine) == {"deploy": "denied", "cleanup": "succeeded"}


def test_resuming_a_denied_run_reruns_the_cleanup_with_its_own_outcome(
    runner: Runner, tmp_path: Path
) -> None:
    marker, cleaned = tmp_path / "switched", tmp_path / "cleaned"
    text = GATED_WITH_CLEANUP.format(marker=marker, cleaned=cleaned)
    loaded = runner.load(text)
    first, _ = runner.engine(loaded)

    async def deny() -> str:
        task = await start_until(first, "switch", "awaiting_approval")
        assert first.deny("switch", os.getuid(), "cli", "not now").ok
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(deny()) == "denied"
    assert _statuses(first)["cleanup"] == "succeeded"
    cleaned.unlink()

    second, sink = runner.engine(loaded, resume_from=first.run_id)

    async def approve() -> str:
        task = await start_until(second, "switch", "awaiting_approval")
        assert second.approve("switch", os.getuid(), "cli", "now").ok
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(approve()) == "succeeded"
    assert _statuses(second) == {
        "build": "reused",
        "switch": "succeeded",
        "verify": "succeeded",
        "cleanup": "succeeded",
    }
    assert _started(sink) == ["switch", "verify", "cleanup"]
    assert marker.exists() and cleaned.exists()
    assert _fold_agrees_with_last_record(second) == "succeeded"


class _DeadTerminal:
    """A sink like the live table on a terminal that went away: every write fails."""

    def publish(self, event: Event) -> None:
        raise OSError(5, "Input/output error")


def test_a_sink_that_fails_cannot_keep_an_interrupted_run_going(
    runner: Runner, tmp_path: Path
) -> None:
    engine, sink = runner.engine(
        LONG_THEN_CLEANUP.format(cleanup_timeout="5m", cleanup_run="true"), grace_s=0.5
    )

    async def go() -> str:
        task = await start_until(engine, "long", "running")
        engine.add_sink(_DeadTerminal())
        engine.interrupt("SIGHUP")
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(go()) == "interrupted"
    assert _started(sink) == ["long", "cleanup"]
    assert _statuses(engine)["after"] == "skipped"
    finished = sink.of_type(RunFinished)
    assert isinstance(finished[-1], RunFinished) and finished[-1].outcome == "interrupted"
    assert _fold_agrees_with_last_record(engine) == "interrupted"
