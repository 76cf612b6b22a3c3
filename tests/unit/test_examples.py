"""The shipped examples validate, and their scripts are portable, executable POSIX sh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from console.workflow.loader import load_workflow
from console.workflow.params import resolve_params
from tests.conftest import REPO, WORKFLOWS

EXAMPLES = sorted(p for p in WORKFLOWS.glob("*.toml") if p.name != "hosts.toml")
SCRIPTS = sorted((WORKFLOWS / "scripts").glob("*.sh"))
SOURCED = {"lib.sh"}  # read with `.` by the others, not run


def test_console_validate_passes_on_every_example() -> None:
    done = subprocess.run([sys.executable, "-m", "console", "validate",
                           *(str(p) for p in EXAMPLES)], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in EXAMPLES} >= {"demo.toml", "bluegreen.toml", "db-migration.toml"}


@pytest.mark.parametrize("name", ["bluegreen.toml", "db-migration.toml"])
def test_realistic_examples_share_the_prod_policy(name: str) -> None:
    loaded = load_workflow(WORKFLOWS / name)
    policy = WORKFLOWS / "policies" / "prod.toml"
    assert str(policy) in loaded.file_hashes
    names = [r.rule.name for r in loaded.rules if r.origin == policy]
    assert names == ["prod needs two people", "Friday freeze", "only release builds reach prod"]
    two = loaded.rules[0].rule
    assert two.approvals == 2 and two.separation_of_duties and two.approvers
    assert any("prod" in step.tags for step in loaded.steps.values())
    params = resolve_params(loaded, {"version": "1.4.2"})
    assert params["env"] == "staging"


def test_demo_has_parallel_branches_a_retry_a_gate_and_an_always_cleanup() -> None:
    loaded = load_workflow(WORKFLOWS / "demo.toml")
    steps = loaded.steps
    assert sum(1 for s in steps.values() if s.needs == ["checkout"]) >= 2
    assert any(s.retry.attempts > 1 for s in steps.values())
    assert any(s.approval is not None for s in steps.values())
    assert any(s.if_ == "always" for s in steps.values())


def test_the_flaky_demo_step_fails_exactly_on_its_first_attempt() -> None:
    run = load_workflow(WORKFLOWS / "demo.toml").steps["upload"].run
    assert isinstance(run, str)
    for attempt, expected in (("1", 1), ("2", 0), ("3", 0)):
        env = {**os.environ, "CONSOLE_ATTEMPT": attempt, "CONSOLE_RUN_ID": "t"}
        done = subprocess.run(["/bin/sh", "-c", run], env=env, capture_output=True, timeout=10)
        assert done.returncode == expected


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_executable_posix_sh(script: Path) -> None:
    if script.name not in SOURCED:
        assert script.stat().st_mode & 0o111
        assert script.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    assert subprocess.run(["/bin/sh", "-n", str(script)], timeout=10).returncode == 0
    if shutil.which("dash"):
        assert subprocess.run(["dash", "-n", str(script)], timeout=10).returncode == 0


def test_the_migration_scripts_work_in_a_scratch_directory(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "CONSOLE_RUN_ID": "t1"}
    scripts = WORKFLOWS / "scripts"
    for args in (["preflight", "staging"], ["backup"], ["migrate", "2.0.0"],
                 ["verify", "2.0.0"], ["backfill", "1000", "true"], ["restore"]):
        done = subprocess.run([str(scripts / "db.sh"), *args], env=env, capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
    schema = os.path.join(str(tmp_path), "console-demo-t1", "db", "schema.version")
    with open(schema, encoding="utf-8") as handle:
        assert handle.read().strip() == "0.9.0"
    subprocess.run([str(scripts / "cleanup.sh")], env=env, check=True, capture_output=True)
    assert not os.path.exists(os.path.join(str(tmp_path), "console-demo-t1"))
