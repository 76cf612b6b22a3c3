"""Runs in a host, viewers attached (issue 10): attach to a full frame, three viewers on a
run, and command to first step started. `python tests/bench/bench_viewers.py [RUNS]`: every
figure is a median of 2*RUNS repetitions (this machine is noisy), about 1.5 minutes for the
default RUNS=5 on 2 cores.

Attach to the first full frame: one detached run of 1000 steps (shapes.layered 10x100,
concurrency 2) whose first step `l0-000` waits for a file, so the run stays live with one
step running; the other 99 of the first layer need it. `console attach RUN` runs in a real
80x24 pseudo-terminal: a tmux pane of a tmux server of our own, read through one tmux
control-mode client (no process per look). The clock starts just before the pane is
respawned with the command and stops at the first capture of the pane that shows the full
frame: the header names the run, says `running` and counts `/1000` steps; the DAG (the
compact list, past 300 steps) fills every row between the header and the footer, each row a
step with its status word, the first row `l0-000 ... running` (so the run's own state has
arrived and been drawn, not the file's); the footer shows the key bindings. The pane is
captured each time tmux reports output from it. `d` detaches each viewer; the next attach
starts once the last one has exited. Reported alongside: the first paint of any kind (the
shell, `loading FILE…`) and the DAG drawn from the file (every row a step with a status,
whether or not the run's state is in yet).

Three viewers: a 1000-step `true` run (layered 10x100, concurrency 2) started with
`console run FILE --detach`, timed from spawn until `run.finished` is in the audit file
(polled every 2 ms); three AttachedRuns in a process of their own (this script with
`viewers`; started and imported before the clock starts) subscribe as soon as the socket
appears, replay from the first record and drain `events()` until the run ends. Against the
same workflow with `console run FILE --no-tui` in the foreground, timed the same way (spawn
until `run.finished`), and a detached run nobody watches (what detaching costs by itself).
The three are interleaved in each repetition; the ratios are medians of per-repetition
ratios. The CPU time of the process running the engine (from /proc when `run.finished` is
seen; its steps not counted) and of the viewers' process (after its imports) say where the
time goes on two cores.

Command to first step started: `console run FILE --no-tui` from spawn until the first
`step.started` record is in the audit file (polled every 1 ms), for a one-step workflow and
a 200-step chain, each once with its validated plan kept from an earlier run of the same
bytes (the figure the issue sets: every run after a workflow's first) and once in a new
state (validated first, the first run of new bytes); and `--detach` on the one step (the
path `console run FILE` takes too: a host process of its own). For reference: `python -c
pass` spawned the same way (the floor of any start-up), and the imports the run path has
made by its first step, timed inside a fresh interpreter.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from _common import (
    BENCH_DIR,
    CONSOLE,
    PYTHON,
    Figure,
    at_most,
    isolated_state,
    keep_plan,
    median,
    print_figures,
    reported,
    runs_from_argv,
)
from shapes import Graph, chain, layered, workflow_toml

STEPS = 1000
CONCURRENCY = 2
VIEWERS = 3
SIZE = (80, 24)
MAX_ATTACH_S = 0.6
MAX_VIEWERS_RATIO = 1.5
MAX_FIRST_STEP_S = 0.15  # issue 15 (issue 10 asked 0.25)
ROOT = "l0-000"
STATUS_WORDS = ("pending", "waiting", "awaiting approval", "running", "retry", "succeeded",
                "reused", "failed", "error", "denied", "skipped", "cancelled")
ROW = re.compile(r"^\s*\S\s+(?P<step>l\d-\d{3})\s+L\d+\s+(?P<status>.+?)\s*$")


def spread(values: Sequence[float], unit: str = "s") -> str:
    return f"{min(values):.3f}-{max(values):.3f} {unit} over {len(values)}"


# --- workflows -----------------------------------------------------------------------------

def _write(path: Path, graph: Graph, root_argv: Sequence[str] | None = None) -> Path:
    text = workflow_toml(path.stem, graph, CONCURRENCY)
    if root_argv is not None:
        first = next(iter(graph))
        plain = f'[steps."{first}"]\nrun = ["true"]\n'
        assert plain in text
        text = text.replace(plain, f'[steps."{first}"]\nrun = {json.dumps(list(root_argv))}\n')
    path.write_text(text)
    return path


def live_workflow(path: Path, go: Path) -> Path:
    """1000 steps; `l0-000` runs until `go` exists and the rest of layer 0 needs it."""
    graph = layered()
    for step in list(graph)[1:100]:
        graph[step] = [ROOT]
    wait = f"while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.05; done"
    return _write(path, graph, ["sh", "-c", wait])


# --- the audit file, read as it grows ------------------------------------------------------

class AuditTail:
    """The audit file's new complete lines, read each time `seen` is asked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self._partial = b""

    def seen(self, marker: bytes) -> bool:
        if self._file is None:
            try:
                self._file = self.path.open("rb")
            except FileNotFoundError:
                return False
        data = self._file.read()
        if not data:
            return False
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        return any(marker in line for line in lines)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _record(kind: str) -> bytes:
    return f'"type":"{kind}"'.encode()


