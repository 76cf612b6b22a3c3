"""Command to first step started, this checkout against another, paired (issue 15).

`python tests/bench/bench_startup.py BEFORE [RUNS]`, BEFORE a checkout of an earlier commit
(`git worktree add /tmp/before COMMIT`). Each repetition times `console run FILE --no-tui`
from spawn until the first `step.started` record is in the audit file (bench_viewers'
spawn_until_record, polled every 1 ms) for a one-step workflow and the 200-step chain, each
in a new state (new bytes: validated first) and with the plan kept by an untimed first run
(its audit and run logs removed), the two consoles back to back, the first of the two
alternating. Then, untimed, the peak RSS of the console process itself (RUSAGE_SELF at its
exit) and of the largest process it reaped (its steps, and on the new-bytes path of this
checkout the child that validated), new bytes, for one step and the 1000-step layered
shape (concurrency 2). The kernel gives a step spawned through vfork the peak of the
memory it leaves at exec, its parent's; a forked child's peak counts the pages it shares
with its parent. Both consoles run with this interpreter and compiled bytecode, their state
in temp dirs, from a neutral directory.
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import (
    BENCH_DIR,
    PYTHON,
    Figure,
    isolated_state,
    median,
    percentile,
    print_figures,
    reported,
)
from bench_viewers import spawn_until_record
from shapes import SHAPES, write_shape

# Runs the console as `python -m console` does; at its exit (atexit: the console's own
# exit runs it) appends "self children" peak RSS in KiB to the file named first.
_RSS = (
    "import atexit, resource, runpy, sys\n"
    "out = sys.argv.pop(1)\n"
    "def said():\n"
    "    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "    with open(out, 'a') as file:\n"
    "        file.write(f'{own} {children}\\n')\n"
    "atexit.register(said)\n"
    "runpy.run_module('console', run_name='__main__', alter_sys=True)\n"
)


def _env(base: dict[str, str], tree: Path) -> dict[str, str]:
    return {**base, "PYTHONPATH": str(tree)}


def _keep_plan(path: Path, env: dict[str, str]) -> None:
    warm = subprocess.run([PYTHON, "-m", "console", "run", str(path), "--no-tui"], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if warm.returncode != 0:
        raise SystemExit(f"console exited {warm.returncode}: {warm.stderr[-2000:]!r}")
    state = Path(env["XDG_STATE_HOME"]) / "console"
    (state / "audit.jsonl").unlink()
    shutil.rmtree(state / "runs")


def first_step(path: Path, tree: Path, kept: bool) -> float:
    with isolated_state() as base:
        env = _env(base, tree)
        if kept:
            _keep_plan(path, env)
        took, process = spawn_until_record(
            [PYTHON, "-m", "console", "run", str(path), "--no-tui"], env, "step.started", 0.001)
        if process.wait(timeout=120) != 0:
            raise SystemExit(f"{tree}: console run {path.name} exited {process.returncode}")
    return took


def peak_rss(path: Path, tree: Path, out: Path) -> tuple[float, float]:
    """MiB: the console process's own peak, and the largest of what it reaped."""
    with isolated_state() as base:
        subprocess.run([PYTHON, "-c", _RSS, str(out), "run", str(path), "--no-tui"],
                       env=_env(base, tree), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, check=True)
    own, children = out.read_text().split()[-2:]
    return int(own) / 1024, int(children) / 1024


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
                measured = [peak_rss(path, tree, out) for _ in range(3)]
                figures.append(reported(f"peak RSS, {what}, new bytes: {label}, the console",
                                        median([own for own, _ in measured]), "MiB"))
                figures.append(reported(f"peak RSS, {what}, new bytes: {label}, largest child",
                                        median([child for _, child in measured]), "MiB",
                                        "after: the validating child"))
    return figures


if __name__ == "__main__":
    if len(sys.argv) < 2 or not (Path(sys.argv[1]) / "console").is_dir():
        raise SystemExit("usage: bench_startup.py BEFORE_CHECKOUT [RUNS]")
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    print_figures(f"command -> first step started, before ({sys.argv[1]}) and after",
                  run(Path(sys.argv[1]), count))
