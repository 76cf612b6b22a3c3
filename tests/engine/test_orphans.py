"""No orphans: a console that dies, however it dies, leaves no step process running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.exec.watchdog import WATCHDOG_PROGRAM

# A console in miniature: runs N steps with LocalExecutor, prints each step's pid as it
# starts, and waits for a line on stdin before starting each step after the first.
CONSOLE = """
import asyncio, os, sys
from pathlib import Path
from console.exec.base import StepCommand
from console.exec.local import LocalExecutor

async def main():
    log_dir, steps, script = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    executor = LocalExecutor(grace_s=0.5)
    loop = asyncio.get_running_loop()
    tasks = []
    for n in range(steps):
        if n:
            await loop.run_in_executor(None, sys.stdin.readline)
        cmd = StepCommand(f"s{n}", 1, None, script, dict(os.environ), Path.cwd(), None,
                          log_dir / f"s{n}.log")
        tasks.append(asyncio.create_task(
            executor.run(cmd, on_started=lambda where: print(where.pid, flush=True))))
    await asyncio.gather(*tasks)

asyncio.run(main())
"""

TWO_SLEEPS = "sleep 300 & sleep 300"


def stat_fields(pid: int) -> list[bytes] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()


def alive(pid: int) -> bool:
    """Running: a zombie waiting for init to reap it runs no code."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in (b"Z", b"X")


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                members.append(int(entry.name))
    return members


def children_running(parent: int, marker: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if fields and int(fields[1]) == parent and marker in cmdline:
                found.append(int(entry.name))
    return found


def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(steps: int = 1, script: str = TWO_SLEEPS, **popen: object) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", CONSOLE, str(tmp_path / "logs"), str(steps), script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            **popen,  # type: ignore[call-overload]
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def step_started(console: subprocess.Popen[str], sleeps: int = 2) -> int:
    """The step's pgid, once its shell has started every background sleep."""
    assert console.stdout is not None
    line = console.stdout.readline()
    assert line, "the console exited before the step started"
    pgid = int(line)
    assert eventually(lambda: len(group_members(pgid)) >= sleeps)
    return pgid


def watchdog_of(console: subprocess.Popen[str], other_than: int = 0) -> int:
    found: list[int] = []

    def look() -> bool:
        found[:] = [p for p in children_running(console.pid, b"_watchdog") if p != other_than]
        return bool(found)

    assert eventually(look)
    return found[0]


def test_a_console_killed_with_sigkill_leaves_no_step_process(
    console: Callable[..., subprocess.Popen[str]],
) -> None:
    process = console()
    pgid = step_started(process)
    watchdog = watchdog_of(process)
    process.kill()
    process.wait()
    assert eventually(lambda: group_members(pgid) == []), group_members(pgid)
    assert eventually(lambda: not alive(watchdog))


def test_a_step_ignoring_sigterm_is_killed_after_the_grace_when_the_console_dies(
    console: Callable[..., subprocess.Popen[str]],
) -> None:
    process = console(script="trap '' TERM; sleep 300 & sleep 300 & wait")
    pgid = step_started(process)
    process.kill()
    process.wait()
    assert eventually(lambda: group_members(pgid) == []), group_members(pgid)


def test_the_watchdog_runs_in_its_own_session(
    console: Callable[..., subprocess.Popen[str]],
) -> None:
    process = console()
    step_started(process)
    watchdog = watchdog_of(process)
    assert os.getsid(watchdog) == watchdog != os.getsid(process.pid)


def test_a_killed_watchdog_is_replaced_and_told_every_running_group(
    console: Callable[..., subprocess.Popen[str]],
) -> None:
    process = console(steps=2)
    first = step_started(process)
    lost = watchdog_of(process)
    os.kill(lost, signal.SIGKILL)
    # The console notices at once, not at its next write: a replacement appears by itself.
    replacement = watchdog_of(process, other_than=lost)
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()
    second = step_started(process)
    process.kill()
    process.wait()
    assert eventually(lambda: group_members(first) == [] and group_members(second) == [])
    assert eventually(lambda: not alive(replacement))


def test_interrupting_the_console_stops_its_steps_on_the_way_out(
    console: Callable[..., subprocess.Popen[str]],
) -> None:
    # ^C in a terminal signals the console's foreground group: the steps, each in its own
    # session, never see it; the console stops them as its tasks are cancelled.
    process = console(start_new_session=True)
    pgid = step_started(process)
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=10)
    assert group_members(pgid) == []


def test_the_watchdog_kills_registered_groups_at_end_of_input_and_only_those() -> None:
    registered = subprocess.Popen(["sleep", "300"], start_new_session=True)
    released = subprocess.Popen(["sleep", "300"], start_new_session=True)
    watchdog = subprocess.Popen(
        [sys.executable, "-I", "-S", str(WATCHDOG_PROGRAM), "0.5"],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert watchdog.stdin is not None
        watchdog.stdin.write(f"+{registered.pid}\n+{released.pid}\n-{released.pid}\n".encode())
        watchdog.stdin.write(b"garbage\n+\n")
        watchdog.stdin.close()
        assert watchdog.wait(timeout=10) == 0
        assert registered.wait(timeout=10) == -signal.SIGTERM
        assert released.poll() is None
    finally:
        for process in (registered, released, watchdog):
            if process.poll() is None:
                process.kill()
                process.wait()
