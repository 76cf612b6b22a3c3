"""The UI: start to first frame, and a run with the UI attached against the headless run.

Each figure is a fresh subprocess (`ui_probe.py`, which documents how a frame is detected),
timed from spawn to its `frame` line, or to its exit for whole runs, so imports count. The
minimal Textual app (one label) is measured in the same repetitions as the demo; the
ratio is the median of the per-repetition ratios. Two first frames: any frame (the window
paints before the workflow loads: what the loading screen costs) and the first frame with
the DAG drawn (the file loaded, laid out and shown: the figure people feel). The DAG-drawn
figures are taken with the workflow's validated plan kept (console/workflow/plan_cache.py:
each file is opened once, untimed, in the same state first, as every run after a
workflow's first finds it); the demo's is also taken in a new state (its bytes validated
first, as on the first run of a changed file). The UI run and the headless run use the
layered shape (10x100, concurrency 2), interleaved.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from _common import (
    BENCH_DIR,
    CONSOLE,
    PYTHON,
    REPO,
    Figure,
    at_most,
    isolated_state,
    median,
    print_figures,
    reported,
    runs_from_argv,
    timed_child,
)
from shapes import layered, workflow_toml

PROBE = str(BENCH_DIR / "ui_probe.py")
MAX_DEMO_RATIO = 1.5
MAX_LARGE_S = 0.6
MAX_RUN_RATIO = 1.5


def time_to_frame(workflow: str, env: Mapping[str, str], mode: str = "first-frame") -> float:
    start = time.perf_counter()
    process = subprocess.Popen([PYTHON, PROBE, mode, workflow], env=dict(env),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed = time.perf_counter() - start
    process.wait()
    if line.strip() != b"frame":
        raise SystemExit(f"ui_probe {mode} {workflow}: no frame (exit {process.returncode})")
    return elapsed


def run(runs: int = 5) -> list[Figure]:
    demo = str(REPO / "workflows" / "demo.toml")
    with tempfile.TemporaryDirectory(prefix="console-bench-ui-") as tmp:
        large = Path(tmp) / "large.toml"
        large.write_text(workflow_toml("layered", layered(), 2))
        minimal_s: list[float] = []
        demo_s: list[float] = []
        ratios: list[float] = []
        large_s: list[float] = []
        dag_demo_s: list[float] = []
        dag_ratios: list[float] = []
        dag_large_s: list[float] = []
        dag_new_s: list[float] = []
        ui_run_s: list[float] = []
        headless_s: list[float] = []
        run_ratios: list[float] = []
        for _ in range(runs):
            with isolated_state() as env:
                m = time_to_frame("minimal", env)
                d = time_to_frame(demo, env)
                minimal_s.append(m)
                demo_s.append(d)
                ratios.append(d / m)
                large_s.append(time_to_frame(str(large), env))
                for kept in (demo, str(large)):  # untimed: the plans are kept from here on
                    time_to_frame(kept, env, "dag-frame")
                m = time_to_frame("minimal", env, "dag-frame")
                d = time_to_frame(demo, env, "dag-frame")
                dag_demo_s.append(d)
                dag_ratios.append(d / m)
                dag_large_s.append(time_to_frame(str(large), env, "dag-frame"))
            with isolated_state() as env:
                dag_new_s.append(time_to_frame(demo, env, "dag-frame"))
            with isolated_state() as env:
                ui = timed_child([PYTHON, PROBE, "run", str(large)], env)
            with isolated_state() as env:
                headless = timed_child([*CONSOLE, "run", str(large), "--no-tui"], env)
            if ui.returncode or headless.returncode:
                raise SystemExit(f"layered run failed: ui {ui.returncode}, headless "
                                 f"{headless.returncode}")
            ui_run_s.append(ui.wall_s)
            headless_s.append(headless.wall_s)
            run_ratios.append(ui.wall_s / headless.wall_s)
    return [
        reported("first frame: minimal Textual app", median(minimal_s), "s",
                "the yardstick"),
        reported("first frame: demo", median(demo_s), "s"),
        at_most("first frame: demo / minimal", median(ratios), "x", MAX_DEMO_RATIO),
        at_most("first frame: 1000 steps", median(large_s), "s", MAX_LARGE_S),
        reported("first frame with the DAG drawn: demo", median(dag_demo_s), "s", "plan kept"),
        at_most("DAG drawn: demo / minimal", median(dag_ratios), "x", MAX_DEMO_RATIO),
        at_most("DAG drawn: demo", median(dag_demo_s), "s", MAX_LARGE_S),
        at_most("DAG drawn: 1000 steps", median(dag_large_s), "s", MAX_LARGE_S, "plan kept"),
        reported("DAG drawn: demo, new bytes", median(dag_new_s), "s", "validated first"),
        reported("layered run: with UI", median(ui_run_s), "s"),
        reported("layered run: headless", median(headless_s), "s"),
        at_most("layered run: UI / headless", median(run_ratios), "x", MAX_RUN_RATIO),
    ]


if __name__ == "__main__":
    print_figures("UI", run(runs_from_argv()))
