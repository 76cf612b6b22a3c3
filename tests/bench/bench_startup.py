"""Command to first step started, this checkout against another, paired (issue 15).

`python tests/bench/bench_startup.py BEFORE [RUNS]`, BEFORE a checkout of an earlier commit
(`git worktree add /tmp/before COMMIT`). Each repetition times `console run FILE --no-tui`
from spawn until the first `step.started` record is in the audit file (bench_viewers'
spawn_until_record, polled every 1 ms) for a one-step workflow and the 200-step chain, each
in a new state (new bytes: validated first) and with the plan kept by an untimed first run
(its audit and run logs removed), the two consoles back to back, the first of the two
alternating. Then, untimed, new bytes, for one step and the 1000-step layered shape
(concurrency 2): the peak RSS and the CPU of the console process itself (RUSAGE_SELF at its
exit) and of what it reaped (RUSAGE_CHILDREN: its steps, and on this checkout's new-bytes
path the child that validated; for RSS, the largest one's peak). The kernel gives a step
spawned through vfork the peak of the memory it leaves at exec, its parent's; a forked
child's peak counts the pages it shares with its parent. Both consoles run with this
interpreter and compiled bytecode, their state in temp dirs, from a neutral directory.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import (
    BENCH_DIR,
    PYTHON,
    Figure,
    isolated_state,
    keep_plan,
    median,
    percentile,
    print_figures,
    reported,
)
from bench_viewers import spawn_until_record
from shapes import SHAPES, write_shape

# Runs the console as `python -m console` does; at its exit (atexit: the console's own
# exit runs it) appends to the file named first the peak RSS in KiB and the CPU seconds
# (user + system) of the console itself and of what it reaped: "rss rss_children cpu
# cpu_children".
_USAGE = (
    "import atexit, resource, runpy, sys\n"
    "out = sys.argv.pop(1)\n"
    "def said():\n"
    "    own = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    kids = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "    with open(out, 'a') as file:\n"
    "        file.write(f'{own.ru_maxrss} {kids.ru_maxrss} {own.ru_utime + own.ru_stime} '\n"
    "                   f'{kids.ru_utime + kids.ru_stime}\\n')\n"
    "atexit.register(said)\n"
    "runpy.run_module('console', run_name='__main__', alter_sys=True)\n"
)


def _env(base: dict[str, str], tree: Path) -> dict[str, str]:
    return {**base, "PYTHONPATH": str(tree)}


def first_step(path: Path, tree: Path, kept: bool) -> float:
    with isolated_state() as base:
        env = _env(base, tree)
        if kept:
            keep_plan([PYTHON, "-m", "console"], path, env)
        took, process = spawn_until_record(
            [PYTHON, "-m", "console", "run", str(path), "--no-tui"], env, "step.started", 0.001)
        if process.wait(timeout=120) != 0:
            raise SystemExit(f"{tree}: console run {path.name} exited {process.returncode}")
    return took


def usage(path: Path, tree: Path, out: Path) -> tuple[float, float, float, float]:
    """Peak RSS in MiB of the console process and of the largest of what it reaped; CPU
    seconds of the console and of what it reaped."""
    with isolated_state() as base:
        subprocess.run([PYTHON, "-c", _USAGE, str(out), "run", str(path), "--no-tui"],
                       env=_env(base, tree), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, check=True)
    rss, rss_children, cpu, cpu_children = out.read_text().split()[-4:]
    return int(rss) / 1024, int(rss_children) / 1024, float(cpu), float(cpu_children)


def spread(values: list[float]) -> str:
    return f"min {min(values):.3f}, p90 {percentile(values, 0.9):.3f}, n={len(values)}"


def run(before: Path, runs: int = 10) -> list[Figure]:
    after = BENCH_DIR.parents[1]
    before = before.resolve()
    compileall.compile_dir(before / "console", quiet=1)
    trees = {"before": before, "after": after}
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="console-bench-startup-") as tmp:
        os.chdir(tmp)  # `python -m console` would find a console package in the cwd first
        one = Path(tmp) / "one.toml"
        one.write_text('[workflow]\nname = "one"\n\n[steps.only]\nrun = ["true"]\n')
        chained, _ = write_shape(Path(tmp), "chain", SHAPES["chain"](), 2)
        cases = [(f"{what}, {state}", path, state == "plan kept")
                 for what, path in (("1 step", one), ("chain 200", chained))
                 for state in ("new bytes", "plan kept")]
        times: dict[tuple[str, str], list[float]] = {
            (case, label): [] for case, _, _ in cases for label in trees}
        for repetition in range(runs):
            order = list(trees) if repetition % 2 == 0 else list(reversed(trees))
            for case, path, kept in cases:
                for label in order:
                    times[case, label].append(first_step(path, trees[label], kept))
        for case, _, _ in cases:
            pairs = [a / b for a, b in
                     zip(times[case, "after"], times[case, "before"], strict=True)]
            for label in trees:
                figures.append(reported(f"command -> first step, {case}: {label}",
                                        median(times[case, label]), "s",
                                        spread(times[case, label])))
            figures.append(reported(f"command -> first step, {case}: after / before",
                                    median(pairs), "x", "median of paired ratios"))
        out = Path(tmp) / "rss"
        layered, _ = write_shape(Path(tmp), "layered", SHAPES["layered"](), 2)
        for what, path in (("1 step", one), ("layered 1000", layered)):
            for label, tree in trees.items():
                measured = [usage(path, tree, out) for _ in range(5)]
                figures.append(reported(f"peak RSS, {what}, new bytes: {label}, the console",
                                        median([m[0] for m in measured]), "MiB"))
                figures.append(reported(f"peak RSS, {what}, new bytes: {label}, largest child",
                                        median([m[1] for m in measured]), "MiB",
                                        "after: the validating child"))
                figures.append(reported(f"CPU, {what}, new bytes: {label}, the console",
                                        median([m[2] for m in measured]), "s"))
                figures.append(reported(f"CPU, {what}, new bytes: {label}, what it reaped",
                                        median([m[3] for m in measured]), "s",
                                        "its steps; after: and the validating child"))
    return figures


if __name__ == "__main__":
    if len(sys.argv) < 2 or not (Path(sys.argv[1]) / "console").is_dir():
        raise SystemExit("usage: bench_startup.py BEFORE_CHECKOUT [RUNS]")
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    print_figures(f"command -> first step started, before ({sys.argv[1]}) and after",
                  run(Path(sys.argv[1]), count))
