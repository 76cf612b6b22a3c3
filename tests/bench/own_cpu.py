"""Run a Python program and write its own CPU time (not its children's) to a file at exit.

`python own_cpu.py OUT -m module args...` or `python own_cpu.py OUT script.py args...`:
runs the module or script as `python -m` or `python script.py` would, and at exit (atexit:
the console's os._exit path runs it too) appends "user system" seconds of RUSAGE_SELF to
OUT. The steps a console runs are its children: their CPU is not in the figure.
"""

from __future__ import annotations

import atexit
import resource
import runpy
import sys


def _write(out: str) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "a") as file:
        file.write(f"{usage.ru_utime} {usage.ru_stime}\n")


def main() -> None:
    out, *rest = sys.argv[1:]
    atexit.register(_write, out)
    if rest[0] == "-m":
        sys.argv = [rest[1], *rest[2:]]
        runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = rest
        runpy.run_path(rest[0], run_name="__main__")


def read_own_cpu(out: str) -> float:
    """user + system seconds that `out` holds (the last line written)."""
    with open(out) as file:
        user, system = file.read().split()[-2:]
    return float(user) + float(system)


if __name__ == "__main__":
    main()
