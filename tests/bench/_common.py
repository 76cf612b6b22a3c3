"""Shared by the benchmark scripts: figures, medians, isolated state, timed child processes.

Each benchmark module has `run(runs: int) -> list[Figure]`; its `__main__` prints them.
`run_all.py` collects every module's figures into one table.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent

# An installed copy has its bytecode compiled by pip. An editable checkout run with
# PYTHONDONTWRITEBYTECODE (as on the CI machines) would compile every console module from
# source in every child: compile once here and let the children read the bytecode.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
compileall.compile_dir(REPO / "console", quiet=1)
PYTHON = sys.executable
CONSOLE = [PYTHON, "-m", "console"]
DEFAULT_RUNS = 5
MIB = 1024 * 1024


@dataclass(frozen=True)
class Figure:
    """One measured figure and, where the issue sets one, its target."""

    name: str
    value: float
    unit: str
    target: str = ""  # as people read it: "<= 1.25", ">= 200000"
    passed: bool | None = None  # None: reported only, no target
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "-"
        return "pass" if self.passed else "MISS"

    def shown(self) -> str:
        if self.unit in ("x", "s"):
            value = f"{self.value:.3f}"
        elif abs(self.value) >= 1000:
            value = f"{self.value:,.0f}"
        else:
            value = f"{self.value:.1f}"
        return f"{value} {self.unit}".strip()


def at_most(name: str, value: float, unit: str, limit: float, note: str = "") -> Figure:
    return Figure(name, value, unit, f"<= {limit:g} {unit}".strip(), value <= limit, note)


def at_least(name: str, value: float, unit: str, limit: float, note: str = "") -> Figure:
    return Figure(name, value, unit, f">= {limit:,g} {unit}".strip(), value >= limit, note)


def reported(name: str, value: float, unit: str, note: str = "") -> Figure:
    return Figure(name, value, unit, "", None, note)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def load_note() -> str:
    """The machine's load when measuring: other work on a 2-core machine skews every figure."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


@contextmanager
def isolated_state() -> Iterator[dict[str, str]]:
    """An environment whose console state (audit file, run logs, sockets) is a fresh temp dir."""
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        base = Path(tmp)
        env = dict(os.environ)
        env["XDG_STATE_HOME"] = str(base / "state")
        env["XDG_CONFIG_HOME"] = str(base / "config")
        env["CONSOLE_RUNTIME_DIR"] = str(base / "runtime")
        (base / "runtime").mkdir(mode=0o700)
        env["BENCH_TMP"] = str(base)
        yield env


@dataclass(frozen=True)
class ChildRun:
    wall_s: float
    max_rss_mib: float
    returncode: int
    cpu_s: float = 0.0  # user + system of the child and the descendants it reaped


def keep_plan(console: Sequence[str], path: Path, env: dict[str, str]) -> None:
    """Run `path` once in the state `env` names, untimed, so that its validated plan is kept
    (console/workflow/plan_cache.py); then remove that run's audit file and logs."""
    import shutil

    warm = subprocess.run([*console, "run", str(path), "--no-tui"], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if warm.returncode != 0:
        raise SystemExit(f"console exited {warm.returncode}: {warm.stderr[-2000:]!r}")
    state = Path(env["XDG_STATE_HOME"]) / "console"
    (state / "audit.jsonl").unlink()
    shutil.rmtree(state / "runs")


def timed_child(
    argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> ChildRun:
    """Run argv with stdout and stderr to /dev/null; wall time, and its peak RSS from wait4.

    wait4's rusage covers the child and the descendants it reaped, so the figure is the
    largest resident set among them: for the console, the console itself.
    """
    start = time.perf_counter()
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(wall, usage.ru_maxrss / 1024, process.returncode,
                    usage.ru_utime + usage.ru_stime)


def repeat(runs: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(runs)]


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    print(f"\n== {title} ({load_note()})")
    print_table(figures)


def print_table(figures: Sequence[Figure]) -> None:
    width = max((len(f.name) for f in figures), default=10)
    print(f"{'figure':<{width}}  {'value':>16}  {'target':>14}  result")
    for figure in figures:
        line = f"{figure.name:<{width}}  {figure.shown():>16}  {figure.target:>14}"
        line += f"  {figure.verdict}"
        if figure.note:
            line += f"  ({figure.note})"
        print(line)


def runs_from_argv(default: int = DEFAULT_RUNS) -> int:
    """`python tests/bench/NAME.py [RUNS]`: how many repetitions (at least 5 for a median)."""
    if len(sys.argv) > 1:
        return max(1, int(sys.argv[1]))
    return default