def spawn_until_record(
    argv: Sequence[str], env: Mapping[str, str], kind: str, interval: float
) -> tuple[float, subprocess.Popen[bytes]]:
    """Spawn argv; the time until a record of `kind` is in the audit file, and the process."""
    tail = AuditTail(Path(env["XDG_STATE_HOME"]) / "console" / "audit.jsonl")
    marker = _record(kind)
    output = Path(env["BENCH_TMP"]) / "output"
    with output.open("wb") as sink:  # a file, not a pipe: --no-tui writes a line per event
        start = time.perf_counter()
        process = subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.STDOUT)
    deadline = start + 120
    try:
        while not tail.seen(marker):
            if time.perf_counter() > deadline:
                raise SystemExit(f"no {kind} record within 120 s: {' '.join(argv)}")
            if process.poll() is not None and process.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} exited {process.returncode}: "
                                 f"{output.read_text(errors='replace')[-2000:]}")
            time.sleep(interval)
        return time.perf_counter() - start, process
    finally:
        tail.close()


def _finish(process: subprocess.Popen[bytes], env: Mapping[str, str]) -> str:
    """Wait for the process; what it wrote (stdout and stderr)."""
    process.wait(timeout=120)
    said = (Path(env["BENCH_TMP"]) / "output").read_text(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"console exited {process.returncode}: {said[-2000:]}")
    return said


def _started_run(stdout: str) -> tuple[str, int]:
    found = re.search(r"run (\S+) started in the background \(pid (\d+)\)", stdout)
    if found is None:
        raise SystemExit(f"console run --detach said: {stdout!r}")
    return found.group(1), int(found.group(2))


def _wait_gone(pid: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists():
        try:
            if ") Z " in Path(f"/proc/{pid}/stat").read_text():
                return
        except OSError:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"process {pid} still there after {seconds:g} s")
        time.sleep(0.01)


# --- 1. attach to the first full frame -----------------------------------------------------

