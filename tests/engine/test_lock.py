"""Workflow locks with real processes and real users: refused with the holder's details,
freed by SIGKILL, shared across users, and blind to anything planted in the runtime dir.

Lock names are global per host (abstract sockets), so every test uses a fresh name.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.errors import LockError
from console.run.lock import LockHolder, WorkflowLock

from .conftest import Runner, write_workflow

SYSTEM_PYTHON = "/usr/bin/python3"  # readable by every user, unlike the checkout's venv

needs_users = pytest.mark.skipif(
    os.geteuid() != 0
    or shutil.which("useradd") is None
    or shutil.which("setpriv") is None
    or not os.access(SYSTEM_PYTHON, os.X_OK),
    reason="running a process as another user needs root, useradd, setpriv and /usr/bin/python3",
)


def fresh_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def holder(run: str = "R-1", pid: int | None = None) -> LockHolder:
    return LockHolder(
        user="alice",
        uid=os.getuid(),
        pid=os.getpid() if pid is None else pid,
        run=run,
        since="2026-01-02T03:04:05Z",
    )


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def is_bound(name: str) -> bool:
    shown = f"@console-lock/{name}"
    return any(
        line.split()[-1] == shown for line in Path("/proc/net/unix").read_text().splitlines()[1:]
    )


def refusal(name: str) -> str:
    lock = WorkflowLock(Path("/nonexistent"), name)
    with pytest.raises(LockError) as caught:
        lock.acquire(holder(run="R-second"))
    return str(caught.value)


# --- one process ---------------------------------------------------------------------------


def test_release_frees_the_name_at_once_and_twice_is_harmless() -> None:
    name = fresh_name()
    lock = WorkflowLock(Path("/nonexistent"), name)
    assert lock.name == name
    assert lock.path == f"@console-lock/{name}"
    lock.acquire(holder())
    assert is_bound(name)
    lock.release()
    lock.release()
    assert not is_bound(name)
    again = WorkflowLock(Path("/nonexistent"), name)
    again.acquire(holder())
    again.release()


def test_the_holder_answers_every_connection_with_who_it_is() -> None:
    name = fresh_name()
    lock = WorkflowLock(Path("/nonexistent"), name)
    lock.acquire(holder(run="R-answer"))
    try:
        for _ in range(3):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(5)
                probe.connect(f"\0console-lock/{name}".encode())
                answer = json.loads(probe.makefile("rb").readline())
            assert answer["run"] == "R-answer"
            assert answer["pid"] == os.getpid()
            assert answer["console_lock"] == name
    finally:
        lock.release()


def test_a_reader_that_never_reads_does_not_hold_up_release() -> None:
    name = fresh_name()
    lock = WorkflowLock(Path("/nonexistent"), name)
    lock.acquire(holder())
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(50)]
    try:
        for sock in idle:
            sock.connect(f"\0console-lock/{name}".encode())
        started = time.monotonic()
        lock.release()
        assert time.monotonic() - started < 2
        assert not is_bound(name)
    finally:
        for sock in idle:
            sock.close()


OUT_OF_FDS = """
import json, os, resource, socket, sys, time
from console.run.lock import LockHolder, WorkflowLock
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
name = sys.argv[1]
lock = WorkflowLock(None, name)
lock.acquire(LockHolder(user="a", uid=0, pid=os.getpid(), run="R-full", since="T"))
spare = []
try:
    while True:
        spare.append(os.dup(0))
except OSError:
    pass
os.close(spare.pop())
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.connect(("\\0console-lock/" + name).encode())  # queued: the answerer cannot accept it
cpu, wall = time.process_time(), time.monotonic()
time.sleep(0.5)  # a measuring window, not a wait for something to happen
busy = (time.process_time() - cpu) / (time.monotonic() - wall)
for fd in spare:
    os.close(fd)
