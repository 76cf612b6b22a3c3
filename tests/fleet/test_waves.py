"""Rolling waves over real sshds: order, the fleet's failure budget, one record set per host."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from console.run.exit_codes import EXIT_CODES

from ..engine.cli_runs import console_env, records
from ..sshd import Fleet


def run_fleet(tmp_path: Path, fleet: Fleet, steps: str, *args: str,
              inventory: str | None = None, timeout: float = 120) -> tuple[
                  subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    (tmp_path / "hosts.toml").write_text(inventory or fleet.inventory())
    path = tmp_path / "fleet.toml"
    path.write_text('[workflow]\nname = "fleet"\ninventory = "hosts.toml"\n'
                    + textwrap.dedent(steps))
    audit = tmp_path / "audit.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "console", "run", str(path), "--no-tui", "--audit", str(audit),
         *args], env=console_env(tmp_path), capture_output=True, text=True, timeout=timeout)
    return done, records(audit)


def _of(recs: list[dict[str, Any]], kind: str, step: str | None = None) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == kind and (step is None or r.get("step") == step)]


def test_twenty_hosts_in_three_waves_with_one_failure_within_the_budget(
    tmp_path: Path, fleet: Fleet,
) -> None:
    done, recs = run_fleet(tmp_path, fleet, """
        [steps.deploy]
        run = 'echo "deploying on $CONSOLE_HOST"; [ "$CONSOLE_HOST" != web-07 ] || exit 3'
        on = "@web"
        strategy = { waves = [1, "25%", "100%"], max_failures = "10%" }
        [steps.smoke]
        needs = ["deploy"]
        run = "echo smoke"
        """)
    assert done.returncode == 0, done.stdout + done.stderr
    waves = _of(recs, "wave.started", "deploy")
    assert [len(w["data"]["hosts"]) for w in waves] == [1, 5, 14]
    assert [w["data"]["hosts"][0] for w in waves] == ["web-01", "web-02", "web-07"]
    for index, wave in enumerate(waves):
        # Every host of the earlier waves had finished before this wave started ...
        for earlier in waves[:index]:
            for host in earlier["data"]["hosts"]:
                finished = _of(recs, "step.finished", f"deploy[{host}]")
                assert finished and finished[-1]["seq"] < wave["seq"]
        # ... and this wave's hosts started after it.
        for host in wave["data"]["hosts"]:
            started = _of(recs, "step.started", f"deploy[{host}]")
            assert len(started) == 1 and started[0]["seq"] > wave["seq"]
            assert started[0]["data"]["host"] == host
            assert started[0]["data"]["host_key"].startswith("SHA256:")
            assert started[0]["data"]["pid"] > 0
    outcomes = {r["step"]: r["data"]["outcome"] for r in _of(recs, "step.finished")}
    assert outcomes.pop("deploy[web-07]") == "failed"
    assert outcomes.pop("smoke") == "succeeded"
    assert sorted(outcomes) == [f"deploy[web-{n:02d}]" for n in range(1, 21) if n != 7]
    assert set(outcomes.values()) == {"succeeded"}
    group = _of(recs, "group.finished", "deploy")[0]["data"]
    assert (group["outcome"], group["succeeded"], group["failed"]) == ("succeeded", 19, 1)
    assert "within the failure budget of 2" in group["summary"]
    assert _of(recs, "run.finished")[0]["data"]["outcome"] == "succeeded"
    verify = subprocess.run([sys.executable, "-m", "console", "audit", "verify",
                             str(tmp_path / "audit.jsonl")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    log = Path(_of(recs, "step.finished", "deploy[web-12]")[0]["data"]["log_path"])
    assert log.read_text() == "deploying on web-12\n"


def test_over_the_budget_no_new_wave_starts_and_the_step_fails(
    tmp_path: Path, fleet: Fleet,
) -> None:
    done, recs = run_fleet(tmp_path, fleet, """
        [steps.deploy]
        run = 'case "$CONSOLE_HOST" in web-03|web-04|web-05) exit 1;; esac'
        on = "@web"
        strategy = { waves = [1, "25%", "100%"], max_failures = "10%" }
        [steps.smoke]
        needs = ["deploy"]
        run = "echo smoke"
        """)
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(_of(recs, "wave.started", "deploy")) == 2  # the third never started
    # The second wave (web-02..06) ran to its end: instances running finish.
    finished = {r["step"]: r["data"]["outcome"] for r in _of(recs, "step.finished")}
    assert len(finished) == 6
    assert [finished[f"deploy[web-0{n}]"] for n in (3, 4, 5)] == ["failed"] * 3
    skipped = {r["step"] for r in _of(recs, "step.skipped") if "[" in r["step"]}
    assert skipped == {f"deploy[web-{n:02d}]" for n in range(7, 21)}
    group = _of(recs, "group.finished", "deploy")[0]["data"]
    assert group["outcome"] == "failed" and group["not_run"] == 14
    assert "3 of 20 hosts failed; max_failures allows 2" in group["summary"]
    assert "needs deploy, which failed" in _of(recs, "step.skipped", "smoke")[0]["data"]["reason"]
    assert _of(recs, "run.finished")[0]["data"]["outcome"] == "failed"


def test_approve_between_gates_each_wave_after_the_canary(tmp_path: Path, fleet: Fleet) -> None:
    from ..engine.cli_runs import console_process, wait_for, wait_for_record

    (tmp_path / "hosts.toml").write_text(fleet.inventory())
    path = tmp_path / "fleet.toml"
    path.write_text(textwrap.dedent("""
        [workflow]
        name = "canary"
        inventory = "hosts.toml"
        [steps.deploy]
        run = "echo deployed"
        on = ["web-01", "web-02", "web-03", "web-04"]
        strategy = { waves = [1, 1, "100%"], approve_between = true }
        """))
    audit = tmp_path / "audit.jsonl"
    env = console_env(tmp_path)
    run = console_process("run", str(path), "--no-tui", "--audit", str(audit), env=env)
    opened = wait_for_record(audit, "gate.opened", "deploy")
    assert [r["step"] for r in _of(records(audit), "step.finished")] == ["deploy[web-01]"]
    assert opened["data"]["approve_command"].endswith(" deploy")
    approve = subprocess.run([sys.executable, "-m", "console", "approve", opened["run"],
                              "deploy"], env=env, capture_output=True, text=True, timeout=30)
    assert approve.returncode == 0, approve.stderr
    wait_for("the gate before the third wave",
             lambda: len(_of(records(audit), "gate.opened")) == 2)
    assert [r["step"] for r in _of(records(audit), "step.finished")] == [
        "deploy[web-01]", "deploy[web-02]"]
    deny = subprocess.run([sys.executable, "-m", "console", "deny", opened["run"], "deploy",
                           "--reason", "canary looks wrong"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert deny.returncode == 0, deny.stderr
    assert run.wait(60) == EXIT_CODES["denied"]
    recs = records(audit)
    assert [len(w["data"]["hosts"]) for w in _of(recs, "wave.started")] == [1, 1]
    assert {r["step"] for r in _of(recs, "step.skipped")} == {"deploy[web-03]", "deploy[web-04]"}
    denied = _of(recs, "step.denied", "deploy")[0]
    assert denied["data"]["reason"] == "denied by root: canary looks wrong"
    assert _of(recs, "run.finished")[0]["data"]["outcome"] == "denied"
    assert [r["data"]["approvals_required"] for r in _of(recs, "gate.opened")] == [1, 1]