class TmuxPane:
    """One tmux server of our own with one pane of SIZE, driven through a control client."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.tmux = ["tmux", "-L", f"console-bench-{os.getpid()}", "-f", "/dev/null"]
        cols, rows = SIZE
        subprocess.run([*self.tmux, "new-session", "-d", "-x", str(cols), "-y", str(rows),
                        "-s", "bench", "sleep 100000"], env=dict(env), check=True)
        subprocess.run([*self.tmux, "set", "-g", "remain-on-exit", "on"], check=True)
        self.client = subprocess.Popen([*self.tmux, "-C", "attach", "-t", "bench"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL)
        self.replies: queue.Queue[list[str]] = queue.Queue()
        self.output = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        [socket_path] = self.command("display -p '#{socket_path}'")
        self.socket_path = Path(socket_path)

    def _read(self) -> None:
        assert self.client.stdout is not None
        block: list[str] | None = None
        for raw in self.client.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if block is not None:
                if line.startswith(("%end ", "%error ")):
                    if line.split()[-1] == "1":  # flags 1: a command of this client
                        self.replies.put(block)
                    block = None
                else:
                    block.append(line)
            elif line.startswith("%begin "):
                block = []
            elif line.startswith("%output "):
                self.output.set()

    def command(self, text: str) -> list[str]:
        assert self.client.stdin is not None
        self.client.stdin.write(text.encode() + b"\n")
        self.client.stdin.flush()
        return self.replies.get(timeout=30)

    def respawn(self, argv: Sequence[str]) -> None:
        self.output.clear()
        self.command("respawn-pane -k -t bench " + " ".join(shlex.quote(a) for a in argv))

    def screen(self) -> list[str]:
        return self.command("capture-pane -p -t bench")

    def dead(self) -> bool:
        return self.command("display -p -t bench '#{pane_dead}'") == ["1"]

    def wait_for_output(self, seconds: float) -> None:
        self.output.wait(seconds)
        self.output.clear()

    def close(self) -> None:
        if self.client.stdin is not None:
            self.client.stdin.close()
        self.client.wait(10)
        subprocess.run([*self.tmux, "kill-server"], check=False, capture_output=True)
        self.socket_path.unlink(missing_ok=True)


def dag_drawn(screen: list[str]) -> bool:
    """The header counts x/1000 steps; every row between it and the footer (which has the
    bindings) is a step with its status word."""
    rows = SIZE[1]
    if len(screen) < rows or f"/{STEPS}" not in screen[0] or "Quit" not in screen[rows - 1]:
        return False
    return all((m := ROW.match(line)) is not None and m.group("status").startswith(STATUS_WORDS)
               for line in screen[1:rows - 1])


def full_frame(screen: list[str], run_id: str) -> bool:
    """The DAG drawn, the header naming the run and saying `running`, and the first row
    `l0-000 ... running`: the run's own state, not the file's."""
    if not dag_drawn(screen) or f"run {run_id}" not in screen[0] \
            or " running " not in screen[0]:
        return False
    first = ROW.match(screen[1])
    return first is not None and first.group("step") == ROOT \
        and first.group("status").startswith("running")


@dataclass
class AttachTimes:
    first_paint: float  # anything on the screen (the shell: `loading FILE…`)
    dag: float  # the DAG drawn, from the file or the run
    full: float  # the full frame


def time_attach(pane: TmuxPane, argv: Sequence[str], run_id: str) -> AttachTimes:
    """Seconds from respawning the pane with argv to its first paint, the DAG drawn and the
    full frame; then `d` detaches, and this returns once the viewer has exited."""
    start = time.perf_counter()
    pane.respawn(argv)
    paint: float | None = None
    dag: float | None = None
    deadline = start + 30
    while True:
        pane.wait_for_output(0.05)
        looked = time.perf_counter() - start
        screen = pane.screen()
        if paint is None and any(line.strip() for line in screen):
            paint = looked
        if dag is None and dag_drawn(screen):
            dag = looked
        if full_frame(screen, run_id):
            break
        if looked > 30:
            raise SystemExit("no full frame within 30 s; the pane shows:\n" + "\n".join(screen))
    pane.command("send-keys -t bench d")
    while not pane.dead():
        if time.perf_counter() > deadline:
            raise SystemExit("the viewer did not exit after `d`")
        time.sleep(0.01)
    return AttachTimes(paint or looked, dag or looked, looked)


def measure_attach(runs: int) -> list[Figure]:
    if shutil.which("tmux") is None:
        return [reported("attach -> first full frame: skipped", float("nan"), "s",
                         "tmux is not installed")]
    with isolated_state() as env:
        env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        base = Path(env["BENCH_TMP"])
        go = base / "go"
        path = live_workflow(base / "viewers.toml", go)
        started = subprocess.run([*CONSOLE, "run", str(path), "--detach"], env=env,
                                 capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            raise SystemExit(f"console run --detach exited {started.returncode}: "
                             f"{started.stderr}")
        run_id, pid = _started_run(started.stdout)
        pane = TmuxPane(env)
        times: list[AttachTimes] = []
        try:
            for _ in range(runs):
                times.append(time_attach(pane, [*CONSOLE, "attach", run_id], run_id))
        finally:
            pane.close()
            go.touch()
            _wait_gone(pid)
    paint = [t.first_paint for t in times]
    dag = [t.dag for t in times]
    full = [t.full for t in times]
    return [
        reported("attach: first paint (`loading FILE…`)", median(paint), "s", spread(paint)),
        reported(f"attach: the DAG drawn, {STEPS} steps", median(dag), "s",
                 f"from the file, before or with the run's state; {spread(dag)}"),
        reported("attach: DAG drawn -> full frame", median([t.full - t.dag for t in times]),
                 "s", "the run's state arriving"),
        at_most(f"attach: first full frame, {STEPS} steps", median(full), "s",
                MAX_ATTACH_S, f"{SIZE[0]}x{SIZE[1]} tmux pane; {spread(full)}"),
    ]


# --- 2. three viewers on a run, against the run headless ------------------------------------

async def _view(socket_dir: Path, count: int) -> dict[str, object]:
    from console.host.attached import AttachedRun

    deadline = time.monotonic() + 60
    while not (sockets := list(socket_dir.glob("*.sock"))):
        if time.monotonic() > deadline:
            raise SystemExit("no run socket appeared within 60 s")
        await asyncio.sleep(0.002)
    views = [await AttachedRun.connect(sockets[0]) for _ in range(count)]

    async def drain(view: AttachedRun) -> int:
        seen = 0
        async for _ in view.events():
            seen += 1
        await view.wait()
        return seen

    seen = await asyncio.gather(*(drain(view) for view in views))
    return {"events": seen, "resubscribes": [view.resubscribes for view in views],
            "outcome": [view.outcome for view in views]}


def viewers_child(socket_dir: str, count: int) -> None:
    """`bench_viewers.py viewers DIR N`: say `ready`, attach N viewers to the run whose
    socket appears in DIR, drain them until it ends, print what each saw as JSON."""
    import console.host.attached  # noqa: F401  (imported before `ready`)

    print("ready", flush=True)
    cpu = time.process_time()
    said = asyncio.run(_view(Path(socket_dir), count))
    said["cpu_s"] = time.process_time() - cpu
    print(json.dumps(said), flush=True)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """The process's own CPU time so far (user + system, its children not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class RunTimes:
    wall: float  # spawn -> run.finished in the audit file
    host_cpu: float  # the process running the engine, when run.finished was seen
    viewers_cpu: float = 0.0  # the viewers' process, once its imports were done
    events: int = 0  # what each viewer saw
    resubscribes: int = 0  # times the run dropped a viewer for falling behind, all viewers


