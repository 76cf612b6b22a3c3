"""A secret param templated into a list-form run would sit in argv, which `ps` shows to every
local user: the loader refuses it, at the element, and says how to pass the value instead."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from console.errors import WorkflowError
from console.workflow.loader import load_workflow
from tests.conftest import REPO, WORKFLOWS

LEAKY = """\
[workflow]
name = "leaky"

[params]
token = { type = "string", secret = true }
region = { type = "string", default = "eu" }

[steps.deploy]
run = ["curl", "-H", "Authorization: Bearer {{ params.token }}", "https://{{ params.region }}"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wf.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    return list(caught.value.problems)


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", "validate", *map(str, paths)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_console_validate_refuses_a_secret_param_in_a_list_run(tmp_path: Path) -> None:
    path = write(tmp_path, LEAKY)
    done = validate(path)
    assert done.returncode == 1
    # Line 9, the third element of run: where "Authorization: …" starts.
    assert f"{path}:9:22: steps.deploy.run[2]: " in done.stderr
    assert "`{{ params.token }}` puts the secret param `token` on the command line" in done.stderr
    assert "`ps` shows it to every local user" in done.stderr
    assert '"$PARAM_TOKEN" in a string-form run' in done.stderr
    assert "through env" in done.stderr
    assert "region" not in done.stderr  # a plain param templated into argv is fine


def test_every_element_with_the_secret_is_reported(tmp_path: Path) -> None:
    found = problems(write(tmp_path, """\
        [workflow]
        name = "t"
        [params]
        pw = { type = "string", secret = true, default = "x" }
        [steps.a]
        run = ["tool", "--user=bob", "--pw={{ params.pw }}", "{{params.pw}}"]
        [steps.b]
        needs = ["a"]
        run = ["{{ params.pw }}"]
        """))
    assert [m.split(": ", 2)[1] for m in found] == [
        "steps.a.run[2]", "steps.a.run[3]", "steps.b.run[0]"]
    assert all(m.startswith(f"{tmp_path / 'wf.toml'}:") for m in found)


def test_reported_with_the_other_problems_of_the_file(tmp_path: Path) -> None:
    found = problems(write(tmp_path, """\
        [workflow]
        name = "t"
        [params]
        pw = { type = "string", secret = true }
        [steps.a]
        run = ["tool", "{{ params.pw }}", "{{ params.nope }}"]
        timout = "5m"
        """))
    assert [m.split(": ", 2)[1] for m in found] == [
        "steps.a.run[1]", "steps.a.run[2]", "steps.a.timout"]
    assert "secret param `pw`" in found[0]
    assert "unknown param `nope`" in found[1]
    assert "did you mean `timeout`?" in found[2]


@pytest.mark.parametrize("step", [
    'run = "printf %s \\"$PARAM_PW\\" | tool --password-stdin"',  # the environment, via sh
    'run = ["tool", "--password-from-env=PARAM_PW"]',  # the program reads it itself
    'run = ["tool", "{{ params.user }}"]\nenv = { PW = "${secret:TOOL_PW}" }',
])
def test_secrets_passed_through_the_environment_load(tmp_path: Path, step: str) -> None:
    loaded = load_workflow(write(tmp_path, textwrap.dedent("""\
        [workflow]
        name = "t"
        [params]
        pw = { type = "string", secret = true, default = "x" }
        user = { type = "string", default = "bob" }
        [steps.a]
        """) + step + "\n"))
    assert list(loaded.steps) == ["a"]


def test_a_param_marked_secret_false_may_be_templated(tmp_path: Path) -> None:
    loaded = load_workflow(write(tmp_path, """\
        [workflow]
        name = "t"
        [params]
        version = { type = "string", secret = false, default = "1" }
        [steps.a]
        run = ["make", "VERSION={{ params.version }}"]
        """))
    assert list(loaded.steps) == ["a"]


def test_the_shipped_examples_still_validate() -> None:
    examples = sorted(p for p in WORKFLOWS.glob("*.toml") if p.name != "hosts.toml")
    assert examples
    done = validate(*examples)
    assert done.returncode == 0, done.stderr
