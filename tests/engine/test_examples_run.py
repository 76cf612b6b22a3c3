"""The shipped examples run headless end to end through the real CLI, gates approved over
the control socket by `console approve` as another engineer would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import own_workflows


def _gates_opened(audit: Path) -> list[dict[str, object]]:
    if not audit.exists():
        return []
    records = [json.loads(line) for line in audit.read_text().splitlines() if line.endswith("}")]
    return [r for r in records if r["type"] == "gate.opened"]


@pytest.mark.parametrize(
    ("name", "params", "gates"),
    [
        ("demo.toml", [], ["release"]),
        ("bluegreen.toml", ["-p", "version=1.4.2"], ["switch-traffic"]),
        ("db-migration.toml", ["-p", "version=2.0.0"], []),
    ],
)
def test_example_runs_headless_with_its_gates_approved(
    tmp_path: Path, name: str, params: list[str], gates: list[str]
) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    audit = tmp_path / "state" / "console" / "audit.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console",
            "run",
            str(own_workflows(tmp_path) / name),
            "--no-tui",
            *params,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    approved: list[str] = []
    deadline = time.monotonic() + 90
    while proc.poll() is None and time.monotonic() < deadline:
        for gate in _gates_opened(audit):
            step = str(gate["step"])
            if step not in approved:
                answer = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "console",
                        "approve",
                        str(gate["run"]),
                        step,
                        "--reason",
                        "reviewed",
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                assert answer.returncode == 0, answer.stdout + answer.stderr
                approved.append(step)
        time.sleep(0.1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert approved == gates
    assert re.search(r"audit head \(.*\), keep it to prove the trail later:\n  \d+:[0-9a-f]{64}\n",
                     out), out
    for gate in gates:
        assert "console approve" in out and gate in out
