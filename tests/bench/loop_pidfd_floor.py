"""The pidfd floor on an asyncio event loop: what the loop itself costs a runner.

`python loop_pidfd_floor.py WORKFLOW.toml CONCURRENCY` does what pidfd_floor.py does (each
step with os.posix_spawn, its own session, stdout and stderr to /dev/null, waited for
through a pidfd) but waits on the pidfds with the loop's `add_reader` instead of a
selector loop of its own. No tasks, no futures, no logs, no audit: the least a runner
built on asyncio (as the console is, for its control socket, gates and SSH steps) pays.
Its distance from pidfd_floor.py is the loop's start-up and per-step cost, which no
console on asyncio can go below.
"""

from __future__ import annotations

import asyncio
import graphlib
import os
import shutil
import sys
import tomllib
from typing import Any


async def run_workflow(steps: dict[str, Any], concurrency: int) -> int:
    loop = asyncio.get_running_loop()
    order = graphlib.TopologicalSorter(
        {name: list(step.get("needs", [])) for name, step in steps.items()})
    order.prepare()
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
    programs: dict[str, str] = {}
    ready: list[str] = []
    running = 0
    failed = False
    finished = loop.create_future()

    def reap(pidfd: int, pid: int, name: str) -> None:
        nonlocal running, failed
        loop.remove_reader(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        running -= 1
        if os.waitstatus_to_exitcode(status) != 0:
            failed = True
        else:
            order.done(name)
        start_ready()

    def start_ready() -> None:
        nonlocal running
        if not failed:
            ready.extend(order.get_ready())
        while ready and running < concurrency and not failed:
            name = ready.pop(0)
            argv = [str(arg) for arg in steps[name]["run"]]
            program = programs.get(argv[0]) or shutil.which(argv[0]) or argv[0]
            programs[argv[0]] = program
            pid = os.posix_spawn(program, argv, os.environ, file_actions=actions, setsid=True)
            pidfd = os.pidfd_open(pid)
            loop.add_reader(pidfd, reap, pidfd, pid, name)
            running += 1
        if running == 0 and not finished.done():
            finished.set_result(None)

    start_ready()
    await finished
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    with open(argv[1], "rb") as file:
        steps = tomllib.load(file)["steps"]
    return asyncio.run(run_workflow(steps, int(argv[2])))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
