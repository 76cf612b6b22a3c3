"""A live run's control socket under a hostile local user: real runs, real processes.

The run is the real CLI (`python -m console run --no-tui`) so its stderr is what an
operator's terminal shows; hostile clients are separate processes under other uids
(setpriv; these tests need root). A server under a tight descriptor limit is a real
ControlServer in its own process (SERVER below). Every wait is on a condition.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from console.run.control_limits import FD_RESERVE, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_UID

from ..multiuser import SharedPython
from .cli_runs import wait_for
from .test_control_engine import GATED

NOBODY = 65534
HOSTILE = 41001  # a uid with no account: the kernel still vouches for it
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run clients as other uids",
)




class Run:
    """`console run --no-tui` in the background; stdout and stderr go to files."""

    def __init__(self, tmp_path: Path, runtime: Path, workflow: str = GATED) -> None:
        self.tmp_path = tmp_path
        self.audit = tmp_path / "audit.jsonl"
        self.stdout = tmp_path / "run.out"
        self.stderr = tmp_path / "run.err"
        self.runtime = runtime
        path = tmp_path / "wf.toml"
        path.write_text(textwrap.dedent(workflow))
        self.env = {**os.environ, "CONSOLE_RUNTIME_DIR": str(runtime),
                    "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "console", "run", str(path), "--no-tui",
                 "--audit", str(self.audit)],
                env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )
        self.socket = wait_for("the run's control socket", self._socket)
        self.run_id = self.socket.name.removesuffix(".sock")

    def _socket(self) -> Path | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"the run ended early: {self.stderr.read_text()}")
        found = list(self.runtime.glob("*.sock"))
        return found[0] if found else None

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.audit.read_bytes().splitlines() if self.audit.exists() else []:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line being written
            if kind is None or record.get("type") == kind:
                out.append(record)
        return out

    def wait_for_record(self, kind: str, step: str | None = None) -> dict[str, Any]:
        return wait_for(f"{kind} {step or ''}", lambda: next(
            (r for r in self.records(kind) if step is None or r.get("step") == step), None
        ))

    def wait(self) -> int:
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    started: list[Run] = []

    def start(runtime: Path, workflow: str = GATED) -> Run:
        started.append(Run(tmp_path, runtime, workflow))
        return started[-1]

    yield start
    for run in started:
        run.kill()


def as_uid(uid: int, argv: list[str]) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]


def console_as(
    uid: int | None, *args: str, env: dict[str, str], python: SharedPython | None = None
) -> subprocess.CompletedProcess[str]:
    """`console ARGS` as `uid` (from a Python every user can read), or as ourselves."""
    if uid is None:
        argv = [sys.executable, "-m", "console", *args]
    else:
        assert python is not None, "another uid needs the shared Python"
        argv = as_uid(uid, python.console(*args))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


# Opens N connections and keeps them; reads the `busy` answers as they come (closing those),
# prints a summary once BUSY of them said busy, then holds the rest until stdin closes.
HOLDER = r"""
import json, selectors, socket, sys, time
path, n, expect = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sel = selectors.DefaultSelector()
held, busy, sample = 0, 0, None
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    sel.register(s, selectors.EVENT_READ)
    held += 1
deadline = time.monotonic() + 60
while busy < expect and time.monotonic() < deadline:
    for key, _ in sel.select(1):
        data = key.fileobj.recv(65536)
        if data:
            answer = json.loads(data.split(b"\n")[0])
            assert answer["error"] == "busy", answer
            busy += 1
            sample = answer
        sel.unregister(key.fileobj)
        key.fileobj.close()
        held -= 1
