"""The engine with real processes: concurrency, `if`, skips, retries, gates, denials."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from console.audit.log import verify_chain
from console.errors import SecretError
from console.events import (
    ApprovalGiven,
    ApprovalRefused,
    GateOpened,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from console.timestamps import parse_ts

from .conftest import PY, Runner, start_until


def _statuses(engine: object) -> dict[str, str]:
    return {sid: st.status for sid, st in engine.state.steps.items()}  # type: ignore[attr-defined]


def test_never_more_than_concurrency_steps_at_once(runner: Runner) -> None:
    steps = "\n".join(
        f'[steps.s{i}]\nrun = ["{PY}", "-c", "import time; time.sleep(0.15)"]\n' for i in range(6)
    )
    outcome, engine, sink = runner.run(f'[workflow]\nname = "c"\nconcurrency = 2\n{steps}')
    assert outcome == "succeeded"
    spans = []
    starts = {e.step: parse_ts(e.ts) for e in sink.of_type(StepStarted)}
    for e in sink.of_type(StepFinished):
        spans.append((starts[e.step], parse_ts(e.ts)))
    moments = sorted(
        [(s, 1) for s, _ in spans] + [(f, -1) for _, f in spans], key=lambda m: (m[0], m[1])
    )
    running = peak = 0
    for _, delta in moments:
        running += delta
        peak = max(peak, running)
    assert peak == 2
    assert verify_chain(engine.settings.audit_path).ok


def test_if_semantics_and_skip_propagation(runner: Runner) -> None:
    outcome, engine, _ = runner.run(
        """
        [workflow]
        name = "ifs"
        [steps.build]
        run = "exit 3"
        [steps.test]
        needs = ["build"]
        run = "true"
        [steps.publish]
        needs = ["test"]
        run = "true"
        [steps.rollback]
        needs = ["build"]
        run = "true"
        if = "failure"
        [steps.cleanup]
        needs = ["publish"]
        run = "true"
        if = "always"
        [steps.notify]
        needs = ["cleanup"]
        run = "true"
        if = "failure"
        """
    )
    assert outcome == "failed"
    assert _statuses(engine) == {
        "build": "failed",
        "test": "skipped",
        "publish": "skipped",
        "rollback": "succeeded",
        "cleanup": "succeeded",
        "notify": "skipped",
    }
    assert engine.state.steps["test"].reason == "needs build, which failed"
    assert engine.state.steps["publish"].reason == "needs test, which was skipped"
    assert engine.state.steps["build"].exit_code == 3


def test_retry_with_delay_and_backoff_then_success(runner: Runner, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
    )
    outcome, _engine, sink = runner.run(
        f"""
        [workflow]
        name = "retry"
        [steps.flaky]
        run = '{script}'
        retry = {{ attempts = 4, delay = "200ms", backoff = 2.0 }}
        """
    )
    assert outcome == "succeeded"
    finished = sink.of_type(StepFinished)
    assert [e.attempt for e in finished] == [1, 2, 3]
    assert [e.outcome for e in finished] == ["failed", "failed", "succeeded"]
    assert [e.retry_in_s for e in finished] == [0.2, 0.4, None]
    starts = [parse_ts(e.ts) for e in sink.of_type(StepStarted)]
    ends = [parse_ts(e.ts) for e in finished]
    assert (starts[1] - ends[0]).total_seconds() >= 0.2
    assert (starts[2] - ends[1]).total_seconds() >= 0.4
    logs = {e.log_path for e in finished}
    assert len(logs) == 3, "each attempt has its own log"


def test_step_that_cannot_start_is_an_error_not_a_crash(runner: Runner) -> None:
    outcome, engine, _ = runner.run(
        """
        [workflow]
        name = "nostart"
        [steps.ghost]
        run = ["/nonexistent/program"]
        """
    )
    assert outcome == "failed"
    step = engine.state.steps["ghost"]
    assert step.status == "error"
    assert step.error and "could not start" in step.error


def test_timeout_kills_and_records_an_error(runner: Runner) -> None:
    outcome, engine, _ = runner.run(
        """
        [workflow]
        name = "slow"
        [steps.slow]
        run = "sleep 30"
        timeout = "300ms"
        """,
        grace_s=0.3,
    )
    assert outcome == "failed"
    assert engine.state.steps["slow"].status == "error"
    assert engine.state.steps["slow"].error == "timed out after 300ms"


def test_params_reach_steps_as_env_and_argv_never_as_shell(runner: Runner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    outcome, _engine, _ = runner.run(
        f"""
        [workflow]
        name = "params"
        [params]
        version = {{ type = "string" }}
        [steps.argv]
        run = ["{PY}", "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
               "{out}", "v={{{{ params.version }}}}"]
        [steps.script]
        needs = ["argv"]
        run = 'printf "%s" "$PARAM_VERSION" >> {out}'
        """,
        params={"version": "1.2.3; rm -rf /"},
    )
    assert outcome == "succeeded"
    assert out.read_text() == "v=1.2.3; rm -rf /1.2.3; rm -rf /"


def test_missing_secret_stops_the_run_before_it_starts(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEPLOY_TOKEN", raising=False)
    engine, sink = runner.engine(
        """
        [workflow]
        name = "secret"
        [steps.deploy]
        run = "true"
        env = { TOKEN = "${secret:DEPLOY_TOKEN}" }
        """
    )
    with pytest.raises(SecretError, match="DEPLOY_TOKEN"):
        asyncio.run(engine.run())
    assert sink.events == []


def test_secret_is_masked_in_the_log(runner: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "hunter2-very-secret")
    outcome, engine, _ = runner.run(
        """
        [workflow]
        name = "secret"
        [steps.deploy]
        run = 'echo "token is $TOKEN"'
        env = { TOKEN = "${secret:DEPLOY_TOKEN}" }
        """
    )
    assert outcome == "succeeded"
    log = Path(engine.state.steps["deploy"].log_path or "").read_text()
    assert log == "token is ***\n"
    audit = engine.settings.audit_path.read_text()
    assert "hunter2" not in audit


def test_gate_waits_for_approval_and_refuses_the_initiator_under_separation_of_duties(
    runner: Runner,
) -> None:
    engine, sink = runner.engine(
        """
        [workflow]
        name = "gate"
        [steps.deploy]
        run = "true"
        approval = { approvals = 1, separation_of_duties = true }
        """
    )
    verdicts = []

    async def go() -> str:
        task = await start_until(engine, "deploy", "awaiting_approval")
        verdicts.append(engine.approve("deploy", os.getuid(), "cli", None))
        other = 65534 if os.getuid() != 65534 else 0
        verdicts.append(engine.approve("deploy", other, "cli", "looks good"))
        return await asyncio.wait_for(task, 30)

    outcome = asyncio.run(go())
    assert outcome == "succeeded"
    assert not verdicts[0].ok and "started this run" in verdicts[0].message
    assert verdicts[1].ok
    assert len(sink.of_type(GateOpened)) == 1
    assert len(sink.of_type(ApprovalRefused)) == 1
    given = sink.of_type(ApprovalGiven)
    assert len(given) == 1 and given[0].actor is not None and given[0].actor.uid != os.getuid()


def test_deny_skips_dependents_and_the_run_is_denied(runner: Runner) -> None:
    engine, _ = runner.engine(
        """
        [workflow]
        name = "deny"
        [steps.deploy]
        run = "true"
        approval = { approvals = 1 }
        [steps.verify]
        needs = ["deploy"]
        run = "true"
        """
    )

    async def go() -> str:
        task = await start_until(engine, "deploy", "awaiting_approval")
        verdict = engine.deny("deploy", os.getuid(), "cli", "not today")
        assert verdict.ok, verdict.message
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(go()) == "denied"
    assert _statuses(engine) == {"deploy": "denied", "verify": "skipped"}


def test_gate_timeout_denies_fail_closed(runner: Runner) -> None:
    outcome, engine, _sink = runner.run(
        """
        [workflow]
        name = "timeout"
        [steps.deploy]
        run = "true"
        approval = { approvals = 1, timeout = "300ms" }
        """
    )
    assert outcome == "denied"
    step = engine.state.steps["deploy"]
    assert step.status == "denied"
    assert step.reason is not None and "fail closed" in step.reason


def test_hard_policy_deny(runner: Runner) -> None:
    outcome, engine, sink = runner.run(
        """
        [workflow]
        name = "policy"
        [steps.deploy]
        run = "true"
        tags = ["prod"]
        [steps.after]
        needs = ["deploy"]
        run = "true"
        [[policy]]
        name = "no prod from here"
        match = { tags = ["prod"] }
        effect = "deny"
        """
    )
    assert outcome == "denied"
    assert _statuses(engine) == {"deploy": "denied", "after": "skipped"}
    assert "no prod from here" in (engine.state.steps["deploy"].denied_by or "")
    assert not sink.of_type(StepStarted)


def test_cancel_run_stops_running_steps(runner: Runner) -> None:
    engine, sink = runner.engine(
        """
        [workflow]
        name = "cancel"
        [steps.long]
        run = "sleep 30"
        [steps.after]
        needs = ["long"]
        run = "true"
        """,
        grace_s=0.5,
    )

    async def go() -> str:
        task = await start_until(engine, "long", "running")
        assert engine.cancel_run(os.getuid(), "cli").ok
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(go()) == "cancelled"
    assert _statuses(engine) == {"long": "cancelled", "after": "skipped"}
    assert any(isinstance(e, StepSkipped) for e in sink.events)


def test_retry_step_reruns_it_and_its_skipped_dependents(runner: Runner, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    engine, _sink = runner.engine(
        f"""
        [workflow]
        name = "retry-step"
        [steps.build]
        run = "test -e {flag}"
        [steps.test]
        needs = ["build"]
        run = "true"
        [steps.hold]
        run = "sleep 1"
        """
    )

    async def go() -> str:
        task = await start_until(engine, "test", "skipped")
        flag.touch()
        verdict = engine.retry_step("build", os.getuid(), "tui")
        assert verdict.ok, verdict.message
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(go()) == "succeeded"
    assert _statuses(engine) == {"build": "succeeded", "test": "succeeded", "hold": "succeeded"}


def test_soft_deny_waits_for_an_override_which_is_audited(runner: Runner) -> None:
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    engine, _ = runner.engine(
        f"""
        [workflow]
        name = "freeze"
        [steps.deploy]
        run = "true"
        tags = ["prod"]
        [[policy]]
        name = "change freeze"
        match = {{ tags = ["prod"] }}
        effect = "deny"
        level = "soft"
        override_by = ["{me}"]
        """
    )

    async def go() -> str:
        task = await start_until(engine, "deploy", "awaiting_approval")
        refused = engine.approve("deploy", os.getuid(), "cli", "please")
        assert not refused.ok and "override" in refused.message
        assert not engine.override("deploy", os.getuid(), "cli", "").ok
        verdict = engine.override("deploy", os.getuid(), "cli", "hotfix for incident 42")
        assert verdict.ok, verdict.message
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(go()) == "succeeded"
    audit = engine.settings.audit_path.read_text()
    assert '"type":"override.given"' in audit
    assert "hotfix for incident 42" in audit
    assert audit.count('"type":"approval.refused"') == 2
