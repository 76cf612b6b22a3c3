"""A run of bytes validated before starts from the kept plan, without pydantic; anything
new, changed, corrupt or not the user's own is validated again."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from console.errors import ParamError, WorkflowError
from console.workflow import loader, model, plan_cache
from console.workflow.loaded import LoadedWorkflow
from console.workflow.loader import load_workflow
from console.workflow.params import resolve_params
from console.workflow.plan_cache import load_for_run, plans_dir

WORKFLOW = """\
[workflow]
name = "deploy"
policies = ["prod.toml"]
inventory = "hosts.toml"

[params]
version = { type = "string", pattern = '^\\d+\\.\\d+\\.\\d+$' }

[steps.build]
run = ["make", "VERSION={{ params.version }}"]
timeout = "1h30m"
retry = { attempts = 3, delay = "2s", backoff = 2.0 }
matrix = { arch = ["amd64", "arm64"] }

[steps.ship]
needs = ["build"]
on = "@web"
run = "echo $PARAM_VERSION"
tags = ["prod"]
strategy = { waves = [1, "50%"], max_failures = "10%" }

[steps.announce]
needs = ["ship"]
run = "echo url=x >> $CONSOLE_OUTPUT"
outputs = { url = { secret = true } }
approval = { approvers = ["@sre"], reason = true }

