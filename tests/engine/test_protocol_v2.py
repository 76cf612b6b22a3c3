"""Protocol v2 on real runs: hello, subscribe (replay then live), log, and AttachedRun."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import pwd
from pathlib import Path

import pytest

from console.events import ApprovalGiven, Event
from console.host import feed
from console.host.attached import AttachedRun, RunHostLost
from console.host.run_host import RunHost
from console.run.state import RunState

from .cli_runs import console_env, console_process, wait_for_record
from .conftest import Runner, write_workflow
from .v2_client import (
    Frame,
    Raw,
    ask_when_free,
    at_gate,
    gated,
    is_end,
    run_lines,
    run_records,
    socket_of,
    wait_until,
)


def status_of(state: RunState, step: str) -> str | None:
    found = state.steps.get(step)
    return found.status if found is not None else None


def record_frames(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if "seq" in f]


async def approve(host: RunHost, step: str = "deploy") -> Frame:
    return await ask_when_free(socket_of(host), {"op": "approve", "step": step,
                                                 "reason": "looks right"})


async def test_hello_says_which_run_and_who_you_are(runner: Runner) -> None:
    host, task = await at_gate(runner, gated(), "deploy")
    client = await Raw.open(socket_of(host))
    hello = await client.ask({"op": "hello", "uid": 0, "user": "root"})
    client.close()
    await approve(host)
    await asyncio.wait_for(task, 30)

    assert hello["ok"] is True and hello["protocol"] == 2
    assert (hello["run"], hello["workflow"], hello["status"]) == (host.run_id, "v2", "running")
    me = pwd.getpwuid(os.getuid()).pw_name
    assert hello["you"] == {"user": me, "uid": os.getuid()}  # from the socket, not the request
    assert hello["last_seq"] == [r for r in run_records(host) if r["seq"] <= hello["last_seq"]][
        -1]["seq"]
    assert {"hello", "subscribe", "log", "approve"} <= set(hello["ops"])
    assert hello["limits"]["frame_bytes"] == 1024 * 1024


async def test_an_attached_run_sees_the_hosts_state_and_approves_through_the_socket(
    runner: Runner,
) -> None:
    host, task = await at_gate(runner, gated(steps=3), "deploy")
    attached = await AttachedRun.connect(socket_of(host))
    seen: list[Event] = []

    async def watch() -> None:
        async for event in attached.events():
            seen.append(event)

    watcher = asyncio.create_task(watch())
    await wait_until("the gate seen", lambda: status_of(attached.state, "deploy")
                     == "awaiting_approval")
    verdict = await attached.approve("deploy", "diff reviewed")
    outcome = await asyncio.wait_for(task, 30)
    attached_outcome = await asyncio.wait_for(attached.wait(), 30)
    await asyncio.wait_for(watcher, 30)

    assert verdict.ok, verdict.message
    assert outcome == attached_outcome == "succeeded"
    assert dataclasses.asdict(attached.state) == dataclasses.asdict(host.state)
    assert [e.type for e in seen] == [r["type"] for r in run_records(host)]
    [given] = [e for e in seen if isinstance(e, ApprovalGiven)]
    assert given.actor is not None and (given.actor.uid, given.actor.via) == (os.getuid(),
                                                                              "socket")
    assert (attached.live, attached.ended, attached.lost) == (False, True, None)
    assert not socket_of(host).exists()


async def test_subscribe_since_replays_only_later_records_then_goes_on_live(
    runner: Runner,
) -> None:
    host, task = await at_gate(runner, gated(steps=4), "deploy")
    before = run_records(host)
    since = before[len(before) // 2]["seq"]
    client = await Raw.open(socket_of(host))
    answer = await client.ask({"op": "subscribe", "since_seq": since})
    replayed = [await client.frame() for _ in before if _["seq"] > since]
    await approve(host)
    rest = await client.until(is_end)
    await asyncio.wait_for(task, 30)
    assert await client.closed()

    frames = [f for f in replayed + rest if f is not None]
    lines = run_lines(host)
    assert answer == {"ok": True, "message": f"subscribed to run {host.run_id} after seq {since}",
                      "run": host.run_id, "since_seq": since}
    assert [f["seq"] for f in record_frames(frames)] == [s for s in lines if s > since]
    assert frames[-1] == {"type": "end", "run": host.run_id, "reason": "finished",
                          "outcome": "succeeded", "last_seq": max(lines)}
    assert frames[-2]["type"] == "run.finished"


async def test_record_frames_are_the_audit_lines_byte_for_byte(runner: Runner) -> None:
    host, task = await at_gate(runner, gated(steps=2, command="echo 'é ✓ \"q\"'"), "deploy")
    client = await Raw.open(socket_of(host))
    await client.ask({"op": "subscribe"})
    await approve(host)
    raw: list[bytes] = []
    while (line := await client.line()) and b'"type": "end"' not in line:
        raw.append(line)
    await asyncio.wait_for(task, 30)
    assert raw == [line + b"\n" for line in run_lines(host).values()]


async def test_viewers_joining_at_any_moment_get_every_record_once(runner: Runner) -> None:
    """The replay/live boundary falls at a different record for each viewer: none may see a
    gap or a record twice."""
    host, _ = runner.engine(gated(steps=60, concurrency=4))
    task = asyncio.create_task(host.run())
    await wait_until("the socket", socket_of(host).exists)
    viewers: list[asyncio.Task[list[Frame]]] = []

    async def view() -> list[Frame]:
        client = await Raw.open(socket_of(host))
        await client.ask({"op": "subscribe", "since_seq": 0})
        return await client.until(is_end)

    for joined in range(6):
        viewers.append(asyncio.create_task(view()))
        await wait_until("more records", lambda j=joined: len(run_records(host)) > 30 * (j + 1))
    await wait_until("the gate", lambda: status_of(host.state, "deploy")
                     == "awaiting_approval")
    await approve(host)
    await asyncio.wait_for(task, 60)
    seen = await asyncio.wait_for(asyncio.gather(*viewers), 60)

    every = list(run_lines(host))
    for frames in seen:
        assert [f["seq"] for f in record_frames(frames)] == every
        assert frames[-1]["type"] == "end" and frames[-1]["reason"] == "finished"


async def test_subscribing_past_the_end_of_a_finished_run_just_ends(runner: Runner) -> None:
    host, task = await at_gate(runner, gated(), "deploy")
    client = await Raw.open(socket_of(host))
    await client.ask({"op": "subscribe", "since_seq": 10**9})
    await approve(host)
    frames = await client.until(is_end)
    await asyncio.wait_for(task, 30)
    assert frames == [{"type": "end", "run": host.run_id, "reason": "closed",
                       "outcome": "succeeded", "last_seq": 10**9}]


# --- log -------------------------------------------------------------------------------

BINARY = (
    "python3 -c \"import sys; sys.stdout.buffer.write(bytes(range(256)) * 800)\""
)


def log_bytes(frames: list[Frame]) -> bytes:
    return b"".join(base64.b64decode(f["data"]) for f in frames if f.get("type") == "log")


async def test_the_log_op_sends_the_log_files_bytes(runner: Runner) -> None:
    host, task = await at_gate(runner, gated(command=BINARY), "deploy")
    log_file = Path(host.state.run_dir or "") / "s000.1.log"
    client = await Raw.open(socket_of(host))
    await client.send({"op": "log", "step": "s000", "attempt": 1, "offset": 0})
    whole = await client.until(lambda f: f.get("type") == "log.end")
    await client.send({"op": "log", "step": "s000", "attempt": 1, "offset": 1000,
                       "limit": 5000})
    part = await client.until(lambda f: f.get("type") == "log.end")
    attached = await AttachedRun.connect(socket_of(host))
    first = await attached.log("s000", 1, 0)
    past_end = await attached.log("s000", 1, 256 * 800)
    await attached.close()
    client.close()
    await approve(host)
    await asyncio.wait_for(task, 30)

    expected = bytes(range(256)) * 800
    assert log_file.read_bytes() == expected
    assert whole[0]["ok"] is True and log_bytes(whole) == expected
    assert all(len(base64.b64decode(f["data"])) <= 64 * 1024 for f in whole[1:-1])
    assert whole[-1] == {"type": "log.end", "step": "s000", "attempt": 1,
                         "offset": len(expected), "ended": True}
    assert log_bytes(part) == expected[1000:6000]
    assert part[-1]["offset"] == 6000 and part[-1]["ended"] is False
    assert first == expected[: 64 * 1024]
    assert past_end == b""


FOLLOWED = """
[workflow]
name = "follow"
[steps.talk]
run = "i=0; while [ ! -e {stop} ]; do echo line $i; i=$((i+1)); sleep 0.02; done; echo done"
"""


async def test_a_followed_log_streams_until_the_attempt_ends(
    runner: Runner, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    host, _ = runner.engine(FOLLOWED.format(stop=stop))
    task = asyncio.create_task(host.run())
    await wait_until("talk running", lambda: status_of(host.state, "talk") == "running")
    client = await Raw.open(socket_of(host))
    answer = await client.ask({"op": "log", "step": "talk", "attempt": 1, "offset": 0,
                               "follow": True})
    attached = await AttachedRun.connect(socket_of(host))
    received = bytearray()
    chunks: list[Frame] = []
    while received.count(b"\n") < 5:
        frame = await client.frame()
        assert frame is not None and frame["type"] == "log"
        chunks.append(frame)
        received += base64.b64decode(frame["data"])
    followed = bytearray()
    async for chunk in attached.follow_log("talk", 1):
        followed += chunk
        if followed.count(b"\n") >= 3:
            stop.touch()
    rest = await client.until(lambda f: f.get("type") == "log.end")
    await asyncio.wait_for(task, 30)
    await attached.close()

    log_file = Path(host.state.run_dir or "") / "talk.1.log"
    assert answer["ok"] is True
    assert bytes(received) + log_bytes(rest) == log_file.read_bytes()
    assert rest[-1]["ended"] is True and rest[-1]["offset"] == log_file.stat().st_size
    assert bytes(followed) == log_file.read_bytes()
    assert log_file.read_bytes().endswith(b"done\n")


async def test_log_requests_name_a_steps_attempt_never_a_path(runner: Runner) -> None:
    host, task = await at_gate(runner, gated(), "deploy")
    client = await Raw.open(socket_of(host))
    bad = [
        {"op": "log", "step": "../../etc/passwd", "attempt": 1},
        {"op": "log", "step": "/etc/passwd", "attempt": 1},
        {"op": "log", "step": "s000/../deploy", "attempt": 1},
        {"op": "log", "step": "nope", "attempt": 1},
        {"op": "log", "step": "s000", "attempt": 0},
        {"op": "log", "step": "s000", "attempt": 2},
        {"op": "log", "step": "s000", "attempt": "1"},
        {"op": "log", "step": "s000", "attempt": True},
        {"op": "log", "step": "verify", "attempt": 1},
        {"op": "log", "step": "s000", "attempt": 1, "offset": -1},
        {"op": "log", "step": "s000", "attempt": 1, "follow": "yes"},
        {"op": "log", "attempt": 1},
        {"op": "subscribe", "since_seq": "0"},
        {"op": "subscribe", "since_seq": -5},
    ]
    answers = [await client.ask(request) for request in bad]
    hello = await client.ask({"op": "hello"})
    client.close()
    await approve(host)
    await asyncio.wait_for(task, 30)

    assert [a.get("error") for a in answers] == ["bad_request"] * len(bad), answers
    assert answers[0]["message"] == f"run {host.run_id} has no step '../../etc/passwd'"
    assert answers[5]["message"] == "step s000 has had 1 attempt; no attempt 2"
    assert answers[8]["message"] == "step verify has not started yet; no attempt 1"
    assert hello["ok"] is True


# --- AttachedRun: falling behind, and a host that goes away ----------------------------


async def test_an_attached_run_dropped_for_falling_behind_catches_up_without_a_gap(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A queue this short overflows on the bursts a run appends in one go: whenever the
    # viewer subscribed, at least deploy's step.finished, verify's step.ready and
    # step.started are written together after the approval.
    monkeypatch.setattr(feed, "MAX_PENDING_RECORDS", 2)
    host, _ = runner.engine(gated(steps=40, concurrency=8))
    task = asyncio.create_task(host.run())
    await wait_until("the socket", socket_of(host).exists)
    attached = await AttachedRun.connect(socket_of(host))
    await wait_until("the gate seen", lambda: status_of(attached.state, "deploy")
                     == "awaiting_approval")
    await attached.approve("deploy", None)
    assert await asyncio.wait_for(attached.wait(), 30) == "succeeded"
    await asyncio.wait_for(task, 30)

    assert attached.resubscribes > 0
    assert [e.type for e in attached._history] == [r["type"] for r in run_records(host)]
    assert dataclasses.asdict(attached.state) == dataclasses.asdict(host.state)


async def test_an_attached_run_knows_when_its_host_went_away(tmp_path: Path) -> None:
    env = console_env(tmp_path)
    path = write_workflow(tmp_path, gated())
    audit = tmp_path / "audit.jsonl"
    process = console_process("run", str(path), "--no-tui", "--audit", str(audit), env=env)
    try:
        opened = await asyncio.to_thread(wait_for_record, audit, "gate.opened")
        socket_path = tmp_path / "runtime" / f"{opened['run']}.sock"
        attached = await AttachedRun.connect(socket_path)
        await wait_until("the gate seen", lambda: status_of(attached.state, "deploy")
                         == "awaiting_approval")
        process.kill()
        with pytest.raises(RunHostLost, match="the run host went away"):
            await asyncio.wait_for(attached.wait(), 30)
        verdict = await attached.approve("deploy", None)
    finally:
        process.kill()
        process.communicate()

    assert attached.live is False and attached.ended is False
    assert attached.lost is not None and attached.lost.startswith("the run host went away")
    assert verdict.ok is False
