"""Stopping steps: timeouts, cancel(), task cancellation, shutdown, and what a leader leaves."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from console.exec.base import Started, StepCommand
from console.exec.local import LocalExecutor

# Both the shell and its background child ignore SIGTERM (an ignored signal stays ignored
# across fork and exec), so only SIGKILL after the grace stops them.
STUBBORN = "trap '' TERM; sleep 300 & echo $!; wait; wait"


def command(
    tmp_path: Path, script: str, *, step_id: str = "step", timeout_s: float | None = None
) -> StepCommand:
    return StepCommand(
        step_id=step_id,
        attempt=1,
        argv=None,
        script=script,
        env=dict(os.environ),
        cwd=tmp_path,
        timeout_s=timeout_s,
        log_path=tmp_path / "logs" / f"{step_id}.log",
    )


def pid_of(where: Started) -> int:
    assert where.pid is not None
    return where.pid


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it runs no code and holds no pipe)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                members.append(int(entry.name))
    return members


async def first_line(path: Path) -> int:
    """The pid a step echoed first, once it is in the log."""
    for _ in range(500):
        if path.exists() and path.read_bytes().endswith(b"\n"):
            return int(path.read_bytes().split()[0])
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing appeared in {path}")


async def test_a_timeout_terms_then_kills_the_whole_group(tmp_path: Path) -> None:
    executor = LocalExecutor(grace_s=0.3)
    cmd = command(tmp_path, STUBBORN, timeout_s=0.5)
    result = await executor.run(cmd)
    await executor.shutdown()
    grandchild = int(cmd.log_path.read_bytes().split()[0])
    assert result.outcome == "error"
    assert result.error == "timed out after 500ms"
    # It ignored SIGTERM, so the leader's status says SIGKILL: the grace was used up.
    assert result.exit_code == -signal.SIGKILL
    assert not alive(grandchild)
    assert result.pid is not None and group_members(result.pid) == []


async def test_a_timeout_message_uses_the_workflow_duration_format(tmp_path: Path) -> None:
    executor = LocalExecutor(grace_s=0.3)
    result = await executor.run(command(tmp_path, "sleep 300", timeout_s=1.0))
    await executor.shutdown()
    assert (result.outcome, result.error) == ("error", "timed out after 1s")
    assert result.exit_code == -signal.SIGTERM


async def test_cancel_stops_the_group_and_the_run_returns_cancelled(tmp_path: Path) -> None:
    executor = LocalExecutor(grace_s=0.3)
    started = asyncio.Event()
    cmd = command(tmp_path, STUBBORN)
    task = asyncio.create_task(executor.run(cmd, on_started=lambda where: started.set()))
    await started.wait()
    grandchild = await first_line(cmd.log_path)
    executor.cancel("step")
    result = await task
    await executor.shutdown()
    assert (result.outcome, result.error) == ("cancelled", "cancelled")
    assert result.exit_code == -signal.SIGKILL
    assert not alive(grandchild)


async def test_cancel_of_an_unknown_step_does_nothing(tmp_path: Path) -> None:
    executor = LocalExecutor(grace_s=0.3)
    executor.cancel("never-started")
    result = await executor.run(command(tmp_path, "echo fine"))
    await executor.shutdown()
    assert result.outcome == "succeeded"


async def test_cancelling_the_awaiting_task_kills_the_group_before_it_ends(tmp_path: Path) -> None:
    executor = LocalExecutor(grace_s=0.3)
    pids: list[int] = []
    cmd = command(tmp_path, STUBBORN)
    task = asyncio.create_task(executor.run(cmd, on_started=lambda w: pids.append(pid_of(w))))
    grandchild = await first_line(cmd.log_path)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # By the time the CancelledError reaches us, nothing of the step is left.
    assert not alive(pids[0]) and not alive(grandchild)
    assert group_members(pids[0]) == []
    await executor.shutdown()


async def test_a_leader_that_exits_leaving_a_child_on_the_pipe_does_not_hang(
    tmp_path: Path,
) -> None:
    executor = LocalExecutor(grace_s=0.3)
    cmd = command(tmp_path, "sleep 300 & echo $!; echo leader done")
    result = await executor.run(cmd)
    await executor.shutdown()
    grandchild = int(cmd.log_path.read_bytes().split()[0])
    assert (result.outcome, result.exit_code) == ("succeeded", 0)
    assert cmd.log_path.read_bytes().endswith(b"leader done\n")
    assert not alive(grandchild)


async def test_a_child_left_behind_with_its_output_redirected_is_stopped_too(
    tmp_path: Path,
) -> None:
    executor = LocalExecutor(grace_s=0.3)
    cmd = command(tmp_path, "sleep 300 >/dev/null 2>&1 & echo $!")
    result = await executor.run(cmd)
    await executor.shutdown()
    assert result.outcome == "succeeded"
    assert not alive(int(cmd.log_path.read_bytes().split()[0]))


async def test_output_a_background_child_writes_before_the_leader_exits_is_kept(
    tmp_path: Path,
) -> None:
    executor = LocalExecutor(grace_s=0.3)
    cmd = command(tmp_path, "(sleep 0.2; echo from the background) & echo from the leader")
    result = await executor.run(cmd)
    await executor.shutdown()
    assert result.outcome == "succeeded"
    assert cmd.log_path.read_bytes() == b"from the leader\nfrom the background\n"


async def test_shutdown_cancels_every_run_and_waits_for_the_groups(tmp_path: Path) -> None:
    executor = LocalExecutor(grace_s=0.3)
    pids: list[int] = []
    commands = [command(tmp_path, STUBBORN, step_id=f"s{n}") for n in range(3)]
    tasks = [asyncio.create_task(executor.run(c, on_started=lambda w: pids.append(pid_of(w))))
             for c in commands]
    grandchildren = [await first_line(c.log_path) for c in commands]
    await executor.shutdown()
    for pid in [*pids, *grandchildren]:
        assert not alive(pid)
    results = await asyncio.gather(*tasks)
    assert {r.outcome for r in results} == {"cancelled"}
    assert {r.error for r in results} == {"cancelled: the executor is shutting down"}


async def test_the_executor_runs_steps_again_after_shutdown(tmp_path: Path) -> None:
    executor = LocalExecutor(grace_s=0.3)
    first = await executor.run(command(tmp_path, "echo one", step_id="one"))
    await executor.shutdown()
    second = await executor.run(command(tmp_path, "echo two", step_id="two"))
    await executor.shutdown()
    assert (first.outcome, second.outcome) == ("succeeded", "succeeded")


async def test_steps_run_concurrently(tmp_path: Path) -> None:
    executor = LocalExecutor(grace_s=0.3)
    # Each waits for the other's file: they can only both finish if both run at once.
    a = tmp_path / "a"
    b = tmp_path / "b"
    script = "touch {mine}; while [ ! -e {theirs} ]; do sleep 0.01; done"
    results = await asyncio.gather(
        executor.run(command(tmp_path, script.format(mine=a, theirs=b), step_id="a", timeout_s=20)),
        executor.run(command(tmp_path, script.format(mine=b, theirs=a), step_id="b", timeout_s=20)),
    )
    await executor.shutdown()
    assert [r.outcome for r in results] == ["succeeded", "succeeded"]


async def test_on_started_gets_the_pid_while_the_step_runs(tmp_path: Path) -> None:
    executor = LocalExecutor(grace_s=0.3)
    seen: list[bool] = []
    cmd = command(tmp_path, "sleep 0.3")
    result = await executor.run(cmd, on_started=lambda where: seen.append(alive(pid_of(where))))
    await executor.shutdown()
    assert seen == [True]
    assert result.outcome == "succeeded"
