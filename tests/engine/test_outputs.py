"""Outputs between steps, policy on outputs, matrix steps: the real CLI, real processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from console.run.exit_codes import EXIT_CODES

from ..conftest import WORKFLOWS
from .cli_runs import (
    console_env,
    console_process,
    processes_with,
    records,
    wait_for,
    wait_for_record,
)


def _of(recs: list[dict[str, Any]], kind: str, step: str | None = None) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == kind and (step is None or r.get("step") == step)]


def _run(tmp_path: Path, workflow: str, *args: str, env: dict[str, str] | None = None
         ) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    path = tmp_path / "wf.toml"
    path.write_text(textwrap.dedent(workflow))
    audit = tmp_path / "audit.jsonl"
    done = subprocess.run([sys.executable, "-m", "console", "run", str(path), "--no-tui",
                           "--audit", str(audit), *args], env=env or console_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    return done, records(audit)


def test_no_destroy_no_gate_and_the_image_arrives_as_argument_and_env(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "console", "run", str(WORKFLOWS / "release.toml"),
         "-p", "version=3.0.1", "--no-tui", "--audit", str(audit)],
        env=console_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    recs = records(audit)
    assert not _of(recs, "gate.opened")
    build = _of(recs, "step.finished", "build")[0]["data"]
    assert build["outputs"] == {"image": "registry.example/shop:3.0.1"}
    plan = _of(recs, "step.finished", "infra-plan")[0]["data"]["outputs"]
    assert plan == {"destroy_count": "0", "summary": "+ 3 to add\n~ 1 to change\n- 0 to destroy"}
    for region in ("eu-west", "us-east", "ap-south"):
        started = _of(recs, "step.started", f"deploy[region={region}]")[0]["data"]
        assert started["matrix"] == {"region": region}
        assert started["command"][-1] == "registry.example/shop:3.0.1"  # one argument
        log = Path(started["log_path"]).read_text()
        assert log == f"deploying registry.example/shop:3.0.1 to {region}\n"
    apply_log = Path(_of(recs, "step.finished", "infra-apply")[0]["data"]["log_path"])
    assert apply_log.read_text() == "applying:\n+ 3 to add\n~ 1 to change\n- 0 to destroy\n"


def test_a_destructive_plan_opens_a_two_person_gate_that_says_why(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    env = console_env(tmp_path)
    run = console_process("run", str(WORKFLOWS / "release.toml"), "-p", "version=3.0.1",
                          "-p", "destroy=3", "--no-tui", "--audit", str(audit), env=env)
    opened = wait_for_record(audit, "gate.opened", "infra-apply")
    assert opened["data"]["approvals_required"] == 2
    evaluated = _of(records(audit), "gate.evaluated", "infra-apply")[0]["data"]["decision"]
    rule = evaluated["rules"][0]
    assert rule["name"] == "destructive plans need two people"
    assert "`int(steps[\"infra-plan\"].outputs.destroy_count) > 0` is true" in rule["reason"]
    assert _of(records(audit), "step.finished", "infra-plan")[0]["data"]["outputs"][
        "destroy_count"] == "3"
    cancel = subprocess.run([sys.executable, "-m", "console", "cancel", opened["run"]],
                            env=env, capture_output=True, text=True, timeout=30)
    assert cancel.returncode == 0, cancel.stderr
    assert run.wait(60) == EXIT_CODES["cancelled"]


BAD_OUTPUTS = {
    "undeclared": ("echo image=x >> $CONSOLE_OUTPUT; echo tag=y >> $CONSOLE_OUTPUT",
                   "line 2: `tag` is not a declared output (declared: image)"),
    "too big": ("head -c 2097152 /dev/zero | tr '\\\\0' a | sed 's/^/image=/' > $CONSOLE_OUTPUT",
                "holds 2.0 MiB; the limit is 1 MiB"),
    "binary": ("printf 'image=\\\\377\\\\376\\\\n' > $CONSOLE_OUTPUT", "line 1: not UTF-8 text"),
    "missing": ("echo nothing", "declared output `image` not written"),
    "unterminated": ("printf 'image<<END\\\\nline\\\\n' > $CONSOLE_OUTPUT",
                     "line 1: `image<<END` is never closed"),
    "malformed": ("echo 'just words' > $CONSOLE_OUTPUT", "line 1: 'just words' is not"),
}


@pytest.mark.parametrize("case", sorted(BAD_OUTPUTS))
def test_a_bad_outputs_file_fails_the_step_and_nothing_else(tmp_path: Path, case: str) -> None:
    script, message = BAD_OUTPUTS[case]
    done, recs = _run(tmp_path, f"""
        [workflow]
        name = "bad-{case.replace(' ', '-')}"
        [steps.build]
        run = "{script}"
        outputs = ["image"]
        [steps.other]
        run = "echo fine"
        [steps.deploy]
        needs = ["build"]
        run = ["echo", "{{{{ steps.build.outputs.image }}}}"]
        """)
    assert done.returncode == 1, done.stdout + done.stderr
    build = _of(recs, "step.finished", "build")[0]["data"]
    assert build["outcome"] == "failed" and message in build["error"], build["error"]
    assert "outputs" not in build
    assert _of(recs, "step.finished", "other")[0]["data"]["outcome"] == "succeeded"
    assert _of(recs, "step.skipped", "deploy")
    assert _of(recs, "run.finished")[0]["data"]["outcome"] == "failed"
    verify = subprocess.run([sys.executable, "-m", "console", "audit", "verify",
                             str(tmp_path / "audit.jsonl")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout


def test_resume_reuses_build_and_hands_its_outputs_on(tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    workflow = f"""
        [workflow]
        name = "resume-outputs"
        [steps.build]
        run = 'echo "image=app:$(date +%s%N)" >> "$CONSOLE_OUTPUT"'
        outputs = ["image"]
        [steps.deploy]
        needs = ["build"]
        run = ["sh", "-c", 'test -e {flag} && echo "deploy $1"', "deploy",
               "{{{{ steps.build.outputs.image }}}}"]
        """
    done, recs = _run(tmp_path, workflow)
    assert done.returncode == 1
    image = _of(recs, "step.finished", "build")[0]["data"]["outputs"]["image"]
    run_id = recs[0]["run"]
    flag.touch()
    done, recs = _run(tmp_path, workflow, "--resume", run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    new = [r for r in recs if r["run"] != run_id]
    reused = _of(new, "step.reused", "build")[0]["data"]
    assert reused["outputs"] == {"image": image}
    deploy = _of(new, "step.finished", "deploy")[0]["data"]
    assert Path(deploy["log_path"]).read_text() == f"deploy {image}\n"


def test_a_matrix_with_waves_honours_the_budget_and_records_each_combination(
    tmp_path: Path,
) -> None:
    done, recs = _run(tmp_path, """
        [workflow]
        name = "matrix"
        [steps.deploy]
        run = '[ "$MATRIX_REGION/$MATRIX_TIER" != "us/db" ] || exit 4'
        matrix = { region = ["eu", "us", "ap"], tier = ["web", "db"] }
        strategy = { waves = [1, "100%"], max_failures = 1 }
        [steps.after]
        needs = ["deploy"]
        run = "true"
        """)
    assert done.returncode == 0, done.stdout + done.stderr
    keys = [f"region={r},tier={t}" for r in ("eu", "us", "ap") for t in ("web", "db")]
    waves = [w["data"]["hosts"] for w in _of(recs, "wave.started", "deploy")]
    assert waves == [keys[:1], keys[1:]]
    for key in keys:
        started = _of(recs, "step.started", f"deploy[{key}]")[0]["data"]
        region, tier = (part.split("=")[1] for part in key.split(","))
        assert started["matrix"] == {"region": region, "tier": tier}
    failed = [r["step"] for r in _of(recs, "step.finished") if r["data"]["outcome"] == "failed"]
    assert failed == ["deploy[region=us,tier=db]"]
    group = _of(recs, "group.finished", "deploy")[0]["data"]
    assert (group["outcome"], group["failed"]) == ("succeeded", 1)
    assert "of 6 combinations" in group["summary"]
    # Over the budget the second wave's failures fail the step.
    over = tmp_path / "over"
    over.mkdir()
    done, recs = _run(over, """
        [workflow]
        name = "matrix-over"
        [steps.deploy]
        run = '[ "$MATRIX_TIER" != db ] || exit 4'
        matrix = { region = ["eu", "us", "ap"], tier = ["web", "db"] }
        strategy = { waves = [1, "100%"], max_failures = 1 }
        """)
    assert done.returncode == 1
    assert _of(recs, "group.finished", "deploy")[0]["data"]["outcome"] == "failed"


def test_a_secret_output_never_reaches_a_log_the_audit_or_ps(tmp_path: Path) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    marker = f"m{uuid.uuid4().hex}"
    gate = tmp_path / "go"
    path = tmp_path / "wf.toml"
    path.write_text(textwrap.dedent(f"""
        [workflow]
        name = "secret-output"
        [steps.mint]
        run = 'echo "token=$MINTED_ELSEWHERE" >> "$CONSOLE_OUTPUT"'
        outputs = {{ token = {{ secret = true }} }}
        [steps.use]
        needs = ["mint"]
        run = 'echo "using $TOKEN"; while [ ! -e {gate} ]; do sleep 0.05; done'
        env = {{ TOKEN = "{{{{ steps.mint.outputs.token }}}}", MARKER = "{marker}" }}
        """))
    audit = tmp_path / "audit.jsonl"
    # The token comes from where the step finds it, never from the workflow's text.
    run = console_process("run", str(path), "--no-tui", "--audit", str(audit),
                          env=console_env(tmp_path, MINTED_ELSEWHERE=token))
    wait_for_record(audit, "step.started", "use")
    wait_for("the step running", lambda: processes_with(marker, True))
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert token not in ps
    gate.touch()
    assert run.wait(60) == 0
    recs = records(audit)
    mint = _of(recs, "step.finished", "mint")[0]["data"]
    assert mint["outputs"] == {"token": "***"}
    assert mint["output_hashes"] == {"token": hashlib.sha256(token.encode()).hexdigest()}
    assert token not in audit.read_text()
    use_log = Path(_of(recs, "step.finished", "use")[0]["data"]["log_path"]).read_text()
    assert use_log == "using ***\n"
    assert token not in (run.stdout.read() if run.stdout else "")


def test_the_fold_counts_a_group_step_s_instances_by_status(tmp_path: Path) -> None:
    from console.events import event_from_json
    from console.run.state import RunState

    done, recs = _run(tmp_path, """
        [workflow]
        name = "counts"
        [steps.deploy]
        run = '[ "$MATRIX_N" != 3 ] || exit 1'
        matrix = { n = [1, 2, 3, 4] }
        strategy = { max_failures = 1 }
        """)
    assert done.returncode == 0, done.stderr
    state = RunState()
    seen = []
    for record in recs:
        state.apply(event_from_json(record))
        counts = state.steps["deploy"].instance_counts
        assert counts is not None and sum(counts.values()) == 4
        seen.append({k: v for k, v in counts.items() if v})
    assert seen[0] == {"pending": 4}
    assert seen[-1] == {"succeeded": 3, "failed": 1}
    assert any(c.get("running") for c in seen)
