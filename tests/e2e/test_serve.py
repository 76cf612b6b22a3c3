"""Team mode with real users: `console serve` as a service user, engineers submitting runs,
approving by keypress in their own terminals, one audit trail none of them can write, and
its head kept in a syslog file the service cannot rewrite.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.audit.chain import seal
from console.run.history import pid_alive
from tests.e2e.serve_box import ServeBox, make_box
from tests.e2e.test_attach_users import UserPane, panes  # noqa: F401 (fixture)
from tests.e2e.test_tmux import pytestmark  # noqa: F401 (skips without tmux)
from tests.engine.cli_runs import records, wait_for, wait_for_record
from tests.multiuser import Accounts, SharedPython, as_user, needs_other_users, run_as


@pytest.fixture
def box(accounts: Accounts, shared_python: SharedPython) -> Iterator[ServeBox]:
    made = make_box(accounts, shared_python)
    try:
        made.start_serve()
        yield made
    finally:
        made.close()


def run_records(box: ServeBox, run_id: str, kind: str) -> list[dict[str, object]]:
    return [r for r in records(box.audit) if r["run"] == run_id and r["type"] == kind]


def wait_for_run_record(box: ServeBox, run_id: str, kind: str, step: str | None = None,
                        seconds: float = 60) -> dict[str, object]:
    def found() -> dict[str, object] | None:
        for record in run_records(box, run_id, kind):
            if step is None or record.get("step") == step:
                return record
        return None

    record: dict[str, object] = wait_for(f"{kind} {step or ''} of {run_id}", found, seconds)
    return record


def journaled_head_at(box: ServeBox, seq: int) -> str:
    def head() -> str | None:
        text = box.syslog.read_text() if box.syslog.exists() else ""
        found = re.findall(rf"audit head (\d+):\S+ of {re.escape(str(box.audit))}", text)
        return text if found and int(found[-1]) >= seq else None

    text: str = wait_for(f"a journaled head at line {seq}", head, 30)
    return text


def submitted(box: ServeBox, user: str, *args: str) -> str:
    done = box.console_as(box.engineers[user], "run", *args, "--detach")
    assert done.returncode == 0, done.stderr
    found = re.search(r"run (\S+) started by console serve", done.stdout)
    assert found, done.stdout
    return found.group(1)


@needs_other_users
def test_an_engineer_submits_bluegreen_and_a_colleague_approves_by_keypress(
    box: ServeBox, panes: list[UserPane],  # noqa: F811
) -> None:
    alice, bob, carol = (box.engineers[n] for n in ("alice", "bob", "carol"))
    assert box.serve is not None  # started by root, it now runs as the service user
    assert os.stat(f"/proc/{box.serve.pid}").st_uid == box.service.uid
    flow = box.workflows / "bluegreen.toml"
    starter = UserPane(alice, box.python.console(
        "run", str(flow), "-p", "version=1.4.2", "-p", "env=prod"), box.env_for(alice))
    panes.append(starter)
    started = wait_for_record(box.audit, "run.started")
    run_id = str(started["run"])
    assert started["actor"] == {"user": alice.name, "uid": alice.uid, "via": "serve"}
    wait_for_run_record(box, run_id, "gate.opened", "switch-traffic")

    # The step ran as the service user, with a credential no engineer can read.
    proof = Path(f"/tmp/console-demo-{run_id}/deployed-by").read_text().split()
    assert proof == [box.service.name, hashlib.sha256(box.token.encode()).hexdigest()]
    cat = run_as(alice, ["cat", str(box.credentials)])
    assert cat.returncode != 0 and "Permission denied" in cat.stderr
    # The trail: the engineers read and verify it, and cannot write it.
    assert (os.stat(box.audit).st_mode & 0o777, os.stat(box.audit).st_uid) == (
        0o640, box.service.uid)
    write = subprocess.run(
        ["setpriv", f"--reuid={alice.uid}", f"--regid={alice.gid}", "--init-groups",
         *box.python.argv("-c", f"open({str(box.audit)!r}, 'a')")],
        capture_output=True, text=True, timeout=60,
    )
    assert "PermissionError: [Errno 13]" in write.stderr
    assert box.console_as(bob, "audit", "verify", str(box.audit)).returncode == 0
    # An edited copy outside the service's directories is not run for her.
    home_copy = box.base / "home" / alice.name / "bluegreen.toml"
    home_copy.write_text(flow.read_text())
    os.chown(home_copy, alice.uid, -1)
    refused = box.console_as(alice, "run", str(home_copy), "-p", "version=1.4.2", "--no-tui")
    assert refused.returncode == 1
    assert "not in the service's workflow directories" in refused.stderr

    # The initiator is refused by separation of duties, by keypress and by the CLI.
    starter.wait_for("awaiting", seconds=30)
    starter.send("a")
    starter.wait_for("Refused")
    own = box.console_as(alice, "approve", run_id, "switch-traffic", "--reason", "mine")
    assert own.returncode == 3 and "you started this run" in own.stderr, own.stderr

    approver = UserPane(bob, box.python.console("attach", run_id), box.env_for(bob))
    panes.append(approver)
    approver.wait_for("awaiting", seconds=30)
    approver.send("a")
    approver.wait_for("reason")
    approver.send("-l", "bob checked the diff")
    approver.send("Enter")
    wait_for_run_record(box, run_id, "approval.given", "switch-traffic")
    for step in ("switch-traffic", "retire-blue"):
        wait_for_run_record(box, run_id, "gate.opened", step)
        done = box.console_as(carol, "approve", run_id, step, "--reason", "carol agrees")
        assert done.returncode == 0, done.stderr
        if step == "retire-blue":
            done = box.console_as(bob, "approve", run_id, step, "--reason", "bob agrees")
            assert done.returncode == 0, done.stderr
    finished = wait_for_run_record(box, run_id, "run.finished")
    assert finished["data"] == {**finished["data"], "outcome": "succeeded"}  # type: ignore[dict-item]
    starter.wait_for("succeeded", seconds=15)
    given = [(r["actor"]["user"], r["step"]) for r in run_records(box, run_id, "approval.given")]  # type: ignore[index]
    assert (bob.name, "switch-traffic") in given and (carol.name, "retire-blue") in given

    journaled_head_at(box, int(finished["seq"]))  # type: ignore[call-overload]
    verified = box.console_as(bob, "audit", "verify", str(box.audit), "--against-journal")
    assert verified.returncode == 0, verified.stderr
    assert "matches the journal" in verified.stdout


@needs_other_users
def test_a_killed_run_host_leaves_the_service_up_and_the_run_resumes_through_it(
    box: ServeBox,
) -> None:
    alice, bob = box.engineers["alice"], box.engineers["bob"]
    gated = str(box.workflows / "gated.toml")
    run_id = submitted(box, "alice", gated)
    started = wait_for_run_record(box, run_id, "run.started")
    wait_for_run_record(box, run_id, "gate.opened", "release")
    host = int(started["data"]["pid"])  # type: ignore[index]
    os.kill(host, signal.SIGKILL)
    wait_for("the killed run host reaped", lambda: not pid_alive(host), 10)
    assert box.serve is not None and box.serve.poll() is None

    status = box.console_as(alice, "status", run_id)
    assert status.returncode == 0, status.stderr
    assert "abandoned" in status.stdout

    outsider = box.console_as(box.outsider, "run", gated, "--no-tui")
    assert outsider.returncode == 1
    assert f"only members of @{box.group} may submit runs" in outsider.stderr

    # A workflow of the service's that takes its policy from her home is not run either.
    policy = box.base / "home" / alice.name / "lenient.toml"
    policy.write_text('[[policy]]\nname = "anything goes"\neffect = "allow"\n')
    os.chown(policy, alice.uid, -1)
    borrowed = box.workflows / "borrowed.toml"
    borrowed.write_text(f'[workflow]\nname = "b"\npolicies = ["{policy}"]\n'
                        '[steps.a]\nrun = "true"\n')
    refused = box.console_as(alice, "run", str(borrowed), "--no-tui")
    assert refused.returncode == 1
    assert f"uses {policy}, which is not in the service's workflow directories" in refused.stderr

    resumed = submitted(box, "alice", gated, "--resume", run_id)
    wait_for_run_record(box, resumed, "step.reused", "build")
    wait_for_run_record(box, resumed, "gate.opened", "release")
    done = box.console_as(bob, "approve", resumed, "release")
    assert done.returncode == 0, done.stderr
    finished = wait_for_run_record(box, resumed, "run.finished")
    assert finished["data"]["outcome"] == "succeeded"  # type: ignore[index]
    again = run_records(box, resumed, "run.started")[0]
    assert again["actor"]["uid"] == alice.uid  # type: ignore[index]


@needs_other_users
def test_killing_the_service_leaves_its_runs_to_finish(box: ServeBox) -> None:
    alice, bob = box.engineers["alice"], box.engineers["bob"]
    # Headless, the submitter follows the run's events and gets its outcome as exit code.
    follower = subprocess.Popen(
        as_user(alice, box.python.console("run", str(box.workflows / "gated.toml"), "--no-tui")),
        env={**os.environ, **box.env_for(alice)}, cwd="/", text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    box.processes.append(follower)  # type: ignore[arg-type]
    started = wait_for_record(box.audit, "run.started")
    run_id = str(started["run"])
    wait_for_run_record(box, run_id, "gate.opened", "release")
    assert box.serve is not None
    box.serve.kill()
    box.serve.wait()
    assert pid_alive(int(started["data"]["pid"]))  # type: ignore[index]

    done = box.console_as(bob, "approve", run_id, "release")
    assert done.returncode == 0, done.stderr
    finished = wait_for_run_record(box, run_id, "run.finished")
    assert finished["data"]["outcome"] == "succeeded"  # type: ignore[index]

    # Back up, the service vouches for what its run wrote while it was down.
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert f"run {run_id} started by console serve" in err
    assert "release: approved by" in out and "succeeded" in out.splitlines()[-1], out

    box.start_serve()
    journaled_head_at(box, int(finished["seq"]))  # type: ignore[call-overload]
    verified = box.console_as(bob, "audit", "verify", str(box.audit), "--against-journal")
    assert verified.returncode == 0, verified.stderr


@needs_other_users
def test_a_forged_append_and_a_rewrite_are_caught_against_the_journal(box: ServeBox) -> None:
    bob = box.engineers["bob"]
    run_id = submitted(box, "alice", str(box.workflows / "gated.toml"))
    wait_for_run_record(box, run_id, "gate.opened", "release")
    assert box.console_as(bob, "approve", run_id, "release").returncode == 0
    finished = wait_for_run_record(box, run_id, "run.finished")
    journaled_head_at(box, int(finished["seq"]))  # type: ignore[call-overload]

    # Root appends a well-chained approval after the run: the chain alone cannot tell.
    last = records(box.audit)[-1]
    body = {k: v for k, v in last.items() if k not in ("seq", "prev", "hash")}
    body.update(type="approval.given", step="release", data={"reason": "forged"})
    _, line = seal(body, int(last["seq"]) + 1, str(last["hash"]))
    with box.audit.open("ab") as out:
        out.write(line)
    assert box.console_as(bob, "audit", "verify", str(box.audit)).returncode == 0
    wait_for("the service's alert", lambda: "was not written" in box.syslog.read_text(), 30)
    verified = box.console_as(bob, "audit", "verify", str(box.audit), "--against-journal")
    assert verified.returncode == 1
    assert f"line {int(last['seq']) + 1}" in verified.stderr and "forged" in verified.stderr

    # Root rewrites the trail instead, every hash recomputed: the journal's heads differ.
    rewritten, prev = [], "0" * 64
    for record in records(box.audit)[:-1]:
        body = {k: v for k, v in record.items() if k not in ("seq", "prev", "hash")}
        if record["type"] == "approval.given":
            body["data"] = {**body["data"], "reason": "rewritten"}
        sealed, line = seal(body, int(record["seq"]), prev)
        rewritten.append(line)
        prev = sealed["hash"]
    box.audit.write_bytes(b"".join(rewritten))
    assert box.console_as(bob, "audit", "verify", str(box.audit)).returncode == 0
    verified = box.console_as(bob, "audit", "verify", str(box.audit), "--against-journal")
    assert verified.returncode == 1
    assert "was rewritten" in verified.stderr or "is missing" in verified.stderr
    assert json.loads(rewritten[0])["seq"] == 1
