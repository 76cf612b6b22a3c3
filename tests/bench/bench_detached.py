"""A detached run's cost per step, this checkout against another, interleaved (issue 15).

`python tests/bench/bench_detached.py BEFORE [RUNS]`, BEFORE a checkout of an earlier commit
(`git worktree add --detach /tmp/before COMMIT`). Each repetition runs, back to back and in
alternating order, `console run FILE --detach` of both consoles on the wide shape (1000
`true` steps, concurrency 2) and on a one-step workflow. For each run: the wall time from
the command to the host's exit and to its `run.finished` record (the record's timestamp),
and the run host's own CPU (user + system of the host process alone, not its steps: read
from /proc/PID/stat once it has exited and before it is reaped; this script is the
children's subreaper, so the host becomes its child when `console run --detach` exits).
Per step: (wide - one step) / 999, per run, then the median. Every figure is a median; the
paired figure is the median of per-repetition differences.
"""

from __future__ import annotations

import compileall
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import PYTHON, Figure, isolated_state, median, print_figures, reported
from shapes import SHAPES, write_shape

CONCURRENCY = 2
PR_SET_CHILD_SUBREAPER = 36
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _own_cpu_s(pid: int) -> float:
    """utime + stime of the process alone (a zombie's are final)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def _reap_others() -> None:
    """The hosts' watchdogs, reparented here when their host exits."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _end_record_ts(audit: Path) -> float:
    for line in reversed(audit.read_text().splitlines()):
        if '"type":"run.finished"' in line.replace(" ", ""):
            stamp = line.split('"ts":')[1].split('"')[1]
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    raise SystemExit(f"no run.finished in {audit}")


def detached_run(tree: Path, workflow: Path) -> tuple[float, float, float]:
    """(wall to the host's exit, wall to run.finished, the host's own CPU), in seconds."""
    with isolated_state() as env:
        env["PYTHONPATH"] = str(tree)
        audit = Path(env["BENCH_TMP"]) / "audit.jsonl"
        start_wall = time.time()
        start = time.perf_counter()
        done = subprocess.run([PYTHON, "-m", "console", "run", str(workflow), "--detach",
                               "--audit", str(audit)], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{tree}: console run --detach exited {done.returncode}: "
                             f"{done.stderr}")
        pid = int(done.stdout.split("(pid ")[1].split(")")[0])
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        to_exit = time.perf_counter() - start
        cpu = _own_cpu_s(pid)
        os.waitpid(pid, 0)
        _reap_others()
        to_record = _end_record_ts(audit) - start_wall
    return to_exit, to_record, cpu


def run(before: Path, runs: int = 5) -> list[Figure]:
    after = Path(__file__).resolve().parents[2]
    before = before.resolve()
    compileall.compile_dir(before / "console", quiet=1)
    trees = {"before": before, "after": after}
    _become_subreaper()
    got: dict[tuple[str, str], list[tuple[float, float, float]]] = {
        (label, shape): [] for label in trees for shape in ("wide", "one")
    }
    with tempfile.TemporaryDirectory(prefix="console-bench-detached-") as tmp:
        os.chdir(tmp)  # `python -m console` would find a console package in the cwd first
        wide, _ = write_shape(Path(tmp), "wide", SHAPES["wide"](), CONCURRENCY)
        one = Path(tmp) / "one.toml"
        one.write_text('[workflow]\nname = "one"\n\n[steps.only]\nrun = ["true"]\n')
        for repetition in range(runs):
            order = list(trees.items())
            if repetition % 2:
                order.reverse()
            for label, tree in order:
                got[label, "wide"].append(detached_run(tree, wide))
                got[label, "one"].append(detached_run(tree, one))
    steps = len(SHAPES["wide"]()) - 1
    per_step: dict[str, list[list[float]]] = {
        label: [[(w - o) / steps for w, o in zip(wide_run, one_run, strict=True)]
                for wide_run, one_run in zip(got[label, "wide"], got[label, "one"], strict=True)]
        for label in trees
    }
    figures: list[Figure] = []
    names = ("wall to the host's exit", "wall to run.finished", "host's own CPU")
    for index, what in enumerate(names):
        for label in trees:
            figures.append(reported(f"wide 1000, {what}: {label}",
                                    median([r[index] for r in got[label, "wide"]]), "s"))
            figures.append(reported(f"1 step, {what}: {label}",
                                    median([r[index] for r in got[label, "one"]]), "s"))
            figures.append(reported(f"per step, {what}: {label}",
                                    1e6 * median([r[index] for r in per_step[label]]), "us"))
        paired = [1e6 * (a[index] - b[index])
                  for a, b in zip(per_step["after"], per_step["before"], strict=True)]
        figures.append(reported(f"per step, {what}: after - before (paired)", median(paired),
                                "us"))
    return figures


if __name__ == "__main__":
    if len(sys.argv) < 2 or not (Path(sys.argv[1]) / "console").is_dir():
        raise SystemExit("usage: bench_detached.py BEFORE_CHECKOUT [RUNS]")
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print_figures(f"detached runs, before ({sys.argv[1]}) and after, interleaved",
                  run(Path(sys.argv[1]), count))
