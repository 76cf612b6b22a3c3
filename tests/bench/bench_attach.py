"""Attaching to a run over its socket (protocol v2): how soon a viewer sees each record, and
how long a new viewer takes to get a 1000-step run's records.

The run is real and elsewhere: `console run --no-tui` in a process of its own, 1000 steps
(`true`, concurrency 8) and then a gated step. An AttachedRun in this process attaches as
soon as the socket appears. Latency: for each event it hands out (its `events()` iterator)
that was made after attaching, the time from the event's `ts` (taken as the run makes the
event, just before appending it; a durable event's fsync counts) to the viewer having it.
Replay: once the run waits at the gate, a new AttachedRun connects; the time from
`connect()` until it holds every record the run had when it said hello. The same for a bare
subscriber that only reads lines (what the socket costs without parsing and folding).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from _common import (
    CONSOLE,
    Figure,
    at_most,
    isolated_state,
    median,
    percentile,
    print_figures,
    reported,
    runs_from_argv,
)

from console.host.attached import AttachedRun
from console.timestamps import parse_ts

STEPS = 1000
CONCURRENCY = 8
MAX_P95_MS = 50.0


def workflow(path: Path) -> Path:
    names = [f"s{i:04d}" for i in range(STEPS)]
    text = [f'[workflow]\nname = "attach-bench"\nconcurrency = {CONCURRENCY}\n']
    text += [f'[steps.{name}]\nrun = ["true"]\n' for name in names]
    text.append(f'[steps.deploy]\nneeds = {json.dumps(names)}\nrun = ["true"]\n'
                "approval = { approvals = 1 }\n")
    path.write_text("\n".join(text))
    return path


async def _until(check: Callable[[], object], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting on the run")
        await asyncio.sleep(0.005)


async def _raw_replay(socket_path: Path, records: int) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=1 << 21)
    writer.write(b'{"op": "subscribe", "since_seq": 0}\n')
    await writer.drain()
    await reader.readline()  # the answer
    for _ in range(records):
        await reader.readline()
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


async def one_run(env: dict[str, str]) -> tuple[list[float], float, float, int]:
    base = Path(env["BENCH_TMP"])
    socket_dir = Path(env["CONSOLE_RUNTIME_DIR"])
    process = subprocess.Popen(
        [*CONSOLE, "run", str(workflow(base / "wf.toml")), "--no-tui"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        await _until(lambda: any(socket_dir.glob("*.sock")))
        socket_path = next(socket_dir.glob("*.sock"))
        viewer = await AttachedRun.connect(socket_path)
        attached_at = datetime.now(UTC)
        latencies: list[float] = []

        async def watch() -> None:
            async for event in viewer.events():
                now = datetime.now(UTC)
                made = parse_ts(event.ts)
                if made >= attached_at:
                    latencies.append((now - made).total_seconds() * 1000)

        watching = asyncio.create_task(watch())
        await _until(lambda: (viewer.state.steps.get("deploy") is not None
                              and viewer.state.steps["deploy"].status == "awaiting_approval"))
        started = time.perf_counter()
        late = await AttachedRun.connect(socket_path)
        last_seq = int(late.hello["last_seq"])
        await _until(lambda: late.last_seq >= last_seq)
        replay_s = time.perf_counter() - started
        records = len(late._history)
        await late.close()
        raw_s = await _raw_replay(socket_path, records)
        verdict = await viewer.approve("deploy", "bench")
        if not verdict.ok:
            raise SystemExit(f"approve refused: {verdict.message}")
        await asyncio.wait_for(viewer.wait(), 60)
        await watching
        return latencies, replay_s, raw_s, records
    finally:
        _, err = process.communicate(timeout=60)
        if process.returncode != 0:
            sys.stderr.write(err.decode(errors="replace"))
            raise SystemExit(f"console run exited {process.returncode}")


def run(runs: int = 5) -> list[Figure]:
    latencies: list[float] = []
    replays: list[float] = []
    raws: list[float] = []
    records = 0
    for _ in range(runs):
        with isolated_state() as env:
            got, replay_s, raw_s, records = asyncio.run(one_run(env))
        latencies += got
        replays.append(replay_s)
        raws.append(raw_s)
    note = f"{len(latencies):,} events over {runs} runs of {STEPS} steps"
    return [
        at_most("attach: record appended -> viewer has it, p95",
                percentile(latencies, 0.95), "ms", MAX_P95_MS, note),
        reported("attach: record appended -> viewer has it, median",
                 median(latencies), "ms"),
        reported("attach: record appended -> viewer has it, max", max(latencies), "ms"),
        reported(f"attach: replay a {STEPS}-step run to a new AttachedRun", median(replays),
                 "s", f"{records:,} records, parsed and folded"),
        reported(f"attach: replay a {STEPS}-step run to a bare subscriber", median(raws), "s",
                 "lines read, nothing parsed"),
    ]


if __name__ == "__main__":
    print_figures("attaching over the socket", run(runs_from_argv(3)))
