"""Group commit: the events of one pass of the engine's loop reach the audit file in one
write; durable ones (and everything before them) are on disk before the engine goes on;
a failed write loses the whole group, and says so."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.audit.log import AuditLog, read_records, verify_chain
from console.errors import AuditError
from console.events import RunStarted, StepReady
from console.run.audit_sink import AuditSink
from console.run.fanout import AuditBreak, SinkFanout


def entry(number: int) -> dict[str, Any]:
    return {"run": "r-1", "type": "step.ready", "step": f"s{number}", "data": {"n": number}}


def ready(step: str) -> StepReady:
    return StepReady(run="r-1", step=step)


def started() -> RunStarted:
    return RunStarted(
        run="r-1", workflow="w", workflow_path="/w.toml", file_hashes={}, params={},
        steps=("a",), user="u", uid=0, host="h", pid=1, version="0", concurrency=1,
        run_dir="/runs/r-1",
    )


def types_on_disk(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [f"{r['type']} {r.get('step') or ''}".strip() for r in read_records(path)]


def test_staged_entries_wait_for_the_commit_and_chain_in_order(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append(entry(0))
        for number in range(1, 6):
            log.stage(entry(number))
        assert log.staged == 5
        assert len(list(read_records(path))) == 1  # nothing staged is on disk yet
        records = log.commit()
        assert [r["seq"] for r in records] == [2, 3, 4, 5, 6]
        assert log.staged == 0 and log.commit() == []
    report = verify_chain(path)
    assert report.ok and report.lines == 6
    assert [r["data"]["n"] for r in read_records(path)] == list(range(6))


def test_append_writes_what_is_staged_first(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.stage(entry(1))
        log.stage(entry(2))
        record = log.append(entry(3), sync=True)
    assert record["seq"] == 3
    assert [r["data"]["n"] for r in read_records(path)] == [1, 2, 3]
    assert verify_chain(path).ok


def test_a_group_is_one_write(tmp_path: Path) -> None:
    """Another writer appending between two commits sees whole groups, never half of one."""
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log, AuditLog(path) as other:
        for number in range(3):
            log.stage(entry(number))
        other.append(entry(100))
        log.commit()
        other.append(entry(101))
    assert [r["data"]["n"] for r in read_records(path)] == [100, 0, 1, 2, 101]
    assert verify_chain(path).ok


def test_close_commits_what_is_staged(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.stage(entry(1))
    log.close()
    assert verify_chain(path).lines == 1


def test_an_entry_that_is_not_an_event_is_refused_when_staged(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl") as log, pytest.raises(AuditError):
        log.stage({"run": "r-1", "type": "x", "data": {}, "surprise": 1})


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past `limit` bytes fail (EFBIG or a short write), as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_failed_commit_writes_none_of_the_group_and_keeps_none(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append(entry(0))
        size = path.stat().st_size
        for number in range(1, 50):
            log.stage(entry(number))
        with file_size_limit(size + 300), pytest.raises(AuditError):
            log.commit()
        assert log.staged == 0
        assert path.stat().st_size == size  # a short write is taken back
        log.append(entry(99))
    assert [r["data"]["n"] for r in read_records(path)] == [0, 99]
    assert verify_chain(path).ok


def test_a_pass_of_the_loop_is_committed_at_its_end(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    fanout = SinkFanout(lambda failure: None)
    fanout.set_audit(AuditSink(log))

    async def one_pass() -> tuple[list[str], list[str], list[str]]:
        fanout.publish(started())  # durable: on disk before publish returns
        after_durable = types_on_disk(path)
        fanout.publish(ready("a"))
        fanout.publish(ready("b"))
        during = types_on_disk(path)
        await asyncio.sleep(0)  # the pass ends
        return after_durable, during, types_on_disk(path)

    after_durable, during, after = asyncio.run(one_pass())
    log.close()
    assert after_durable == ["run.started"]
    assert during == ["run.started"]
    assert after == ["run.started", "step.ready a", "step.ready b"]


def test_a_durable_event_commits_the_staged_ones_before_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    fanout = SinkFanout(lambda failure: None)
    fanout.set_audit(AuditSink(log))

    async def one_pass() -> list[str]:
        fanout.publish(ready("a"))
        fanout.publish(started())
        return types_on_disk(path)

    on_disk = asyncio.run(one_pass())
    log.close()
    assert on_disk == ["step.ready a", "run.started"]


def test_without_a_loop_every_event_is_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        fanout = SinkFanout(lambda failure: None)
        fanout.set_audit(AuditSink(log))
        fanout.publish(ready("a"))
        assert types_on_disk(path) == ["step.ready a"]


def test_a_failed_group_is_reported_whole_and_nothing_more_is_written(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    breaks: list[AuditBreak] = []
    fanout = SinkFanout(breaks.append)
    fanout.set_audit(AuditSink(log))

    async def run() -> None:
        fanout.publish(started())
        size = os.stat(path).st_size
        with file_size_limit(size + 10):
            fanout.publish(ready("a"))
            fanout.publish(ready("b"))
            await asyncio.sleep(0)
        fanout.publish(ready("c"))
        await asyncio.sleep(0)

    asyncio.run(run())
    log.close()
    assert types_on_disk(path) == ["run.started"]
    assert len(breaks) == 1
    assert [str(u) for u in breaks[0].unrecorded] == [
        "step.ready a", "step.ready b", "step.ready c",
    ]
    assert verify_chain(path).ok


def test_a_commit_moved_behind_a_queued_callback_takes_its_events_too(tmp_path: Path) -> None:
    # The engine queues a step's task (whose first step publishes step.started), then moves
    # the pass's commit behind it: one write for both.
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    writes: list[int] = []
    log.committed = lambda records: writes.append(len(records))  # type: ignore[method-assign]
    fanout = SinkFanout(lambda failure: None)
    fanout.set_audit(AuditSink(log))

    async def two_passes() -> list[str]:
        loop = asyncio.get_running_loop()
        fanout.publish(ready("a"))
        loop.call_soon(fanout.publish, ready("b"))
        fanout.commit_after_queued()
        await asyncio.sleep(0)
        return types_on_disk(path)

    on_disk = asyncio.run(two_passes())
    log.close()
    assert on_disk == ["step.ready a", "step.ready b"]
    assert writes == [2]
