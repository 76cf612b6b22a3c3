"""Before and after in one run: this checkout's console against another's, interleaved.

`python tests/bench/bench_compare.py BEFORE [RUNS]`, BEFORE a checkout of an earlier commit
(`git worktree add /tmp/before COMMIT`, or `git archive COMMIT | tar -x -C /tmp/before`).
Each repetition runs, back to back on the same machine state: the earlier console, this
one, and the pidfd floor, on each scheduler shape (bench_scheduler's shapes, concurrency
2); then command to first step started (a one-step workflow and the 200-step chain) for
both consoles. Every figure is a median; every ratio the median of per-repetition ratios.
Both consoles run with this interpreter and compiled bytecode, their state in temp dirs.
"""

from __future__ import annotations

import compileall
import os
import sys
import tempfile
from pathlib import Path

from _common import (
    BENCH_DIR,
    PYTHON,
    Figure,
    isolated_state,
    median,
    print_figures,
    reported,
    timed_child,
)
from bench_viewers import spawn_until_record
from own_cpu import read_own_cpu
from shapes import SHAPES, write_shape

CONCURRENCY = 2
OWN_CPU = BENCH_DIR / "own_cpu.py"


def _env(base: dict[str, str], tree: Path) -> dict[str, str]:
    return {**base, "PYTHONPATH": str(tree)}


def run(before: Path, runs: int = 5) -> list[Figure]:
    after = BENCH_DIR.parents[1]
    before = before.resolve()
    compileall.compile_dir(before / "console", quiet=1)
    trees = {"before": before, "after": after}
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="console-bench-compare-") as tmp:
        os.chdir(tmp)  # `python -m console` would find a console package in the cwd first
        for name, build in SHAPES.items():
            toml_path, _ = write_shape(Path(tmp), name, build(), CONCURRENCY)
            walls: dict[str, list[float]] = {"before": [], "after": [], "pidfd": []}
            own: dict[str, list[float]] = {"before": [], "after": [], "pidfd": []}
            steps_cpu: list[float] = []
            ratios: dict[str, list[float]] = {"before": [], "after": []}
            rss: dict[str, list[float]] = {"before": [], "after": []}
            cpu_file = str(Path(tmp) / "own-cpu")
            for _ in range(runs):
                pidfd = timed_child([PYTHON, str(OWN_CPU), cpu_file,
                                     str(BENCH_DIR / "pidfd_floor.py"), str(toml_path),
                                     str(CONCURRENCY)])
                walls["pidfd"].append(pidfd.wall_s)
                own["pidfd"].append(read_own_cpu(cpu_file))
                steps_cpu.append(pidfd.cpu_s - own["pidfd"][-1])
                for label, tree in trees.items():
                    with isolated_state() as env:
                        got = timed_child([PYTHON, str(OWN_CPU), cpu_file, "-m", "console",
                                           "run", str(toml_path), "--no-tui"],
                                          _env(env, tree))
                    if got.returncode != 0:
                        raise SystemExit(f"{label}: console run {name} exited {got.returncode}")
                    walls[label].append(got.wall_s)
                    own[label].append(read_own_cpu(cpu_file))
                    ratios[label].append(got.wall_s / pidfd.wall_s)
                    rss[label].append(got.max_rss_mib)
            figures.append(reported(f"{name}: pidfd floor", median(walls["pidfd"]), "s"))
            figures.append(reported(f"{name}: the steps' CPU", median(steps_cpu), "s",
                                    "the `true` processes, as the floor reaps them"))
            figures.append(reported(f"{name}: pidfd floor's own CPU", median(own["pidfd"]),
                                    "s"))
            for label in trees:
                figures.append(reported(f"{name}: console {label}", median(walls[label]), "s"))
                figures.append(reported(f"{name}: console {label} / pidfd floor",
                                        median(ratios[label]), "x"))
                figures.append(reported(f"{name}: console {label} own CPU",
                                        median(own[label]), "s", "start-up included"))
                figures.append(reported(f"{name}: console {label} peak RSS", max(rss[label]),
                                        "MiB"))
        one = Path(tmp) / "one.toml"
        one.write_text('[workflow]\nname = "one"\n\n[steps.only]\nrun = ["true"]\n')
        chained, _ = write_shape(Path(tmp), "chain", SHAPES["chain"](), CONCURRENCY)
        for what, path in (("1 step", one), ("chain 200", chained)):
            firsts: dict[str, list[float]] = {"before": [], "after": []}
            for _ in range(2 * runs):
                for label, tree in trees.items():
                    with isolated_state() as env:
                        took, process = spawn_until_record(
                            [PYTHON, "-m", "console", "run", str(path), "--no-tui"],
                            _env(env, tree), "step.started", 0.001)
                        process.wait()
                    firsts[label].append(took)
            for label in trees:
                figures.append(reported(f"command -> first step, {what}: {label}",
                                        median(firsts[label]), "s"))
    return figures


if __name__ == "__main__":
    if len(sys.argv) < 2 or not (Path(sys.argv[1]) / "console").is_dir():
        raise SystemExit("usage: bench_compare.py BEFORE_CHECKOUT [RUNS]")
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print_figures(f"before ({sys.argv[1]}) and after, interleaved", run(Path(sys.argv[1]),
                                                                       count))
