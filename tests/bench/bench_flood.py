"""Under a flood: one step prints 10k lines/s for 10 s (1000-byte lines, 100 MB in all)
while `j` keys move the DAG selection every 0.2 s; the UI runs headless (ui_probe.py keys).

Keypress-to-repaint is the time from posting the key to the first frame that shows the new
selection (median and p95 over the keys of every run). RSS is wait4's ru_maxrss for the
probe process: the console with its UI (the flooding step is a separate, smaller process).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from _common import (
    BENCH_DIR,
    PYTHON,
    Figure,
    at_most,
    isolated_state,
    median,
    percentile,
    print_figures,
    reported,
    runs_from_argv,
)

LINES_PER_S = 10_000
SECONDS = 10
LINE_BYTES = 1000
MAX_MEDIAN_MS = 100.0
MAX_P95_MS = 200.0
MAX_RSS_MIB = 100.0

FLOOD = f"""
import sys, time
line = ("x" * {LINE_BYTES - 1} + "\\n").encode()
out = sys.stdout.buffer
start = time.monotonic()
for tick in range({SECONDS * 100}):
    out.write(line * {LINES_PER_S // 100})
    out.flush()
    pause = start + (tick + 1) / 100 - time.monotonic()
    if pause > 0:
        time.sleep(pause)
"""


def flood_workflow() -> str:
    out = ['[workflow]', 'name = "flood"', 'concurrency = 2', '',
           '[steps.flood]', f"run = [{PYTHON!r}, '-c', '''{FLOOD}''']".replace("'", '"', 2), '']
    for i in range(20):
        out += [f'[steps.side-{i:02d}]', 'run = ["true"]', 'needs = ["flood"]', '']
    return "\n".join(out)


def one_run(workflow: Path) -> tuple[list[float], float, float, int]:
    with isolated_state() as env:
        start = time.perf_counter()
        process = subprocess.Popen([PYTHON, str(BENCH_DIR / "ui_probe.py"), "keys",
                                    str(workflow)], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        assert process.stdout is not None
        latencies = [float(line.split()[1]) for line in process.stdout
                     if line.startswith(b"latency ")]
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        logs = list(Path(env["XDG_STATE_HOME"]).glob("console/runs/*/flood.1.log"))
        size = logs[0].stat().st_size if logs else 0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ui_probe keys exited {os.waitstatus_to_exitcode(status)}")
    return latencies, usage.ru_maxrss / 1024, wall, size


def run(runs: int = 5) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="console-bench-flood-") as tmp:
        workflow = Path(tmp) / "flood.toml"
        workflow.write_text(flood_workflow())
        latencies: list[float] = []
        rss: list[float] = []
        sizes: list[int] = []
        walls: list[float] = []
        for _ in range(runs):
            got, peak, wall, size = one_run(workflow)
            latencies += got
            rss.append(peak)
            walls.append(wall)
            sizes.append(size)
    output_mb = median(sizes) / 1e6
    return [
        reported("flood: output per run", output_mb, "MB", f"{len(latencies)} keys in all"),
        reported("flood: run wall time", median(walls), "s", f"{SECONDS} s of output"),
        at_most("flood: keypress to repaint, median", median(latencies), "ms", MAX_MEDIAN_MS),
        at_most("flood: keypress to repaint, p95", percentile(latencies, 0.95), "ms",
                MAX_P95_MS),
        at_most("flood: peak RSS", max(rss), "MiB", MAX_RSS_MIB, f"largest of {runs} runs"),
    ]


if __name__ == "__main__":
    print_figures("under a flood", run(runs_from_argv()))
