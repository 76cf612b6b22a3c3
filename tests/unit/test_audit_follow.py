"""follow() yields records as other processes append them, through watchfiles."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from console.audit.follow import follow
from console.audit.log import AuditLog

APPEND = (
    "import sys\n"
    "from console.audit.log import AuditLog\n"
    "with AuditLog(sys.argv[1]) as log:\n"
    "    for name in sys.argv[2:]:\n"
    "        log.append({'run': name, 'type': 'step.ready', 'data': {}})\n"
)


async def append_in_another_process(path: Path, *runs: str) -> None:
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", APPEND, str(path), *runs)
    assert await process.wait() == 0


async def collect(
    path: Path, count: int, stop: asyncio.Event | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    stop = stop or asyncio.Event()
    seen: list[dict[str, Any]] = []
    async for record in follow(path, stop=stop, **kwargs):
        seen.append(record)
        if len(seen) == count:
            stop.set()
    return seen


async def until_ready(ready: asyncio.Event, follower: asyncio.Future[Any]) -> None:
    """Wait for `ready`; a follower that failed first raises its error here."""
    waiting = asyncio.ensure_future(ready.wait())
    try:
        await asyncio.wait({waiting, follower}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if follower.done():
        follower.result()
    assert ready.is_set(), "follow() did not say it was ready within 20 s"


async def start_collecting(path: Path, count: int, **kwargs: Any) -> asyncio.Task[Any]:
    ready = asyncio.Event()
    task = asyncio.create_task(collect(path, count, ready=ready, **kwargs))
    await until_ready(ready, task)
    return task


async def test_follow_yields_only_new_lines_by_default(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append({"run": "old", "type": "t", "data": {}})
    task = await start_collecting(path, 2)
    await append_in_another_process(path, "new-1", "new-2")
    seen = await asyncio.wait_for(task, 20)
    assert [r["run"] for r in seen] == ["new-1", "new-2"]
    assert [r["seq"] for r in seen] == [2, 3]


async def test_follow_from_start_waits_for_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    path = tmp_path / "later" / "audit.jsonl"
    task = await start_collecting(path, 3, from_start=True)
    await append_in_another_process(path, "a", "b", "c")
    seen = await asyncio.wait_for(task, 20)
    assert [r["run"] for r in seen] == ["a", "b", "c"]


async def test_follow_starts_over_on_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append({"run": "old", "type": "t", "data": {}})
    task = await start_collecting(path, 2)
    await append_in_another_process(path, "before-rotation")
    path.rename(tmp_path / "audit.jsonl.1")
    await append_in_another_process(path, "after-rotation")
    seen = await asyncio.wait_for(task, 20)
    assert [(r["run"], r["seq"]) for r in seen] == [("before-rotation", 2), ("after-rotation", 1)]


async def test_follow_does_not_yield_a_half_written_line_until_it_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")
    with AuditLog(tmp_path / "source.jsonl") as source:
        source.append({"run": "first", "type": "t", "data": {}})
        source.append({"run": "second", "type": "t", "data": {}})
    first, second = (tmp_path / "source.jsonl").read_bytes().splitlines(keepends=True)
    ready = asyncio.Event()
    records = follow(path, ready=ready)
    next_record = asyncio.ensure_future(anext(records))
    try:
        await until_ready(ready, next_record)
        with path.open("ab", buffering=0) as handle:
            # One write: the follower reads the half line in the same look as the whole one.
            handle.write(first + second[:20])
            assert (await asyncio.wait_for(next_record, 20))["run"] == "first"
            handle.write(second[20:])
        assert (await asyncio.wait_for(anext(records), 20))["run"] == "second"
    finally:
        next_record.cancel()
        await asyncio.wait({next_record})
        await records.aclose()


def test_follow_stops_when_asked_even_with_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")

    async def follow_then_stop() -> list[dict[str, Any]]:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(collect(path, 1, stop=stop, ready=ready))
        await until_ready(ready, task)
        stop.set()
        result: list[dict[str, Any]] = await task
        return result

    assert asyncio.run(asyncio.wait_for(follow_then_stop(), 20)) == []


async def test_follow_drops_a_torn_line_the_next_writer_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append({"run": "old", "type": "t", "data": {}})
    with path.open("ab") as handle:
        handle.write(b'{"actor":{"uid":0,"user":"crashed-mid-li')
    # From the start: the follower reads the torn line in the same look as "old", so once
    # "old" is out it holds that torn line as the start of one still being written.
    records = follow(path, from_start=True)
    try:
        assert (await asyncio.wait_for(anext(records), 20))["run"] == "old"
        await append_in_another_process(path, "after-crash")
        seen = [await asyncio.wait_for(anext(records), 20) for _ in range(2)]
    finally:
        await records.aclose()
    assert [(r["type"], r["seq"]) for r in seen] == [("audit.recovered_tail", 2), ("step.ready", 3)]
    # Whole records, not just type and seq: the torn bytes glued to the next line can parse.
    assert seen == [json.loads(line) for line in path.read_bytes().splitlines()[1:]]
