"""The Python floor without an event loop: posix_spawn, a pidfd per child, one selector.

`python pidfd_floor.py WORKFLOW.toml CONCURRENCY` reads the same file the console runs
(steps with `run` as an argv list and `needs`), spawns each step once its needs have
succeeded, at most CONCURRENCY at once, its stdout and stderr to /dev/null, and exits 1 if
any step failed. Each child is waited for through a pidfd in a `selectors` selector and
reaped with waitpid: about as few system calls per step as a Python runner can make. No
logs, no audit, no policy, no process groups: what any Python runner has to pay, and
nothing else. The asyncio floor (floor.py) is the same job on an event loop.
"""

from __future__ import annotations

import graphlib
import os
import selectors
import shutil
import sys
import tomllib


def run_workflow(steps: dict[str, dict[str, object]], concurrency: int) -> int:
    order = graphlib.TopologicalSorter(
        {name: list(step.get("needs", [])) for name, step in steps.items()}  # type: ignore[call-overload]
    )
    order.prepare()
    selector = selectors.DefaultSelector()
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [
        (os.POSIX_SPAWN_DUP2, devnull, 0),
        (os.POSIX_SPAWN_DUP2, devnull, 1),
        (os.POSIX_SPAWN_DUP2, devnull, 2),
    ]
    programs: dict[str, str] = {}
    ready: list[str] = []
    running = 0
    failed = False
    while order.is_active() and not failed:
        ready.extend(order.get_ready())
        while ready and running < concurrency:
            name = ready.pop(0)
            argv = [str(arg) for arg in steps[name]["run"]]  # type: ignore[attr-defined]
            program = programs.get(argv[0]) or shutil.which(argv[0]) or argv[0]
            programs[argv[0]] = program
            pid = os.posix_spawn(program, argv, os.environ, file_actions=actions)
            selector.register(os.pidfd_open(pid), selectors.EVENT_READ, (name, pid))
            running += 1
        for key, _ in selector.select():
            name, pid = key.data
            selector.unregister(key.fd)
            os.close(key.fd)
            _, status = os.waitpid(pid, 0)
            running -= 1
            failed = failed or os.waitstatus_to_exitcode(status) != 0
            order.done(name)
    while running:
        for key, _ in selector.select():
            selector.unregister(key.fd)
            os.close(key.fd)
            os.waitpid(key.data[1], 0)
            running -= 1
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    with open(argv[1], "rb") as file:
        steps = tomllib.load(file)["steps"]
    return run_workflow(steps, int(argv[2]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