def headless_run(path: Path) -> RunTimes:
    with isolated_state() as env:
        took, process = spawn_until_record([*CONSOLE, "run", str(path), "--no-tui"], env,
                                           "run.finished", 0.002)
        host_cpu = cpu_s(process.pid)
        _finish(process, env)
    return RunTimes(took, host_cpu)


def detached_run(path: Path, viewers: int) -> RunTimes:
    """`console run --detach` to run.finished, with `viewers` attached from a process of
    their own (started, and its imports done, before the clock starts)."""
    with isolated_state() as env:
        watchers = None
        if viewers:
            watchers = subprocess.Popen(
                [PYTHON, str(BENCH_DIR / "bench_viewers.py"), "viewers",
                 env["CONSOLE_RUNTIME_DIR"], str(viewers)],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
            )
            assert watchers.stdout is not None
            if watchers.stdout.readline().strip() != "ready":
                raise SystemExit("the viewers' process did not start")
        took, process = spawn_until_record([*CONSOLE, "run", str(path), "--detach"], env,
                                           "run.finished", 0.002)
        process.wait(timeout=60)  # it exits once the run has started, long before this
        _, pid = _started_run((Path(env["BENCH_TMP"]) / "output").read_text())
        got = RunTimes(took, cpu_s(pid))
        _finish(process, env)
        _wait_gone(pid)
        if watchers is not None:
            assert watchers.stdout is not None
            said = json.loads(watchers.stdout.read())
            watchers.wait(timeout=60)
            if watchers.returncode != 0 or len(set(said["events"])) != 1 \
                    or said["outcome"] != ["succeeded"] * viewers:
                raise SystemExit(f"the viewers did not all see the run end: {said}")
            got.viewers_cpu = float(said["cpu_s"])
            got.events = said["events"][0]
            got.resubscribes = sum(said["resubscribes"])
    return got


def measure_viewers(runs: int, directory: Path) -> list[Figure]:
    path = _write(directory / "true1000.toml", layered())
    headless: list[RunTimes] = []
    alone: list[RunTimes] = []
    watched: list[RunTimes] = []
    for _ in range(runs):
        headless.append(headless_run(path))
        alone.append(detached_run(path, 0))
        watched.append(detached_run(path, VIEWERS))
    ratios = [w.wall / h.wall for w, h in zip(watched, headless, strict=True)]
    viewer_ratios = [w.wall / a.wall for w, a in zip(watched, alone, strict=True)]
    walls = {name: [r.wall for r in got]
             for name, got in (("headless", headless), ("alone", alone), ("watched", watched))}
    resubscribes = sum(w.resubscribes for w in watched)
    return [
        reported(f"{STEPS}-step run: --no-tui", median(walls["headless"]), "s",
                 f"spawn -> run.finished; {spread(walls['headless'])}"),
        reported(f"{STEPS}-step run: --detach, no viewer", median(walls["alone"]), "s",
                 spread(walls["alone"])),
        reported(f"{STEPS}-step run: --detach, {VIEWERS} viewers", median(walls["watched"]),
                 "s", f"each saw {watched[-1].events:,} events, {resubscribes} resubscribes; "
                 f"{spread(walls['watched'])}"),
        at_most(f"{STEPS}-step run: {VIEWERS} viewers / --no-tui", median(ratios), "x",
                MAX_VIEWERS_RATIO, spread(ratios, "x")),
        reported(f"{STEPS}-step run: {VIEWERS} viewers / --detach alone",
                 median(viewer_ratios), "x", spread(viewer_ratios, "x")),
        reported(f"{STEPS}-step run: engine process CPU, --no-tui",
                 median([r.host_cpu for r in headless]), "s", "user + system, steps not counted"),
        reported(f"{STEPS}-step run: host CPU, --detach alone",
                 median([r.host_cpu for r in alone]), "s"),
        reported(f"{STEPS}-step run: host CPU, {VIEWERS} viewers",
                 median([r.host_cpu for r in watched]), "s"),
        reported(f"{STEPS}-step run: the {VIEWERS} viewers' process CPU",
                 median([r.viewers_cpu for r in watched]), "s", "after its imports"),
    ]


