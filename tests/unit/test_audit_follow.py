"""follow() yields records as other processes append them, through watchfiles."""

from __future__ import annotations

import asyncio
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


async def collect(path: Path, count: int, **kwargs: Any) -> list[dict[str, Any]]:
    stop = asyncio.Event()
    seen: list[dict[str, Any]] = []
    async for record in follow(path, stop=stop, **kwargs):
        seen.append(record)
        if len(seen) == count:
            stop.set()
    return seen


async def test_follow_yields_only_new_lines_by_default(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append({"run": "old", "type": "t", "data": {}})
    task = asyncio.create_task(collect(path, 2))
    await asyncio.sleep(0.3)
    await append_in_another_process(path, "new-1", "new-2")
    seen = await asyncio.wait_for(task, 20)
    assert [r["run"] for r in seen] == ["new-1", "new-2"]
    assert [r["seq"] for r in seen] == [2, 3]


async def test_follow_from_start_waits_for_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    path = tmp_path / "later" / "audit.jsonl"
    task = asyncio.create_task(collect(path, 3, from_start=True))
    await asyncio.sleep(0.3)
    await append_in_another_process(path, "a", "b", "c")
    seen = await asyncio.wait_for(task, 20)
    assert [r["run"] for r in seen] == ["a", "b", "c"]


async def test_follow_starts_over_on_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append({"run": "old", "type": "t", "data": {}})
    task = asyncio.create_task(collect(path, 2))
    await asyncio.sleep(0.3)
    await append_in_another_process(path, "before-rotation")
    path.rename(tmp_path / "audit.jsonl.1")
    await append_in_another_process(path, "after-rotation")
    seen = await asyncio.wait_for(task, 20)
    assert [(r["run"], r["seq"]) for r in seen] == [("before-rotation", 2), ("after-rotation", 1)]


async def test_follow_does_not_yield_a_half_written_line_until_it_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")
    task = asyncio.create_task(collect(path, 1))
    await asyncio.sleep(0.3)
    with AuditLog(tmp_path / "source.jsonl") as source:
        source.append({"run": "whole", "type": "t", "data": {}})
    line = (tmp_path / "source.jsonl").read_bytes()
    with path.open("ab", buffering=0) as handle:
        handle.write(line[:20])
        await asyncio.sleep(0.3)
        assert not task.done()
        handle.write(line[20:])
    seen = await asyncio.wait_for(task, 20)
    assert seen[0]["run"] == "whole"


def test_follow_stops_when_asked_even_with_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")

    async def follow_then_stop() -> list[dict[str, Any]]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, stop.set)
        return [record async for record in follow(path, stop=stop)]

    assert asyncio.run(asyncio.wait_for(follow_then_stop(), 20)) == []


async def test_follow_drops_a_torn_line_the_next_writer_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append({"run": "old", "type": "t", "data": {}})
    task = asyncio.create_task(collect(path, 2))
    await asyncio.sleep(0.3)
    with path.open("ab") as handle:
        handle.write(b'{"actor":{"uid":0,"user":"crashed-mid-li')
    await asyncio.sleep(0.3)
    await append_in_another_process(path, "after-crash")
    seen = await asyncio.wait_for(task, 20)
    assert [(r["type"], r["seq"]) for r in seen] == [("audit.recovered_tail", 2), ("step.ready", 3)]