print(json.dumps({"busy": busy, "held": held, "sample": sample}), flush=True)
sys.stdin.read()
"""


class Holder:
    """A hostile process as `uid` holding connections to a run's socket."""

    def __init__(
        self, python: SharedPython, uid: int, path: Path, n: int, expect_busy: int
    ) -> None:
        self.proc = subprocess.Popen(
            as_uid(uid, python.argv("-c", HOLDER, str(path), str(n), str(expect_busy))),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def summary(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read() if self.proc.stderr else ""
        result: dict[str, Any] = json.loads(line)
        return result

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture
def holders(shared_python: SharedPython) -> Iterator[Callable[[int, Path, int, int], Holder]]:
    made: list[Holder] = []

    def hold(uid: int, path: Path, n: int, expect_busy: int) -> Holder:
        made.append(Holder(shared_python, uid, path, n, expect_busy))
        return made[-1]

    yield hold
    for holder in made:
        if holder.proc.poll() is None:
            holder.proc.kill()
            holder.proc.wait()


REFUSED_LINE = re.compile(
    r"control socket: refused ([\d,]+) connections? from uid (\d+)(?: \(\w+\))? in the last "
    r"[\d.]+ s "
    r"\((limit \d+ per user|limit \d+ in all|limits: \d+ per user, \d+ in all)\)"
)


def refused_lines(stderr: str) -> list[tuple[int, int, str]]:
    """(count, uid, limits) of each one-line report; fails on any other stderr line."""
    found = []
    for line in stderr.splitlines():
        match = REFUSED_LINE.fullmatch(line)
        assert match, f"unexpected line on the run's stderr: {line!r}"
        found.append((int(match[1].replace(",", "")), int(match[2]), match[3]))
    return found


# --- connection limits on a real run ----------------------------------------------------


@needs_root
def test_idle_connections_over_the_per_user_limit_are_refused_and_approval_still_works(
    runs: Callable[..., Run], holders: Callable[..., Holder], shared_dir: Path,
    shared_python: SharedPython,
) -> None:
    run = runs(shared_dir)
    run.wait_for_record("gate.opened", "deploy")
    flood = 2000
    holder = holders(HOSTILE, run.socket, flood, flood - MAX_CONNECTIONS_PER_UID)

    summary = holder.summary()
    approved = console_as(NOBODY, "approve", run.run_id, "deploy", "--reason", "lgtm",
                          env=run.env, python=shared_python)
    code = run.wait()
    holder.release()

    assert summary["busy"] == flood - MAX_CONNECTIONS_PER_UID
    assert summary["held"] == MAX_CONNECTIONS_PER_UID
    assert summary["sample"] == {
        "ok": False, "error": "busy",
        "message": f"uid {HOSTILE} already has {MAX_CONNECTIONS_PER_UID} connections open to "
                   f"run {run.run_id} (limit {MAX_CONNECTIONS_PER_UID} per user); close one "
                   "and try again",
    }
    assert approved.returncode == 0, approved.stderr
    assert code == 0, run.stderr.read_text()
    finished = {r["step"]: r["data"]["outcome"] for r in run.records("step.finished")}
    assert finished == {"build": "succeeded", "deploy": "succeeded", "verify": "succeeded"}
    # The operator's terminal: a line per burst (never per connection), no traceback.
    reports = refused_lines(run.stderr.read_text())
    assert 1 <= len(reports) <= 3
    assert sum(n for n, _, _ in reports) == flood - MAX_CONNECTIONS_PER_UID
    assert {(uid, limit) for _, uid, limit in reports} == {
        (HOSTILE, f"limit {MAX_CONNECTIONS_PER_UID} per user")
    }


# Asks the run once, through the real client, with a long timeout; prints the answer.
ASK = r"""
import json, sys
from pathlib import Path
from console.run.control_client import request
answer = request(sys.argv[1], json.loads(sys.argv[2]), timeout=120, socket_path=Path(sys.argv[3]))
print(json.dumps(answer), flush=True)
"""


@needs_root
def test_when_the_run_serves_its_limit_in_all_a_client_waits_for_room(
    runs: Callable[..., Run], holders: Callable[..., Holder], shared_dir: Path,
    shared_python: SharedPython,
) -> None:
    run = runs(shared_dir)
    run.wait_for_record("gate.opened", "deploy")
    uids = range(HOSTILE, HOSTILE + MAX_CONNECTIONS // MAX_CONNECTIONS_PER_UID)
    full = [holders(uid, run.socket, MAX_CONNECTIONS_PER_UID, 0) for uid in uids]
    assert [h.summary()["held"] for h in full] == [MAX_CONNECTIONS_PER_UID] * len(full)
    payload = json.dumps({"op": "approve", "step": "deploy", "reason": "lgtm"})
    approver = subprocess.Popen(
        as_uid(NOBODY, shared_python.argv("-c", ASK, run.run_id, payload, str(run.socket))),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # The approver was turned away (the run says so once its report window ends) ...
        wait_for("the run to report turning the approver away",
                 lambda: f"from uid {NOBODY}" in run.stderr.read_text())
        assert approver.poll() is None
        # ... and gets in, asking again, as soon as one of the holders lets go.
        full[0].release()
        out, err = approver.communicate(timeout=120)
    finally:
        if approver.poll() is None:
            approver.kill()
    code = run.wait()
    for holder in full[1:]:
        holder.release()

    assert approver.returncode == 0, err
    answer = json.loads(out)
    assert answer["ok"] is True and answer["message"].startswith("approved by nobody: 1 of 1")
    assert code == 0, run.stderr.read_text()
    reports = refused_lines(run.stderr.read_text())
    assert {uid for _, uid, _ in reports} == {NOBODY}
    assert {limit for _, _, limit in reports} == {f"limit {MAX_CONNECTIONS} in all"}


# --- descriptors: a real ControlServer in a process with a tight RLIMIT_NOFILE ----------

SERVER = r"""
import asyncio, resource, sys
from pathlib import Path
from console.policy.verdict import Verdict
from console.run.control import ControlServer
from console.run.fd_limits import free_fds, open_fd_count

class Actions:
    run_id = "20250101T000000Z-f00d00"
    def approve(self, step, uid, via, reason): return Verdict(False, "no gate")
    deny = override = lambda self, step, uid, via, reason: Verdict(False, "no gate")
    cancel_step = retry_step = lambda self, step, uid, via: Verdict(False, "no")
    def cancel_run(self, uid, via): return Verdict(False, "no")

async def main():
    path, mode, reserve, room = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    server = None
    def status():
        if mode == "circular":
            loop = {}
            loop["self"] = loop
            return loop
        return {"open": server.count.open, "free": free_fds()}
    server = ControlServer(Actions(), path, status, fd_reserve=reserve)
    await server.start()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_fd_count() + reserve + room, hard))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await server.close()

asyncio.run(main())
"""


class Server:
    def __init__(self, tmp_path: Path, mode: str, reserve: int, room: int) -> None:
        self.path = tmp_path / "runtime" / "20250101T000000Z-f00d00.sock"
        self.stderr = tmp_path / "server.err"
        with self.stderr.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(self.path), mode, str(reserve), str(room)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == "ready\n", self.stderr.read_text()

    def stop(self) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0, self.stderr.read_text()
        return self.stderr.read_text()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[[str, int, int], Server]]:
    made: list[Server] = []

    def start(mode: str, reserve: int, room: int) -> Server:
        made.append(Server(tmp_path, mode, reserve, room))
        return made[-1]

    yield start
    for server in made:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def connect_and_ask(path: Path, n: int) -> list[socket.socket]:
    conns = []
    for _ in range(n):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(str(path))
        conn.sendall(b'{"op": "status"}\n')
        conns.append(conn)
    return conns


def answered(conns: list[socket.socket], want: int) -> list[tuple[socket.socket, dict[str, Any]]]:
    """Wait until `want` of `conns` have answered; return those with their answers."""
    got: list[tuple[socket.socket, dict[str, Any]]] = []
    with selectors.DefaultSelector() as sel:
        for conn in conns:
            sel.register(conn, selectors.EVENT_READ)

        def more() -> bool:
            for key, _ in sel.select(0.1):
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                got.append((conn, json.loads(conn.recv(65536).split(b"\n")[0])))
                sel.unregister(conn)
            return len(got) >= want

        wait_for(f"{want} answers", more)
    return got


def test_the_server_never_accepts_into_the_descriptors_kept_for_steps(
    servers: Callable[[str, int, int], Server],
) -> None:
    server = servers("status", FD_RESERVE, 3)
    conns = connect_and_ask(server.path, 6)
    first = answered(conns, 3)
    # Paused at the reserve: reported once its window ends, the other three still waiting.
    wait_for("the reserve report", lambda: "stopped accepting" in server.stderr.read_text())
    waiting = [c for c in conns if all(c is not a for a, _ in first)]
    for conn in waiting:
        conn.setblocking(False)
        with pytest.raises(BlockingIOError):
            conn.recv(1)
        conn.setblocking(True)
    for conn, _ in first:
        conn.close()
    rest = answered(waiting, 3)
    stderr = server.stop()

    assert [a["ok"] for _, a in first + rest] == [True] * 6
    assert min(a["status"]["free"] for _, a in first) >= FD_RESERVE
    assert max(a["status"]["open"] for _, a in first) == 3
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert 1 <= len(lines) <= 3, lines
    for line in lines:
        assert re.fullmatch(
            rf"control socket: stopped accepting (once|[\d,]+ times) with {FD_RESERVE} file "
            rf"descriptors free in the last [\d.]+ s \({FD_RESERVE} are kept for steps\)", line
        ), line


def test_out_of_descriptors_is_one_line_and_no_traceback(
    servers: Callable[[str, int, int], Server],
) -> None:
    server = servers("status", 0, 2)  # no reserve: accept() itself runs out (EMFILE)
    conns = connect_and_ask(server.path, 5)
    first = answered(conns, 2)
    wait_for("the accept() report", lambda: "accept() failed" in server.stderr.read_text())
    for conn, _ in first:
        conn.close()
    waiting = [c for c in conns if all(c is not a for a, _ in first)]
    rest = answered(waiting, 2)  # two more fit once the first two are gone
    for conn in conns:
        conn.close()
    stderr = server.stop()

    assert [a["ok"] for _, a in first + rest] == [True] * 4
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert 1 <= len(lines) <= 3, lines
    for line in lines:
        assert re.fullmatch(
            r"control socket: accept\(\) failed: Too many open files \([\d,]+x\) in the last "
            r"[\d.]+ s \(paused 0.25 s each\)", line
        ), line


def test_an_error_outside_any_request_ends_that_connection_with_one_line(
    servers: Callable[[str, int, int], Server],
) -> None:
    server = servers("circular", FD_RESERVE, 64)  # status data that cannot be sent
    [conn] = connect_and_ask(server.path, 1)
    assert conn.recv(65536) == b""  # hung up on, without an answer
    conn.close()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.connect(str(server.path))
        other.sendall(b'{"op": "cancel"}\n')
        assert json.loads(other.recv(65536)) == {"ok": False, "message": "no"}
    stderr = server.stop()

    assert "Traceback" not in stderr
    assert re.fullmatch(
        r"control socket: 1 connection ended on an internal error in the last [\d.]+ s "
        r"\(last: ValueError: Circular reference detected\)\n", stderr
    ), stderr


# --- requests that break the JSON parser -------------------------------------------------


def test_a_huge_number_or_deep_nesting_is_a_bad_request_and_prints_nothing(
    runs: Callable[..., Run], tmp_path: Path
) -> None:
    run = runs(tmp_path / "runtime")
    run.wait_for_record("gate.opened", "deploy")
    lines = [
        b'{"op": "approve", "step": "deploy", "reason": ' + b"7" * 5000 + b"}\n",
        b"[" * 60000 + b"\n",
        b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"\n",
        b'{"op": "approve", "step": ' + b"[" * 900 + b"]" * 900 + b"}\n",
        b'{"op": "status"}\n',
    ]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(run.socket))
        reader = conn.makefile("rb")
        answers = []
        for line in lines:
            conn.sendall(line)
            answers.append(json.loads(reader.readline()))
    cancelled = console_as(None, "cancel", run.run_id, env=run.env)
    run.wait()

    assert [a.get("error") for a in answers] == ["bad_request"] * 4 + [None]
    assert answers[0]["message"] == "request has a number of more than 4300 digits"
    assert answers[1]["message"] == "request is nested too deeply; send a flat JSON object"
    assert answers[4]["ok"] is True
    assert cancelled.returncode == 0, cancelled.stderr
    assert run.stderr.read_text() == ""


# --- a flood of refused requests -------------------------------------------------------

# Sends N `cancel` requests on one connection, 100 at a time, and counts the answers.
CANCELS = r"""
import collections, json, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect(path)
answers, reader, sent = collections.Counter(), conn.makefile("rb"), 0
while sent < n:
    batch = min(100, n - sent)
    conn.sendall(b'{"op": "cancel"}\n' * batch)
    for _ in range(batch):
        answers[reader.readline().decode()] += 1
    sent += batch
print(json.dumps(answers))
"""


@needs_root
def test_a_burst_of_refused_cancels_is_a_few_audit_records_that_count_them_all(
    runs: Callable[..., Run], shared_dir: Path, shared_python: SharedPython
) -> None:
    run = runs(shared_dir)
    run.wait_for_record("gate.opened", "deploy")
    burst = 5000
    started = time.monotonic()
    flood = subprocess.run(
        as_uid(NOBODY, shared_python.argv("-c", CANCELS, str(run.socket), str(burst))),
        capture_output=True, text=True, timeout=120,
    )
    elapsed = time.monotonic() - started
    cancelled = console_as(None, "cancel", run.run_id, env=run.env)
    run.wait()

    # Each request still got its own verdict.
    assert flood.returncode == 0, flood.stderr
    verdict = {"ok": False, "message": f"only root, who started run {run.run_id}, can cancel it"}
    assert json.loads(flood.stdout) == {json.dumps(verdict) + "\n": burst}
    assert cancelled.returncode == 0, cancelled.stderr
    # The trail: the first refusal at once, then about one record per second carrying the
    # count; every refusal is counted, and all of it is written before run.finished.
    records = run.records()
    refused = [r for r in records if r["type"] == "approval.refused"]
    assert {r["actor"]["uid"] for r in refused} == {NOBODY}
    assert sum(r["data"].get("count", 1) for r in refused) == burst
    assert "count" not in refused[0]["data"]
    assert 2 <= len(refused) <= 3 + elapsed / 1.0, (len(refused), elapsed)
    assert records[-1]["type"] == "run.finished"
    # The operator's terminal: one line per record, nothing on stderr.
    shown = [ln for ln in run.stdout.read_text().splitlines() if "by nobody refused" in ln]
    assert len(shown) == len(refused)
    assert any(f"refused ({burst - 1} times)" in ln for ln in shown) or len(refused) > 2
    assert run.stderr.read_text() == ""
