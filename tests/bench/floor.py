"""The floor the console is measured against: a bare asyncio DAG runner in about 40 lines.

`python floor.py WORKFLOW.toml CONCURRENCY` reads the same file the console runs (steps
with `run` as an argv list and `needs`), starts each step with create_subprocess_exec once
its needs have succeeded, at most CONCURRENCY at once, and exits 1 if any step failed.
No logs, no audit, no policy: what any runner has to pay, and nothing else.
"""

from __future__ import annotations

import asyncio
import graphlib
import sys
import tomllib
from typing import Any


async def run_workflow(steps: dict[str, Any], concurrency: int) -> int:
    order = graphlib.TopologicalSorter({name: s.get("needs", []) for name, s in steps.items()})
    order.prepare()
    slots = asyncio.Semaphore(concurrency)

    async def run_step(name: str) -> tuple[str, int]:
        async with slots:
            process = await asyncio.create_subprocess_exec(*steps[name]["run"])
            return name, await process.wait()

    running: set[asyncio.Task[tuple[str, int]]] = set()
    failed = False
    while order.is_active() and not failed:
        running.update(asyncio.create_task(run_step(name)) for name in order.get_ready())
        done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            name, code = task.result()
            failed = failed or code != 0
            order.done(name)
    await asyncio.gather(*running)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    with open(argv[1], "rb") as file:
        steps = tomllib.load(file)["steps"]
    return asyncio.run(run_workflow(steps, int(argv[2])))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
