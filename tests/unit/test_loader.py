"""A valid workflow loads into the model, its rules (shared first) and its file hashes."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from console.errors import ParamError
from console.workflow.loader import load_workflow
from console.workflow.locate import SourceMap
from console.workflow.params import resolve_params

WORKFLOW = """\
[workflow]
name = "deploy"
policies = ["policies/prod.toml"]

[params]
version = { type = "string", pattern = '^\\d+\\.\\d+\\.\\d+$' }
env = { type = "choice", choices = ["staging", "prod"], default = "staging" }
dry_run = { type = "bool", default = false }
batch = { type = "int", default = 100 }
note = { type = "string", required = false }

[steps.build]
run = ["make", "VERSION={{ params.version }}"]
timeout = "1h30m"
retry = { attempts = 3, delay = "2s", backoff = 2.0 }

[steps.ship]
needs = ["build"]
run = "echo $PARAM_VERSION"
env = { TOKEN = "${secret:SHIP_TOKEN}" }
tags = ["prod"]
if = "always"

[[policy]]
name = "own rule"
effect = "deny"
when = 'params.env == "prod" && step.id == "ship"'
"""

POLICY = """\
[[policy]]
name = "two people"
match = { tags = ["prod"] }
effect = "require_approval"
approvals = 2
approvers = ["@sre"]
separation_of_duties = true

[[policy]]
name = "freeze"
effect = "deny"
level = "soft"
override_by = ["@release"]
during = { weekdays = ["Fri"], from = "15:00", to = "23:59", tz = "Europe/Berlin" }
"""


@pytest.fixture
def workflow_file(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "prod.toml").write_text(POLICY)
    path = tmp_path / "deploy.toml"
    path.write_text(WORKFLOW)
    return path


def test_loads_the_model_and_keeps_file_order(workflow_file: Path) -> None:
    loaded = load_workflow(workflow_file)
    assert loaded.path == workflow_file
    assert loaded.name == "deploy"
    assert list(loaded.steps) == ["build", "ship"]
    build = loaded.steps["build"]
    assert build.timeout == 5400.0
    assert build.retry.attempts == 3 and build.retry.delay == 2.0
    assert loaded.steps["ship"].if_ == "always"
    assert loaded.steps["ship"].secret_names == ["SHIP_TOKEN"]


def test_rules_come_from_the_shared_file_first_with_compiled_conditions(
    workflow_file: Path,
) -> None:
    loaded = load_workflow(workflow_file)
    assert [r.rule.name for r in loaded.rules] == ["two people", "freeze", "own rule"]
    assert [r.origin for r in loaded.rules] == [
        workflow_file.parent / "policies" / "prod.toml"
    ] * 2 + [workflow_file]
    assert loaded.rules[0].condition is None
    condition = loaded.rules[2].condition
    assert condition is not None
    assert condition.evaluate({"params": {"env": "prod"}, "step": {"id": "ship"}}) is True
    assert condition.evaluate({"params": {"env": "staging"}, "step": {"id": "ship"}}) is False


def test_file_hashes_are_the_workflow_then_each_policy_file(workflow_file: Path) -> None:
    loaded = load_workflow(workflow_file)
    policy = workflow_file.parent / "policies" / "prod.toml"
    assert list(loaded.file_hashes) == [str(workflow_file), str(policy)]
    assert loaded.file_hashes[str(policy)] == hashlib.sha256(policy.read_bytes()).hexdigest()
    assert loaded.file_hashes[str(workflow_file)] == hashlib.sha256(
        workflow_file.read_bytes()
    ).hexdigest()


def test_a_relative_path_is_made_absolute(workflow_file: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workflow_file.parent)
    loaded = load_workflow("deploy.toml")
    assert loaded.path == workflow_file and loaded.path.is_absolute()


def test_a_utf8_bom_and_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "wf.toml"
    path.write_bytes(b'\xef\xbb\xbf[workflow]\r\nname = "t"\r\n[steps.a]\r\nrun = "x"\r\n')
    assert list(load_workflow(path).steps) == ["a"]


def test_resolve_params_fills_defaults_and_coerces(workflow_file: Path) -> None:
    loaded = load_workflow(workflow_file)
    values = resolve_params(loaded.model, {"version": "1.2.3", "dry_run": "yes", "batch": "7"})
    assert values == {"version": "1.2.3", "env": "staging", "dry_run": True, "batch": 7}
    assert resolve_params(loaded, {"version": "1.2.3", "note": "hi"})["note"] == "hi"


def test_resolve_params_lists_every_problem_with_its_fix(workflow_file: Path) -> None:
    loaded = load_workflow(workflow_file)
    with pytest.raises(ParamError) as caught:
        resolve_params(loaded.model, {"verison": "1.2.3", "env": "qa", "batch": "many"})
    lines = caught.value.message.splitlines()
    assert "-p verison=1.2.3: unknown param `verison` — did you mean `version`?" in lines
    assert any(line.startswith("-p env=qa: 'qa' is not one of staging, prod") for line in lines)
    assert any(line.startswith("-p batch=many: 'many' is not an int — use a whole number")
               for line in lines)
    assert any(line.startswith("missing param `version` (a string matching") and
               line.endswith("— pass -p version=VALUE") for line in lines)
    assert caught.value.exit_code == 1


def test_resolve_params_pattern_mismatch(workflow_file: Path) -> None:
    loaded = load_workflow(workflow_file)
    with pytest.raises(ParamError) as caught:
        resolve_params(loaded.model, {"version": "v1"})
    assert caught.value.message.startswith("-p version=v1: 'v1' does not match the pattern")
    assert r"does not match the pattern ^\d+\.\d+\.\d+$ " in caught.value.message


def test_source_map_finds_keys_tables_inline_tables_and_array_tables() -> None:
    text = textwrap.dedent("""\
        [workflow]
        name = "x"
        [steps.build]
        retry = { attempts = 3, delay = "2s" }
        steps.extra = 1
        [[policy]]
        name = "a"
        [[policy]]
        name = "b"
        [policy.match]
        tags = ["prod", "db"]
        """)
    source = SourceMap(text)
    name = source.position(("workflow", "name"))
    assert (name.line, name.column) == (2, 1)
    delay = source.position(("steps", "build", "retry", "delay"))
    assert (delay.line, delay.column) == (4, 25)
    dotted = source.position(("steps", "build", "steps", "extra"))
    assert (dotted.line, dotted.column) == (5, 7)
    second = source.position(("policy", 1, "name"))
    assert (second.line, second.column) == (9, 1)
    tag = source.position(("policy", 1, "match", "tags", 1), prefer_value=True)
    assert (tag.line, tag.column) == (11, 17)
    unknown = source.position(("steps", "build", "nope"))
    assert (unknown.line, unknown.column) == (3, 1)
