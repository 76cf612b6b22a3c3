"""The foundation commands as a person runs them: real `python -m console` subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, WORKFLOWS


def console(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def test_validate_reports_ok_per_file_and_exits_0() -> None:
    done = console("validate", str(WORKFLOWS / "demo.toml"), str(WORKFLOWS / "bluegreen.toml"))
    assert done.returncode == 0, done.stderr
    assert f"{WORKFLOWS / 'demo.toml'}: ok (8 steps, 0 policies)" in done.stdout
    assert f"{WORKFLOWS / 'bluegreen.toml'}: ok (10 steps, 3 policies)" in done.stdout


def test_validate_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[workflow]\nname = "x"\n[steps.a]\nrnu = "x"\nneeds = ["b"]\n')
    done = console("validate", "bad.toml", str(WORKFLOWS / "demo.toml"), cwd=tmp_path)
    assert done.returncode == 1
    assert "bad.toml:3:1: steps.a: missing `run`" in done.stderr
    assert "bad.toml:4:1: steps.a.rnu: unknown key `rnu` — did you mean `run`?" in done.stderr
    assert "bad.toml:5:10: steps.a.needs[0]: no step named `b`" in done.stderr
    assert "1 of 2 files invalid" in done.stderr
    assert "demo.toml: ok" in done.stdout
    assert "Traceback" not in done.stderr


def test_validate_without_files_is_a_usage_error() -> None:
    done = console("validate")
    assert done.returncode == 2
    assert "the following arguments are required: FILE" in done.stderr


def test_validate_a_missing_file(tmp_path: Path) -> None:
    done = console("validate", "nope.toml", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("nope.toml: no such file — check the path")


def test_graph_draws_layers_gates_and_fits_80_columns() -> None:
    done = console("graph", str(WORKFLOWS / "bluegreen.toml"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "payments-bluegreen — 10 steps in 8 layers"
    assert any(line.startswith("L1 build") for line in lines)
    assert any("switch-traffic ◆ ✖" in line and "← smoke-green" in line for line in lines)
    assert any("◆ needs approval: prod needs two people ×2" in line for line in lines)
    assert any("✖ may deny: Friday freeze, soft" in line for line in lines)
    assert all(len(line) <= 80 for line in lines)


def thirty_step_workflow(path: Path, count: int) -> Path:
    parts = ['[workflow]\nname = "wide"\n']
    for i in range(count):
        needs = [f"s{j}" for j in range(max(0, i - 3), i) if j % 2 == i % 2]
        parts.append(f'[steps.s{i}]\nrun = "true"\nneeds = {json.dumps(needs)}\n')
    parts.append('[steps.gate]\nrun = "true"\napproval = { approvals = 1 }\n')
    path.write_text("".join(parts))
    return path


def test_graph_of_thirty_steps_stays_within_80_columns(tmp_path: Path) -> None:
    path = thirty_step_workflow(tmp_path / "wide.toml", 30)
    done = console("graph", str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert any("gate ◆" in line for line in lines)
    assert "(compact)" not in lines[0]


def test_graph_turns_compact_for_large_dags_and_on_request(tmp_path: Path) -> None:
    path = thirty_step_workflow(tmp_path / "big.toml", 200)
    done = console("graph", str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("(compact)")
    assert len(lines) < 120
    assert all(len(line) <= 80 for line in lines)
    assert any("◆ 1 gated" in line for line in lines)
    done = console("graph", "--compact", str(WORKFLOWS / "demo.toml"))
    assert "(compact)" in done.stdout.splitlines()[0]


def test_graph_of_an_invalid_file_exits_1_with_the_problems(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[workflow]\nname = "x"\n[steps.a]\nrun = "x"\n'
                                       'needs = ["a"]\n')
    done = console("graph", "bad.toml", cwd=tmp_path)
    assert done.returncode == 1
    assert "console: bad.toml:5:10: steps.a.needs[0]: `a` needs itself" in done.stderr


def test_schema_is_json_schema_of_the_format() -> None:
    done = console("schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"workflow", "params", "steps", "policy", "hosts"}
    assert {"on", "strategy"} <= set(schema["$defs"]["Step"]["properties"])
    assert "if" in schema["$defs"]["Step"]["properties"]


def test_init_writes_a_starter_that_validates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    done = console("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "workflow.toml"
    text = written.read_text()
    assert text.startswith("# A starter workflow, written by `console init`.")
    assert "[[policy]]" in text and "#:schema" in text
    assert console("validate", "workflow.toml", cwd=tmp_path).returncode == 0
    again = console("init", cwd=tmp_path)
    assert again.returncode == 1
    assert "workflow.toml already exists" in again.stderr
    assert written.read_text() == text


def test_init_into_a_missing_directory(tmp_path: Path) -> None:
    done = console("init", "no/such/dir/wf.toml", cwd=tmp_path)
    assert done.returncode == 1
    assert "cannot write no/such/dir/wf.toml" in done.stderr
