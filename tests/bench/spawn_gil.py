"""Does os.posix_spawn let other threads run while the child starts? Measured, not assumed.

`python tests/bench/spawn_gil.py`: a thread starts `true` 300 times with os.posix_spawn
(reaping them only at the end) while the main thread runs pure Python. A call that
releases the GIL hands it to the main thread and must then wait for it back (the switch
interval, 5 ms): each spawn would take about 5 ms. A call that holds the GIL keeps its
speed (0.1-0.4 ms) and the main thread only runs in the switch intervals between. On
CPython 3.11 the spawns keep their speed: the parent's time blocked in posix_spawn, until
the child has exec'd, cannot overlap the event loop's work by moving the call to another
thread (issue 15's CPU accounting, docs/benchmarks.md).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time

SPAWNS = 300


def main() -> None:
    program = shutil.which("true") or "/bin/true"
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
    env = dict(os.environ)
    pids: list[int] = []
    spent = [0.0]

    def spawner() -> None:
        for _ in range(SPAWNS):
            started = time.perf_counter()
            pids.append(os.posix_spawn(program, (program,), env, file_actions=actions))
            spent[0] += time.perf_counter() - started

    thread = threading.Thread(target=spawner)
    thread.start()
    spins = 0
    while thread.is_alive():
        spins += 1
    for pid in pids:
        os.waitpid(pid, 0)
    per_spawn_ms = spent[0] / SPAWNS * 1e3
    interval_ms = sys.getswitchinterval() * 1e3
    verdict = ("holds the GIL" if per_spawn_ms < interval_ms / 2
               else "releases the GIL")
    print(f"posix_spawn in a thread while the main thread runs Python: {per_spawn_ms:.2f} ms "
          f"a spawn (switch interval {interval_ms:.0f} ms): os.posix_spawn {verdict} "
          f"(Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