[[policy]]
name = "prod needs approval"
match = { tags = ["prod"] }
effect = "require_approval"
during = { weekdays = ["Fri"], from = "15:00", to = "23:59", tz = "Europe/Berlin" }
"""

POLICY = """\
[[policy]]
name = "release builds only"
effect = "deny"
when = '!params.version.matches("^[0-9]+[.][0-9]+[.][0-9]+$")'
"""

HOSTS = """\
known_hosts = "known_hosts"
[hosts.web-01]
address = "10.0.0.1"
groups = ["web"]
[hosts.web-02]
address = "10.0.0.2"
groups = ["web"]
identity = "~/.ssh/deploy"
"""


def write_workflow_files(directory: Path) -> Path:
    """The workflow above with its shared policy and inventory files; its path."""
    (directory / "prod.toml").write_text(POLICY)
    (directory / "hosts.toml").write_text(HOSTS)
    path = directory / "workflow.toml"
    path.write_text(WORKFLOW)
    return path


def count_validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each full validation done in this process from now on, by path."""
    seen: list[str] = []
    real = loader.validate_workflow

    def counting(path: str | Path) -> Any:
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(loader, "validate_workflow", counting)
    return seen


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    return write_workflow_files(tmp_path)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each full validation load_for_run asks for, by path."""
    return count_validations(monkeypatch)


def comparable(loaded: LoadedWorkflow) -> tuple[object, ...]:
    rules = [(r.rule, r.origin, r.condition.source if r.condition else None)
             for r in loaded.rules]
    return (loaded.path, loaded.model, rules, dict(loaded.file_hashes), loaded.inventory,
            dict(loaded.targets), dict(loaded.matrices))


def only_plan() -> Path:
    (plan,) = plans_dir().glob("*.json")
    return plan


def test_a_second_run_uses_the_kept_plan_and_gets_what_validation_gives(
    workflow: Path, validations: list[str]
) -> None:
    first = load_for_run(workflow)
    second = load_for_run(workflow)
    assert validations == [str(workflow)]
    assert comparable(second) == comparable(first) == comparable(load_workflow(workflow))
    assert second.targets == {"ship": ("web-01", "web-02")}
    condition = second.rules[0].condition
    assert condition is not None and condition.evaluate({"params": {"version": "v1"}})
    assert os.stat(plans_dir()).st_mode & 0o777 == 0o700
    assert os.stat(only_plan()).st_mode & 0o777 == 0o600


def test_changed_bytes_are_validated_again(workflow: Path, validations: list[str]) -> None:
    load_for_run(workflow)
    workflow.write_text(WORKFLOW.replace('timeout = "1h30m"', 'timeout = "soon"'))
    with pytest.raises(WorkflowError, match="not a duration"):
        load_for_run(workflow)
    assert len(validations) == 2


@pytest.mark.parametrize("name, text, error", [
    ("prod.toml", POLICY.replace('effect = "deny"', 'effect = "maybe"'), "effect"),
    ("hosts.toml", HOSTS.replace('"10.0.0.2"', '"not an address!"'), "neither an IP"),
])
def test_a_changed_shared_file_is_validated_again(
    workflow: Path, validations: list[str], name: str, text: str, error: str
) -> None:
    load_for_run(workflow)
    (workflow.parent / name).write_text(text)
    with pytest.raises(WorkflowError, match=error):
        load_for_run(workflow)
    (workflow.parent / name).unlink()
    with pytest.raises(WorkflowError, match="not found"):
        load_for_run(workflow)
    assert len(validations) == 3


def test_params_are_checked_on_every_run(workflow: Path) -> None:
    load_for_run(workflow)
    kept = load_for_run(workflow)
    assert resolve_params(kept, {"version": "1.2.3"}) == {"version": "1.2.3"}
    with pytest.raises(ParamError, match="does not match the pattern"):
        resolve_params(kept, {"version": "latest"})


def test_a_time_zone_gone_from_the_system_is_validated_again(
    workflow: Path, validations: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    load_for_run(workflow)
    real = zoneinfo.ZoneInfo

    def without_berlin(key: str) -> zoneinfo.ZoneInfo:
        if key == "Europe/Berlin":
            raise zoneinfo.ZoneInfoNotFoundError(key)
        return real(key)

    monkeypatch.setattr(zoneinfo, "ZoneInfo", without_berlin)
    monkeypatch.setattr(model, "ZoneInfo", without_berlin)
    with pytest.raises(WorkflowError, match="not an IANA time zone"):
        load_for_run(workflow)
    assert len(validations) == 2


def test_a_corrupt_plan_is_ignored_and_replaced(workflow: Path, validations: list[str]) -> None:
    load_for_run(workflow)
    plan = only_plan()
    good = plan.read_bytes()
    plan.write_bytes(good.replace(b'"make"', b'"rm -rf /"'))
    assert load_for_run(workflow).steps["build"].run[0] == "make"
    plan.write_bytes(good[: len(good) // 2])
    assert load_for_run(workflow).steps["build"].run[0] == "make"
    plan.write_bytes(b"")
    assert load_for_run(workflow).steps["build"].run[0] == "make"
    assert len(validations) == 4
    assert plan.read_bytes() == good


def test_a_plan_of_another_format_is_ignored(workflow: Path, validations: list[str]) -> None:
    load_for_run(workflow)
    plan = only_plan()
    _, _, body = plan.read_bytes().partition(b"\n")
    data = json.loads(body)
    data["workflow"] = {"steps": "not a table"}
    forged = json.dumps(data).encode()
    plan.write_bytes(hashlib.sha256(forged).hexdigest().encode() + b"\n" + forged)
    assert load_for_run(workflow).steps["build"].run[0] == "make"
    assert len(validations) == 2


def test_a_plan_others_may_write_is_ignored(workflow: Path, validations: list[str]) -> None:
    load_for_run(workflow)
    only_plan().chmod(0o666)
    load_for_run(workflow)
    plans_dir().chmod(0o755)
    load_for_run(workflow)
    assert len(validations) == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_plan_someone_else_owns_is_ignored(workflow: Path, validations: list[str]) -> None:
    load_for_run(workflow)
    os.chown(only_plan(), 65534, 65534)
    load_for_run(workflow)
    assert len(validations) == 2


def test_a_plan_from_other_validating_code_is_ignored(
    workflow: Path, validations: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validator = tmp_path / "validator.py"
    validator.write_text("# version 1\n")
    stat = validator.stat()
    monkeypatch.setattr(plan_cache, "_validator_files",
                        lambda: [[str(validator), stat.st_size, stat.st_mtime_ns]])
    load_for_run(workflow)
    load_for_run(workflow)
    validator.write_text("# version 2, longer\n")
    load_for_run(workflow)
    assert len(validations) == 2


def test_a_state_dir_that_cannot_keep_plans_changes_nothing(
    workflow: Path, validations: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked))
    assert load_for_run(workflow).steps["build"].run[0] == "make"
    assert load_for_run(workflow).name == "deploy"
    assert len(validations) == 2


def test_a_run_imports_no_pydantic_kept_plan_or_new_bytes(workflow: Path, tmp_path: Path) -> None:
    simple = tmp_path / "simple.toml"
    simple.write_text('[workflow]\nname = "one"\n[steps.only]\nrun = ["true"]\n')
    code = (
        "import sys\nfrom console.cli import main\n"
        f"code = main(['run', {str(simple)!r}, '--no-tui'])\n"
        "print(code, 'pydantic' in sys.modules, file=sys.stderr)\n"
    )

    def run() -> str:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=os.environ, check=True, timeout=60)
        return done.stderr.strip().splitlines()[-1]

    assert run() == "0 False"  # new bytes: validated in a child (workflow/validate_aside.py)
    assert only_plan().exists()
    assert run() == "0 False"


def test_a_temporary_plan_left_by_a_killed_writer_goes_in_time(workflow: Path) -> None:
    """A writer killed mid-write (Ctrl-C during the child's validation) leaves its temporary
    file; the next plan kept removes it once it is stale, never one being written now."""
    plans_dir().mkdir(parents=True, mode=0o700, exist_ok=True)
    left = plans_dir() / ".abc.json.4242.tmp"
    left.write_bytes(b"half a plan")
    stale = time.time() - plan_cache.STALE_TEMPORARY_S - 1
    os.utime(left, (stale, stale))
    fresh = plans_dir() / ".def.json.4343.tmp"
    fresh.write_bytes(b"being written")
    load_for_run(workflow)
    assert not left.exists() and fresh.exists()
