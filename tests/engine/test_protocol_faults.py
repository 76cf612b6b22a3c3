"""Protocol v2 under faults: a viewer that never reads, junk, a 10 MiB line, 200 connections,
clients that leave mid-frame or go silent mid-request. The run must not notice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path

import pytest

from console.host import feed, protocol
from console.host.run_host import RunHost
from console.policy.verdict import Verdict
from console.run.control import ControlServer

from .conftest import Runner
from .v2_client import (
    Frame,
    Raw,
    ask_when_free,
    at_gate,
    gated,
    is_end,
    run_lines,
    socket_of,
    wait_until,
)

PADDED = "true " + "# " + "x" * 1000  # bigger records: a stuck viewer's buffers fill sooner


async def time_to_gate(host: RunHost, stuck: bool) -> tuple[float, asyncio.Task[str], Raw | None]:
    """Start the run; with `stuck`, a viewer subscribes at once and never reads. The time
    from start until the gate after the 200 steps opens."""
    started = time.monotonic()
    task = asyncio.create_task(host.run())
    viewer = None
    await wait_until("the socket", socket_of(host).exists)
    if stuck:
        # A plain socket nobody reads (an asyncio stream would read it into memory).
        viewer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        viewer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        viewer.connect(str(socket_of(host)))
        viewer.sendall(b'{"op": "subscribe", "since_seq": 0}\n')
    await wait_until("the gate", lambda: _status(host, "deploy") == "awaiting_approval", 120)
    if viewer is None:
        return time.monotonic() - started, task, None
    elapsed = time.monotonic() - started
    viewer.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=viewer, limit=1 << 21)
    return elapsed, task, Raw(reader, writer)


def _status(host: RunHost, step: str) -> str | None:
    found = host.state.steps.get(step)
    return found.status if found is not None else None


async def approve(host: RunHost) -> None:
    answer = await ask_when_free(socket_of(host), {"op": "approve", "step": "deploy"})
    assert answer["ok"] is True, answer


async def test_a_viewer_that_never_reads_is_dropped_and_never_slows_the_run(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "MAX_PENDING_RECORDS", 50)
    monkeypatch.setattr(protocol, "TOO_SLOW_GRACE_S", 120.0)  # time to read the why
    text = gated(steps=200, command=PADDED, concurrency=8)

    alone, _ = runner.engine(text)
    plain_s, plain_task, _ = await time_to_gate(alone, stuck=False)
    await approve(alone)
    assert await asyncio.wait_for(plain_task, 60) == "succeeded"

    host, _ = runner.engine(text)
    stuck_s, task, viewer = await time_to_gate(host, stuck=True)
    assert viewer is not None
    # Now read: the answer, what the socket held, then why it stopped, then the close.
    answer = await viewer.frame()
    assert answer is not None and answer["ok"] is True
    frames = await viewer.until(lambda f: "seq" not in f, timeout=60)
    assert await viewer.closed()
    told = frames[-1]
    records = [f for f in frames if "seq" in f]
    # It may go on from where it stopped: no gap, nothing twice, up to the end.
    again = await Raw.open(socket_of(host))
    await again.ask({"op": "subscribe", "since_seq": told["last_seq"]})
    await approve(host)
    rest = await again.until(is_end)
    assert await asyncio.wait_for(task, 60) == "succeeded"

    assert stuck_s < plain_s * 1.5 + 1.0, (stuck_s, plain_s)
    assert told["ok"] is False and told["error"] == "too_slow", told
    assert "subscribe again with since_seq=" in told["message"]
    assert records and records[-1]["seq"] == told["last_seq"]
    seqs = [f["seq"] for f in records] + [f["seq"] for f in rest if "seq" in f]
    assert seqs == list(run_lines(host))
    assert rest[-1]["type"] == "end"


async def test_junk_gets_errors_and_changes_nothing(runner: Runner) -> None:
    host, task = await at_gate(runner, gated(), "deploy")
    watcher = await Raw.open(socket_of(host))
    await watcher.ask({"op": "subscribe"})
    client = await Raw.open(socket_of(host))
    junk = [os.urandom(300).replace(b"\n", b"") + b"\n", b"\x00\x00\x00\n", b"[1,2,3]\n",
            b'{"op": "subscribe", "since_seq": 1e999}\n', b'{"op": "hello"\n', b"\n",
            b'{"op": "log", "step": {"a": 1}, "attempt": 1}\n', b'"hello"\n']
    answers = [await client.ask(line) for line in junk]
    hello = await client.ask({"op": "hello"})
    client.close()
    await approve(host)
    assert await asyncio.wait_for(task, 30) == "succeeded"
    frames = await watcher.until(is_end)

    assert [a["ok"] for a in answers] == [False] * len(junk)
    assert {a["error"] for a in answers} <= {"bad_json", "bad_request"}, answers
    assert hello["ok"] is True
    assert [f["seq"] for f in frames if "seq" in f] == list(run_lines(host))


async def test_a_10_mib_line_is_refused_and_the_connection_closed(runner: Runner) -> None:
    host, task = await at_gate(runner, gated(), "deploy")
    for line in (b'{"op": "hello", "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}\n',
                 b"y" * (10 * 1024 * 1024)):
        client = await Raw.open(socket_of(host))
        client.writer.write(line)
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(client.writer.drain(), 30)
        answer = await client.frame()
        assert answer is not None and answer["error"] == "too_long", answer
        assert await client.closed()
        client.close()
    # A subscriber that starts sending requests on its stream is stopped too.
    streaming = await Raw.open(socket_of(host))
    await streaming.ask({"op": "subscribe"})
    streaming.writer.write(b"z" * (10 * 1024 * 1024))
    with contextlib.suppress(ConnectionError):
        await asyncio.wait_for(streaming.writer.drain(), 30)
    frames = await streaming.until(lambda f: "seq" not in f)
    assert await streaming.closed()
    await approve(host)
    assert await asyncio.wait_for(task, 30) == "succeeded"

    assert frames[-1]["error"] == "bad_request"
    assert "takes no requests" in frames[-1]["message"]


async def test_200_connections_are_answered_busy_and_the_viewer_goes_on(
    runner: Runner,
) -> None:
    host, task = await at_gate(runner, gated(), "deploy")
    viewer = await Raw.open(socket_of(host))
    await viewer.ask({"op": "subscribe"})
    clients = [await Raw.open(socket_of(host)) for _ in range(200)]
    firsts = await asyncio.gather(*(_first_frame(client) for client in clients))
    for client in clients:
        client.close()
    # Once they are gone, the uid's connections are free again.
    clients = [await _hello_when_free(host) for _ in range(7)]
    for client in clients:
        client.close()
    await approve(host)
    assert await asyncio.wait_for(task, 30) == "succeeded"
    frames = await viewer.until(is_end)

    busy = [f for f in firsts if f is not None and f.get("error") == "busy"]
    assert len(busy) >= 200 - 7, firsts[:10]
    assert "limit 8 per user" in busy[0]["message"]
    assert [f["seq"] for f in frames if "seq" in f] == list(run_lines(host))


async def _first_frame(client: Raw) -> Frame | None:
    """The first line the run sends without being asked: `busy`, or nothing (served)."""
    try:
        return await client.frame(timeout=2.0)
    except (TimeoutError, ConnectionError):
        return None


async def _hello_when_free(host: RunHost) -> Raw:
    async with asyncio.timeout(30):
        while True:
            client = await Raw.open(socket_of(host))
            with contextlib.suppress(ConnectionError):  # busy: answered, closed at once
                if (await client.ask({"op": "hello"}))["ok"]:
                    return client
            client.close()
            await asyncio.sleep(0.05)


async def test_clients_that_leave_mid_frame_change_nothing(runner: Runner) -> None:
    host, task = await at_gate(runner, gated(steps=2), "deploy")
    path = socket_of(host)
    for _ in range(20):
        # Half a request, then gone.
        client = await Raw.open(path)
        client.writer.write(b'{"op": "approve", "st')
        await client.writer.drain()
        client.close()
        # A subscriber gone in the middle of its stream.
        viewer = await Raw.open(path)
        await viewer.ask({"op": "subscribe"})
        await viewer.line()
        viewer.close()
        # A follower gone in the middle of a log.
        follower = await Raw.open(path)
        await follower.ask({"op": "log", "step": "s000", "attempt": 1, "follow": True})
        follower.close()
    # Every one of them was let go: this uid can open its 8 connections again.
    clients = [await _hello_when_free(host) for _ in range(8)]
    for client in clients:
        client.close()
    assert _status(host, "deploy") == "awaiting_approval"
    assert host.state.steps["deploy"].approvals == []
    await approve(host)
    assert await asyncio.wait_for(task, 30) == "succeeded"


class _Nothing:
    run_id = "20250101T000000Z-000000"

    def _no(self, *args: object) -> Verdict:
        return Verdict(False, "no")

    approve = deny = override = cancel_step = cancel_run = retry_step = _no


async def test_a_client_silent_mid_request_hears_why_and_is_hung_up_on(
    tmp_path: Path,
) -> None:
    runtime = tmp_path / "rt"
    server = ControlServer(_Nothing(), runtime / "r.sock", lambda: {}, idle_timeout_s=0.2)
    await server.start()
    try:
        client = await Raw.open(runtime / "r.sock")
        client.writer.write(b'{"op": "cancel"')
        await client.writer.drain()
        answer = await client.frame(timeout=10)
        assert await client.closed()
        silent = await Raw.open(runtime / "r.sock")
        assert await silent.line(timeout=10) == b""  # nothing unfinished: just closed
    finally:
        await server.close()
    assert answer == {"ok": False, "error": "incomplete",
                      "message": "request not finished (no newline) within 0.2 s; "
                                 "nothing was done"}
