"""Scheduler overhead: `console run --no-tui` against three Python floors and `make -j2`.

Three shapes (wide 1000, layered 10x100 with two needs each, chain 200), concurrency 2,
every step `true`. The floors: `pidfd_floor.py` (posix_spawn, pidfds, a selector, no event
loop: the least a Python runner can do; the issue-15 targets are against it),
`loop_pidfd_floor.py` (the same on an asyncio loop's add_reader: the least a runner on
asyncio can do) and `floor.py` (the bare asyncio runner with create_subprocess_exec). Each
repetition runs the five runners back to back on the same shape (interleaved, so load
from elsewhere hits them alike); figures are medians of the wall times, each ratio is the
median of the per-repetition ratios. The console runs as a real subprocess with audit
writes and step logs, its state in a temp dir. Peak RSS is wait4's ru_maxrss for the
console process on the wide shape.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from _common import (
    BENCH_DIR,
    CONSOLE,
    PYTHON,
    Figure,
    at_most,
    isolated_state,
    median,
    print_figures,
    reported,
    runs_from_argv,
    timed_child,
)
from shapes import SHAPES, write_shape

CONCURRENCY = 2
# console / pidfd floor, per shape (issue 15): the chain is mostly start-up.
MAX_PIDFD_RATIO = {"wide": 1.25, "layered": 1.25, "chain": 1.5}
MAX_RSS_MIB = 45.0


def run(runs: int = 5) -> list[Figure]:
    figures: list[Figure] = []
    make = shutil.which("make")
    with tempfile.TemporaryDirectory(prefix="console-bench-shapes-") as tmp:
        for name, build in SHAPES.items():
            graph = build()
            toml_path, make_path = write_shape(Path(tmp), name, graph, CONCURRENCY)
            console_s: list[float] = []
            floor_s: list[float] = []
            pidfd_s: list[float] = []
            make_s: list[float] = []
            ratios: list[float] = []
            pidfd_ratios: list[float] = []
            loop_s: list[float] = []
            loop_ratios: list[float] = []
            rss: list[float] = []
            for _ in range(runs):
                with isolated_state() as env:
                    got = timed_child([*CONSOLE, "run", str(toml_path), "--no-tui"], env)
                if got.returncode != 0:
                    raise SystemExit(f"console run {toml_path} exited {got.returncode}")
                floor = timed_child([PYTHON, str(BENCH_DIR / "floor.py"), str(toml_path),
                                     str(CONCURRENCY)])
                if floor.returncode != 0:
                    raise SystemExit(f"floor.py {toml_path} exited {floor.returncode}")
                pidfd = timed_child([PYTHON, str(BENCH_DIR / "pidfd_floor.py"), str(toml_path),
                                     str(CONCURRENCY)])
                if pidfd.returncode != 0:
                    raise SystemExit(f"pidfd_floor.py {toml_path} exited {pidfd.returncode}")
                looped = timed_child([PYTHON, str(BENCH_DIR / "loop_pidfd_floor.py"),
                                      str(toml_path), str(CONCURRENCY)])
                if looped.returncode != 0:
                    raise SystemExit(f"loop_pidfd_floor.py {toml_path} exited "
                                     f"{looped.returncode}")
                loop_s.append(looped.wall_s)
                loop_ratios.append(looped.wall_s / pidfd.wall_s)
                console_s.append(got.wall_s)
                floor_s.append(floor.wall_s)
                pidfd_s.append(pidfd.wall_s)
                ratios.append(got.wall_s / floor.wall_s)
                pidfd_ratios.append(got.wall_s / pidfd.wall_s)
                rss.append(got.max_rss_mib)
                if make is not None:
                    made = timed_child([make, "-s", "-j", str(CONCURRENCY), "-f", str(make_path)])
                    make_s.append(made.wall_s)
            steps = len(graph)
            figures.append(reported(f"{name}: console run --no-tui", median(console_s), "s",
                                    f"{steps} steps"))
            figures.append(reported(f"{name}: pidfd floor", median(pidfd_s), "s"))
            figures.append(reported(f"{name}: pidfd floor on asyncio", median(loop_s), "s"))
            figures.append(reported(f"{name}: asyncio floor", median(floor_s), "s"))
            if make_s:
                figures.append(reported(f"{name}: make -j{CONCURRENCY}", median(make_s), "s"))
                figures.append(reported(f"{name}: console / make",
                                        median(console_s) / median(make_s), "x"))
            figures.append(at_most(f"{name}: console / pidfd floor", median(pidfd_ratios), "x",
                                   MAX_PIDFD_RATIO[name]))
            figures.append(reported(f"{name}: pidfd floor on asyncio / pidfd floor",
                                    median(loop_ratios), "x",
                                    "the least an asyncio runner pays"))
            figures.append(reported(f"{name}: console / asyncio floor", median(ratios), "x"))
            if steps >= 1000:
                figures.append(at_most(f"{name}: console peak RSS", max(rss), "MiB",
                                       MAX_RSS_MIB, f"largest of {runs} runs"))
    return figures


if __name__ == "__main__":
    print_figures("scheduler overhead, concurrency 2", run(runs_from_argv()))
