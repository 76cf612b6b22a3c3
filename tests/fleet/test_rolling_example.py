"""The shipped rolling example, as README says to try it: local-fleet.sh, then the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import WORKFLOWS, own_workflows
from ..engine.cli_runs import console_env, console_process, records, wait_for
from ..sshd import sshd_available
from .test_waves import _of


@pytest.mark.skipif(not sshd_available(), reason="OpenSSH's sshd is not installed")
def test_rolling_example_runs_against_the_local_fleet_script(tmp_path: Path) -> None:
    env = console_env(tmp_path, HOME=str(tmp_path / "home"))
    script = WORKFLOWS / "scripts" / "local-fleet.sh"
    started = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    try:
        audit = tmp_path / "audit.jsonl"
        rolling = own_workflows(tmp_path) / "rolling.toml"  # a lock of its own
        run = console_process("run", str(rolling), "-p", "version=2.1.0",
                              "--no-tui", "--audit", str(audit), env=env)
        for gates in (1, 2):  # before the second and the third wave
            wait_for(f"gate {gates}", lambda n=gates: len(_of(records(audit), "gate.opened")) == n,
                     60)
            run_id = records(audit)[0]["run"]
            status = subprocess.run([sys.executable, "-m", "console", "--audit", str(audit),
                                     "status"], env=env, capture_output=True, text=True)
            assert f"deploy: awaiting approval 0/1 for wave {gates + 1}/3" in status.stdout, \
                status.stdout + status.stderr
            approved = subprocess.run([sys.executable, "-m", "console", "approve", run_id,
                                       "deploy"], env=env, capture_output=True, text=True)
            assert approved.returncode == 0, approved.stderr
        assert run.wait(120) == 0, run.stderr.read() if run.stderr else ""
        recs = records(audit)
        assert [len(w["data"]["hosts"]) for w in _of(recs, "wave.started", "deploy")] == [1, 3, 6]
        assert len(_of(recs, "step.finished")) == 1 + 10 + 10 + 1
    finally:
        subprocess.run([str(script), "stop"], env=env, capture_output=True, timeout=30)
