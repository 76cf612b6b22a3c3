"""Run every benchmark and print one table: figure, value, target, pass/miss.

`python tests/bench/run_all.py [RUNS]` (RUNS defaults to 5; each figure is a median).
Exits 1 if any target was missed.
"""

from __future__ import annotations

import sys
import time

import bench_attach
import bench_audit
import bench_fleet
import bench_flood
import bench_loading
import bench_scheduler
import bench_ui
import bench_viewers
from _common import Figure, load_note, print_table, runs_from_argv

BENCHMARKS = [
    ("scheduler overhead", bench_scheduler.run),
    ("loading", bench_loading.run),
    ("audit trail", bench_audit.run),
    ("UI", bench_ui.run),
    ("under a flood", bench_flood.run),
    ("attaching over the socket", bench_attach.run),
    ("runs in a host, viewers attached", bench_viewers.run),
    ("steps on 50 hosts", bench_fleet.run),
]


def main() -> int:
    runs = runs_from_argv()
    figures: list[Figure] = []
    started = time.perf_counter()
    print(f"console benchmarks, median of {runs} runs; {load_note()} at start", flush=True)
    for title, bench in BENCHMARKS:
        print(f"... {title}", flush=True)
        figures += bench(runs)
    print(f"\nall benchmarks in {time.perf_counter() - started:.0f} s; {load_note()} at end\n")
    print_table(figures)
    missed = [f for f in figures if f.passed is False]
    print(f"\n{len(figures) - len(missed)} of {len(figures)} figures met or untargeted; "
          f"{len(missed)} missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