client.settimeout(10)
answer = json.loads(client.makefile("rb").readline())
lock.release()
print(json.dumps({"busy": busy, "run": answer["run"]}))
"""


def test_a_holder_out_of_descriptors_neither_spins_nor_stops_answering() -> None:
    done = subprocess.run(
        [sys.executable, "-c", OUT_OF_FDS, fresh_name()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["run"] == "R-full"
    assert result["busy"] < 0.3, result


# --- two processes -------------------------------------------------------------------------

HOLD = """
import os, sys
from console.run.lock import LockHolder, WorkflowLock
lock = WorkflowLock(None, sys.argv[1])
lock.acquire(LockHolder(user="alice", uid=os.getuid(), pid=os.getpid(), run="R-first",
                        since="2026-01-02T03:04:05Z"))
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def held_elsewhere() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A lock taken by another process of this user, which holds it until killed."""
    name = fresh_name()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "held\n"
    try:
        yield name, proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_second_process_is_refused_with_the_holders_details(
    held_elsewhere: tuple[str, subprocess.Popen[str]],
) -> None:
    name, proc = held_elsewhere
    message = refusal(name)
    assert f"workflow lock {name!r} is held: locked by alice (uid {os.getuid()})" in message
    assert f"pid {proc.pid}, run R-first, since 2026-01-02T03:04:05Z" in message
    assert "`console cancel R-first`" in message


def test_sigkill_of_the_holder_frees_the_lock(
    held_elsewhere: tuple[str, subprocess.Popen[str]],
) -> None:
    name, proc = held_elsewhere
    refusal(name)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    lock = WorkflowLock(Path("/nonexistent"), name)
    lock.acquire(holder())  # no wait and no cleanup: the kernel freed it with the process
    lock.release()


def test_a_live_console_run_blocks_a_second_run_until_it_is_killed(
    tmp_path: Path, runner: Runner
) -> None:
    name = fresh_name()
    text = f'[workflow]\nname = "held"\nlock = "{name}"\n[steps.s]\nrun = "sleep 60"\n'
    path = write_workflow(tmp_path, text, name="first.toml")
    first = subprocess.Popen(
        [sys.executable, "-m", "console", "run", str(path), "--no-tui"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # SIGKILL its step too, below
    )
    try:
        wait_for(lambda: is_bound(name) or first.poll() is not None)
        assert first.poll() is None, first.communicate()[1]
        with pytest.raises(LockError) as caught:
            runner.run(text)
        message = str(caught.value)
        user = pwd.getpwuid(os.getuid()).pw_name
        assert f"locked by {user} (uid {os.getuid()}), pid {first.pid}, run " in message
        assert "`console cancel " in message
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        outcome, _engine, sink = runner.run(text.replace("sleep 60", "true"))
        assert outcome == "succeeded"
        assert [e.type for e in sink.events].count("lock.released") == 1
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)


# --- anything planted where the old lock files were ----------------------------------------


@pytest.mark.parametrize("planted", ["symlinked-dir", "symlinked-file"])
def test_links_planted_in_the_runtime_dir_are_never_touched(
    tmp_path: Path, runner: Runner, planted: str
) -> None:
    name = fresh_name()
    victim = tmp_path / "victim"
    victim.mkdir()
    precious = victim / f"{name}.lock"
    precious.write_text("precious-data")
    precious.chmod(0o600)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    if planted == "symlinked-dir":
        (runtime / "locks").symlink_to(victim)
    else:
        (runtime / "locks").mkdir()
        (runtime / "locks" / f"{name}.lock").symlink_to(precious)
    before = sorted(p.name for p in runtime.rglob("*")), sorted(victim.iterdir())
    outcome, _engine, sink = runner.run(
        f'[workflow]\nname = "p"\nlock = "{name}"\n[steps.s]\nrun = "true"\n'
    )
    assert outcome == "succeeded"
    assert [e.type for e in sink.events].count("lock.acquired") == 1
    assert precious.read_text() == "precious-data"
    assert (sorted(p.name for p in runtime.rglob("*")), sorted(victim.iterdir())) == before


# --- other users ---------------------------------------------------------------------------

SQUAT = """
import json, os, socket, sys
name, mode = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.bind(("\\0console-lock/" + name).encode())
if mode != "bind-only":
    sock.listen(8)
print("squatting", flush=True)
if mode == "forge":
    while True:
        conn, _ = sock.accept()
        conn.sendall(json.dumps({"console_lock": name, "user": "root", "uid": 0, "pid": 1,
                                 "run": "R-forged", "since": "2020-01-01T00:00:00Z"}).encode()
                     + b"\\n")
        conn.close()
sys.stdin.read()
"""

TRY = """
import socket, sys
address = ("\\0console-lock/" + sys.argv[1]).encode()
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    sock.bind(address)
except OSError:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.connect(address)
    print("in use:", probe.makefile().readline(), end="")
else:
    print("taken")
"""


@pytest.fixture(scope="module")
def other_user() -> Iterator[str]:
    name = f"cl{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def as_user(user: str, *argv: str) -> list[str]:
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]


@needs_users
@pytest.mark.parametrize("mode", ["listen", "bind-only", "forge"])
def test_another_users_squatter_blocks_roots_run_and_is_named(
    other_user: str, runner: Runner, mode: str
) -> None:
    name = fresh_name()
    squatter = subprocess.Popen(
        as_user(other_user, SYSTEM_PYTHON, "-c", SQUAT, name, mode),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert squatter.stdout is not None
        assert squatter.stdout.readline() == "squatting\n"
        with pytest.raises(LockError) as caught:
            runner.run(f'[workflow]\nname = "sq"\nlock = "{name}"\n[steps.s]\nrun = "true"\n')
        message = str(caught.value)
        uid = pwd.getpwnam(other_user).pw_uid
        assert f"held by pid {squatter.pid} of {other_user} (uid {uid})" in message
        if mode == "forge":
            assert "answers as run R-forged" in message
            assert "it says pid 1; the kernel does not confirm it" in message
        else:
            assert "which is not a console run" in message
        assert "locked by" not in message
    finally:
        squatter.kill()
        squatter.wait(timeout=10)


@needs_users
def test_a_lock_is_shared_across_users(other_user: str) -> None:
    name = fresh_name()
    lock = WorkflowLock(Path("/nonexistent"), name)
    lock.acquire(holder(run="R-root"))
    try:
        tried = subprocess.run(
            as_user(other_user, SYSTEM_PYTHON, "-c", TRY, name),
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
            check=True,
        )
        assert tried.stdout.startswith("in use: ")
        assert json.loads(tried.stdout.removeprefix("in use: "))["run"] == "R-root"
    finally:
        lock.release()
    tried = subprocess.run(
        as_user(other_user, SYSTEM_PYTHON, "-c", TRY, name),
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        check=True,
    )
    assert tried.stdout == "taken\n"
