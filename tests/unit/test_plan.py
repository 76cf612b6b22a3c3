"""`console plan` as a real subprocess: order, commands, masking, decisions, --as."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

import pytest

from console.commands.plan import mask_secret_references
from tests.conftest import REPO, WORKFLOWS

DEPLOY = """
[workflow]
name = "payments-deploy"

[params]
version = { type = "string" }
env = { type = "choice", choices = ["staging", "prod"], default = "staging" }
token = { type = "string", secret = true, default = "tok-very-secret" }

[steps.switch]
needs = ["migrate"]
run = ["./switch-traffic.sh", "green"]
tags = ["prod"]

[steps.migrate]
needs = ["build"]
run = "alembic upgrade head"
env = { DATABASE_URL = "postgres://app:${secret:PAYMENTS_DB_PW}@db/payments" }
tags = ["prod", "db"]
approval = { approvers = ["@dba"], reason = true, timeout = "10m" }

[steps.build]
run = ["make", "build", "VERSION={{ params.version }}"]

[[policy]]
name = "prod needs two people"
match = { tags = ["prod"] }
effect = "require_approval"
approvals = 2
approvers = ["@sre", "@release"]
separation_of_duties = true
timeout = "30m"

[[policy]]
name = "switching is frozen"
match = { steps = ["sw*"] }
effect = "deny"
level = "soft"
override_by = ["@release"]

[[policy]]
name = "only release builds reach prod"
effect = "deny"
when = 'params.env == "prod" && !params.version.matches("^[0-9]+[.][0-9]+[.][0-9]+$")'

[[policy]]
name = "heads up"
match = { tags = ["db"] }
effect = "deny"
level = "advisory"
"""


def plan(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "PAYMENTS_DB_PW": "hunter2-db-password"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "console", "plan", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def deploy(tmp_path: Path) -> Path:
    path = tmp_path / "deploy.toml"
    path.write_text(DEPLOY)
    return path


def step_titles(stdout: str) -> list[str]:
    return re.findall(r"^\d+\. (\S+)", stdout, flags=re.MULTILINE)


def test_steps_in_dependency_order_with_commands_and_decisions(deploy: Path) -> None:
    out = plan(str(deploy), "-p", "version=1.4.2", "-p", "env=prod")
    assert out.returncode == 0, out.stderr
    assert step_titles(out.stdout) == ["build", "migrate", "switch"]
    text = out.stdout
    assert "runs     make build VERSION=1.4.2" in text
    assert "script   alembic upgrade head" in text
    flat = " ".join(text.split())
    assert "env DATABASE_URL=postgres://app:***@db/payments (secret PAYMENTS_DB_PW)" in flat
    assert "gate     needs 2 approvals (@sre, @release, @dba), 1 warning" in text
    assert "gate     denied by 'switching is frozen' (soft)" in text
    assert "why: step has id 'switch' matching 'sw*'" in text
    assert "warning  advisory 'heads up' would deny this step: step has tag 'db'" in text
    assert "steps    3: 1 allowed, 1 need approval, 1 denied" in text


def test_no_secret_value_ever_appears(deploy: Path) -> None:
    out = plan(str(deploy), "-p", "version=1.4.2")
    assert "tok-very-secret" not in out.stdout
    assert "hunter2-db-password" not in out.stdout
    assert "token=***" in out.stdout


def test_condition_denies_a_non_release_version(deploy: Path) -> None:
    out = plan(str(deploy), "-p", "version=nightly", "-p", "env=prod")
    assert out.returncode == 0, out.stderr
    assert "gate     denied by 'only release builds reach prod' (hard)" in out.stdout
    assert "steps    3: 0 allowed, 0 need approval, 3 denied" in out.stdout


def test_as_the_initiator_shows_separation_of_duties(deploy: Path) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    out = plan(str(deploy), "-p", "version=1.4.2", "--as", me)
    flat = " ".join(out.stdout.split())
    assert (f"as {me} cannot approve: you started this run; policy 'prod needs two people' "
            "requires someone else") in flat
    assert ("cannot override: you cannot override policy 'switching is frozen': only "
            "@release may") in flat


def test_as_someone_else_outside_the_groups(deploy: Path) -> None:
    other = next((p.pw_name for p in pwd.getpwall() if p.pw_uid != os.getuid()), None)
    if other is None:
        pytest.skip("this host has a single user")
    out = plan(str(deploy), "-p", "version=1.4.2", "--as", other)
    flat = " ".join(out.stdout.split())
    assert (f"as {other} cannot approve: you are not in @sre or @release "
            "(policy 'prod needs two people')") in flat


def test_unknown_user_and_missing_param_are_plain_errors(deploy: Path) -> None:
    unknown = plan(str(deploy), "-p", "version=1.4.2", "--as", "no-such-user-xyz")
    assert unknown.returncode == 2
    assert unknown.stderr == ("console: there is no user 'no-such-user-xyz' on this host — "
                              "give a login name from /etc/passwd\n")
    missing = plan(str(deploy))
    assert missing.returncode == 1
    assert "missing param `version`" in missing.stderr
    assert "Traceback" not in missing.stderr + unknown.stderr


def test_plain_and_80_columns_when_not_a_terminal(deploy: Path) -> None:
    out = plan(str(deploy), "-p", "version=nightly", "-p", "env=prod", "--as", "root")
    assert "\x1b[" not in out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    assert all(line == line.rstrip() for line in out.stdout.splitlines())


def test_the_demo_workflow() -> None:
    demo = WORKFLOWS / "demo.toml"
    if not demo.exists():
        pytest.skip("workflows/demo.toml is not in this checkout")
    out = plan("workflows/demo.toml", "--as", "root")
    assert out.returncode == 0, out.stderr
    assert step_titles(out.stdout)[0] == "checkout"
    assert "needs 1 approval" in out.stdout


def test_mask_secret_references() -> None:
    assert mask_secret_references("${secret:A}:${secret:B}") == "***:***  (secret A, B)"
    assert mask_secret_references("plain") == "plain"
