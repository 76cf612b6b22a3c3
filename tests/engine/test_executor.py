"""LocalExecutor with real processes: outcomes, start failures, env, cwd, argv, logs, masking.

Every test runs twice: with the step's working directory the console's own (the step is
started by posix_spawn) and with another one (Popen starts it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import signal
import sys
from pathlib import Path

import pytest

from console.exec.base import ExecResult, Started, StepCommand
from console.exec.local import LocalExecutor
from console.exec.step_process import Spawner

PY = sys.executable


@pytest.fixture(autouse=True, params=["posix_spawn", "popen"])
def spawned_by(request: pytest.FixtureRequest, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> str:
    """The console's working directory: the steps' (tmp_path), or elsewhere."""
    monkeypatch.chdir(tmp_path if request.param == "posix_spawn" else "/")
    return str(request.param)


def command(
    tmp_path: Path,
    *,
    argv: tuple[str, ...] | None = None,
    script: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float | None = None,
    secrets: tuple[str, ...] = (),
    step_id: str = "step",
) -> StepCommand:
    return StepCommand(
        step_id=step_id,
        attempt=1,
        argv=argv,
        script=script,
        env=dict(os.environ) if env is None else env,
        cwd=cwd or tmp_path,
        timeout_s=timeout_s,
        log_path=tmp_path / "logs" / step_id / "attempt-1.log",
        secrets=secrets,
    )


async def run(cmd: StepCommand) -> ExecResult:
    executor = LocalExecutor(grace_s=0.5)
    try:
        return await executor.run(cmd)
    finally:
        await executor.shutdown()


def log_of(result: ExecResult) -> bytes:
    return result.log_path.read_bytes()


async def test_a_step_that_exits_0_succeeds_and_its_log_is_recorded(tmp_path: Path) -> None:
    started: list[Started] = []
    executor = LocalExecutor(grace_s=0.5)
    result = await executor.run(
        command(tmp_path, script="echo hello; echo oops >&2"), on_started=started.append
    )
    await executor.shutdown()
    assert (result.outcome, result.exit_code, result.error) == ("succeeded", 0, None)
    assert [where.pid for where in started] == [result.pid]
    assert started[0].ref == f"pid {result.pid}"
    assert sorted(log_of(result).splitlines()) == [b"hello", b"oops"]
    assert result.log_size == len(log_of(result))
    assert result.log_sha256 == hashlib.sha256(log_of(result)).hexdigest()
    assert result.duration_s > 0
    # Step output can hold credentials nobody declared: the log is the owner's only.
    assert result.log_path.stat().st_mode & 0o777 == 0o600


async def test_a_non_zero_exit_is_a_failure_not_an_error(tmp_path: Path) -> None:
    result = await run(command(tmp_path, argv=(PY, "-c", "import sys; sys.exit(3)")))
    assert (result.outcome, result.exit_code, result.error) == ("failed", 3, "exited with code 3")


async def test_a_step_killed_by_a_signal_is_an_error(tmp_path: Path) -> None:
    result = await run(command(tmp_path, script="kill -KILL $$"))
    assert (result.outcome, result.exit_code, result.error) == ("error", -9, "killed by SIGKILL")


async def test_a_program_that_does_not_exist_is_an_error_with_no_log(tmp_path: Path) -> None:
    result = await run(command(tmp_path, argv=("no-such-program-here", "x")))
    assert result.outcome == "error"
    assert result.error == (
        "could not start: [Errno 2] No such file or directory: 'no-such-program-here'"
    )
    assert (result.exit_code, result.pid) == (None, None)
    assert not result.log_path.exists(), "no output, no log file"
    assert result.log_size == 0
    assert result.log_sha256 == hashlib.sha256(b"").hexdigest()


async def test_a_missing_working_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "not-there"
    result = await run(command(tmp_path, argv=("true",), cwd=missing))
    assert result.outcome == "error"
    assert result.error == f"could not start: [Errno 2] No such file or directory: '{missing}'"
    assert not result.log_path.exists()
    assert result.log_path.parent.is_dir()


async def test_a_program_without_execute_permission_is_an_error(tmp_path: Path) -> None:
    program = tmp_path / "deploy.sh"
    program.write_text("#!/bin/sh\necho never\n")
    program.chmod(0o644)
    result = await run(command(tmp_path, argv=(str(program),)))
    assert result.outcome == "error"
    assert result.error == f"could not start: [Errno 13] Permission denied: '{program}'"


async def test_a_log_that_cannot_be_created_is_an_error_not_an_exception(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("a file where the log directory should be")
    result = await run(command(tmp_path, argv=("true",)))
    assert result.outcome == "error"
    assert result.error is not None and result.error.startswith("could not open the log file:")
    assert result.pid is None


async def test_a_log_that_cannot_be_written_is_an_error_and_never_stalls_the_step(
    tmp_path: Path,
) -> None:
    cmd = command(tmp_path, argv=("head", "-c", "1000000", "/dev/zero"))
    result = await run(dataclasses.replace(cmd, log_path=Path("/dev/full")))
    assert (result.outcome, result.exit_code) == ("error", 0)
    assert result.error == "could not write the log /dev/full: No space left on device"
    assert result.log_size == 0


async def test_the_working_directory_is_honoured(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = await run(command(tmp_path, argv=("pwd",), cwd=workdir))
    assert log_of(result) == f"{workdir}\n".encode()


async def test_the_environment_is_exactly_the_one_given(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PARAM_VERSION": "1.4.2"}
    script = "import json, os; print(json.dumps(dict(os.environ), sort_keys=True))"
    result = await run(command(tmp_path, argv=(PY, "-c", script), env=env))
    assert result.outcome == "succeeded"
    seen = log_of(result).decode()
    # The interpreter itself may add LC_CTYPE under a C locale; nothing of ours leaks in.
    assert '"PARAM_VERSION": "1.4.2"' in seen
    assert "XDG_STATE_HOME" not in seen


async def test_the_program_is_looked_up_on_the_given_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "deploy-tool"
    tool.write_text("#!/bin/sh\necho from the given PATH\n")
    tool.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = await run(command(tmp_path, argv=("deploy-tool",), env=env))
    assert log_of(result) == b"from the given PATH\n"


async def test_list_form_passes_shell_metacharacters_literally(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("still here")
    tricky = f"$(rm {victim}); `rm {victim}` | rm {victim} && rm {victim} > /dev/null *"
    result = await run(command(tmp_path, argv=("printf", "%s\\n", tricky)))
    assert result.outcome == "succeeded"
    assert log_of(result) == tricky.encode() + b"\n"
    assert victim.read_text() == "still here"


async def test_string_form_runs_through_sh(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PARAM_ENV": "staging"}
    script = 'echo "deploying to $PARAM_ENV" | tr a-z A-Z'
    result = await run(command(tmp_path, script=script, env=env))
    assert log_of(result) == b"DEPLOYING TO STAGING\n"


async def test_stdin_is_empty(tmp_path: Path) -> None:
    result = await run(command(tmp_path, script="cat; echo end-of-input"))
    assert log_of(result) == b"end-of-input\n"


async def test_each_step_runs_in_its_own_session_and_process_group(tmp_path: Path) -> None:
    program = "import os; print(os.getpgid(0), os.getsid(0))"
    result = await run(command(tmp_path, argv=(PY, "-c", program)))
    pgid, sid = log_of(result).split()
    assert int(pgid) == int(sid) == result.pid
    assert int(sid) != os.getsid(0)


async def test_a_step_inherits_only_stdin_stdout_and_stderr(tmp_path: Path) -> None:
    # Not the log file, not the watchdog's pipe, not another step's pipes: a step holding
    # the watchdog pipe open would keep it from ever noticing the console's death.
    executor = LocalExecutor(grace_s=0.5)
    await executor.run(command(tmp_path, argv=("true",), step_id="first"))
    result = await executor.run(
        command(tmp_path, argv=(PY, "-c", "import os; print(sorted(os.listdir('/proc/self/fd')))"))
    )
    await executor.shutdown()
    # The fourth is the directory listdir itself has open.
    assert log_of(result) == b"['0', '1', '2', '3']\n"


async def test_full_pipes_on_both_streams_never_stall_the_step(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "for _ in range(64):\n"
        "    sys.stderr.buffer.write(b'e' * 65536); sys.stderr.flush()\n"
        "    sys.stdout.buffer.write(b'o' * 65536); sys.stdout.flush()\n"
    )
    result = await run(command(tmp_path, argv=(PY, "-c", script)))
    data = log_of(result)
    assert result.outcome == "succeeded"
    assert (data.count(b"o"), data.count(b"e")) == (64 * 65536, 64 * 65536)


async def test_secrets_are_masked_in_the_log_even_split_across_reads(tmp_path: Path) -> None:
    # Each piece is flushed separately with a pause, so the pipe delivers separate chunks.
    script = (
        "import sys, time\n"
        "out, err = sys.stdout.buffer, sys.stderr.buffer\n"
        "def say(stream, data):\n"
        "    stream.write(data); stream.flush(); time.sleep(0.15)\n"
        "say(out, b'url=postgres://app:hunt')\n"
        "say(out, b'er22@db/payments\\n')\n"
        "say(err, b'key=line-one\\nline')\n"
        "say(err, b'-two end\\n')\n"
    )
    secrets = ("hunter22", "line-one\nline-two")
    result = await run(command(tmp_path, argv=(PY, "-c", script), secrets=secrets))
    data = log_of(result)
    assert data == b"url=postgres://app:***@db/payments\nkey=*** end\n"
    assert result.log_sha256 == hashlib.sha256(data).hexdigest()


async def test_stdout_and_stderr_share_one_stream_in_the_order_written(tmp_path: Path) -> None:
    # The log holds what a terminal would show: stdout and stderr interleaved as written,
    # so a secret printed half on each stream is a secret in the log, and is masked.
    script = (
        "import sys, time\n"
        "def say(stream, data):\n"
        "    stream.write(data); stream.flush(); time.sleep(0.15)\n"
        "say(sys.stdout.buffer, b'id=hunt')\n"
        "say(sys.stderr.buffer, b'er22!\\n')\n"
        "say(sys.stdout.buffer, b'ing\\n')\n"
        "say(sys.stderr.buffer, b'last\\n')\n"
    )
    result = await run(command(tmp_path, argv=(PY, "-c", script), secrets=("hunter22",)))
    assert log_of(result) == b"id=***!\ning\nlast\n"


async def test_a_secret_at_the_very_end_of_the_output_is_masked(tmp_path: Path) -> None:
    result = await run(command(tmp_path, argv=("printf", "token hunter22"), secrets=("hunter22",)))
    assert log_of(result) == b"token ***"


async def test_each_attempt_truncates_its_own_log(tmp_path: Path) -> None:
    cmd = command(tmp_path, argv=("echo", "second"))
    cmd.log_path.parent.mkdir(parents=True)
    cmd.log_path.write_bytes(b"left over from an earlier try\n")
    result = await run(cmd)
    assert log_of(result) == b"second\n"


async def test_a_step_id_already_running_is_refused(tmp_path: Path) -> None:
    executor = LocalExecutor(grace_s=0.5)
    first = asyncio.create_task(executor.run(command(tmp_path, argv=("sleep", "5"))))
    await asyncio.sleep(0.05)
    with pytest.raises(ValueError, match="already running"):
        await executor.run(command(tmp_path, argv=("true",)))
    executor.cancel("step")
    assert (await first).outcome == "cancelled"
    await executor.shutdown()


def test_a_command_needs_exactly_one_of_argv_and_script(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        command(tmp_path, argv=("true",), script="true")
    with pytest.raises(ValueError, match="exactly one"):
        command(tmp_path)
    with pytest.raises(ValueError, match="argv is empty"):
        command(tmp_path, argv=())


def test_posix_spawn_starts_a_step_in_the_console_s_directory_on_its_path(
        tmp_path: Path, spawned_by: str) -> None:
    spawner = Spawner()
    pid, output, popen = spawner.spawn(("true",), dict(os.environ), tmp_path)
    os.close(output)
    _, status = os.waitpid(pid, 0)
    spawner.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert (popen is None) == (spawned_by == "posix_spawn")


def test_posix_spawn_knows_the_console_s_directory_by_any_path_to_it(
        tmp_path: Path, spawned_by: str) -> None:
    """A workflow reached through a symlinked directory runs where the console works too."""
    (tmp_path / "current").symlink_to(tmp_path)
    spawner = Spawner()
    pid, output, popen = spawner.spawn(("pwd",), dict(os.environ), tmp_path / "current")
    shown = os.read(output, 4096)
    os.close(output)
    os.waitpid(pid, 0)
    spawner.close()
    assert (popen is None) == (spawned_by == "posix_spawn")
    assert os.path.samefile(shown.decode().strip(), tmp_path)


async def test_a_step_starts_with_no_signal_ignored(tmp_path: Path) -> None:
    # Python ignores SIGPIPE and SIGXFSZ; a step gets the defaults back (`yes | head` ends).
    # (glibc's posix_spawn leaves its two internal signals, 32 and 33, ignored: a program
    # using glibc sets its own handlers for them as it starts.)
    result = await run(command(tmp_path, script="grep SigIgn /proc/self/status"))
    ignored = int(log_of(result).split()[1], 16)
    assert [sig for sig in signal.valid_signals() if ignored & (1 << (sig - 1))] == []