# --- 3. command to first step started ------------------------------------------------------

def first_step(path: Path, how: str = "--no-tui", kept: bool = False) -> float:
    """Spawn to the first step.started. `kept`: the workflow ran once before in the same
    state (untimed; its audit and run logs removed), so its validated plan is kept
    (console/workflow/plan_cache.py) and the run starts without validating again. Otherwise
    the state is new: the bytes are validated, as on a workflow's first run."""
    with isolated_state() as env:
        if kept:
            keep_plan(CONSOLE, path, env)
        took, process = spawn_until_record([*CONSOLE, "run", str(path), how], env,
                                           "step.started", 0.001)
        said = _finish(process, env)
        if how == "--detach":
            _wait_gone(_started_run(said)[1])
    return took


# What `console run --no-tui` of a kept plan has imported by its first step: these bring in
# that set of modules (no pydantic: a new file's validation imports console.workflow.loader).
RUN_PATH_IMPORTS = ("console.cli, console.commands.run, console.commands.printer, console.config, "
                    "console.workflow.plan_cache, console.host.run_host, console.run.engine")


def bare_python() -> float:
    start = time.perf_counter()
    subprocess.run([PYTHON, "-c", "pass"], check=True)
    return time.perf_counter() - start


def run_path_imports() -> float:
    """The run path's imports in a fresh interpreter, timed inside it (its exit, which takes
    another 50-90 ms for 370 modules, not counted)."""
    code = (f"import time; t = time.perf_counter(); import {RUN_PATH_IMPORTS}; "
            "print(time.perf_counter() - t)")
    said = subprocess.run([PYTHON, "-c", code], check=True, capture_output=True, text=True)
    return float(said.stdout)


def measure_first_step(runs: int, directory: Path) -> list[Figure]:
    one = _write(directory / "one.toml", {"only": []})
    chained = _write(directory / "chain200.toml", chain())
    takers: dict[str, Callable[[], float]] = {
        "one": lambda: first_step(one, kept=True),
        "chain": lambda: first_step(chained, kept=True),
        "one new": lambda: first_step(one),
        "chain new": lambda: first_step(chained),
        "detached": lambda: first_step(one, "--detach", kept=True),
        "imports": run_path_imports,
        "python": bare_python,
    }
    measured: dict[str, list[float]] = {name: [] for name in takers}
    for _ in range(runs):
        for name, take in takers.items():
            measured[name].append(take())
    return [
        at_most("command -> first step started, 1 step", median(measured["one"]), "s",
                MAX_FIRST_STEP_S, f"console run --no-tui, plan kept; {spread(measured['one'])}"),
        at_most("command -> first step started, chain 200", median(measured["chain"]), "s",
                MAX_FIRST_STEP_S, f"plan kept; {spread(measured['chain'])}"),
        reported("command -> first step started, 1 step, new bytes", median(measured["one new"]),
                 "s", f"validated first; {spread(measured['one new'])}"),
        reported("command -> first step started, chain 200, new bytes",
                 median(measured["chain new"]), "s",
                 f"validated first; {spread(measured['chain new'])}"),
        reported("command -> first step started, 1 step, --detach", median(measured["detached"]),
                 "s", f"the host in a process of its own; {spread(measured['detached'])}"),
        reported("the run path's imports, timed in a fresh python", median(measured["imports"]),
                 "s", spread(measured["imports"])),
        reported("python -c pass, spawn to exit", median(measured["python"]), "s",
                 f"the floor; {spread(measured['python'])}"),
    ]


def run(runs: int = 5) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="console-bench-viewers-") as tmp:
        figures = measure_attach(2 * runs)
        figures += measure_viewers(2 * runs, Path(tmp))
        figures += measure_first_step(2 * runs, Path(tmp))
    return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "viewers":
        viewers_child(sys.argv[2], int(sys.argv[3]))
    else:
        print_figures("runs in a host, viewers attached", run(runs_from_argv()))
