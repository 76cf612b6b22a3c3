"""The control socket over real Unix sockets and real processes.

GateActions is a small, real RunActions (one gate, separation of duties) so the server is
tested on its own; test_control_engine.py drives a real Engine the same way.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from console.errors import ControlError
from console.paths import control_socket_path
from console.policy.verdict import Verdict
from console.run.control import (
    MAX_REQUEST_BYTES,
    ControlServer,
    PeerCredentials,
    peer_credentials,
    request,
)

from ..multiuser import Account, SharedPython, as_user, needs_other_users

RUN_ID = "20250101T000000Z-c0ffee"


class GateActions:
    """Steps in `waiting` sit at a gate that needs one approval from someone but the initiator."""

    run_id = RUN_ID

    def __init__(self, initiator_uid: int, waiting: set[str] | None = None) -> None:
        self.initiator_uid = initiator_uid
        self.waiting = set(waiting if waiting is not None else {"deploy"})
        self.calls: list[tuple[Any, ...]] = []
        self.cancelled = False

    def _gate(self, action: str, step: str, uid: int) -> Verdict | None:
        if step not in self.waiting:
            return Verdict(False, f"step {step!r} is not waiting at a gate")
        if uid == self.initiator_uid:
            return Verdict(
                False,
                f"you started this run; policy 'two people' requires someone else to {action}",
            )
        return None

    def approve(self, step: str, uid: int, via: str, reason: str | None) -> Verdict:
        self.calls.append(("approve", step, uid, via, reason))
        refused = self._gate("approve", step, uid)
        if refused:
            return refused
        self.waiting.discard(step)
        return Verdict(True, f"approved {step} as uid {uid}")

    def deny(self, step: str, uid: int, via: str, reason: str) -> Verdict:
        self.calls.append(("deny", step, uid, via, reason))
        if step not in self.waiting:
            return Verdict(False, f"step {step!r} is not waiting at a gate")
        self.waiting.discard(step)
        return Verdict(True, f"denied {step}: {reason}")

    def override(self, step: str, uid: int, via: str, reason: str) -> Verdict:
        self.calls.append(("override", step, uid, via, reason))
        return Verdict(False, f"policy on {step} is hard; no override")

    def cancel_step(self, step: str, uid: int, via: str) -> Verdict:
        self.calls.append(("cancel_step", step, uid, via))
        return Verdict(True, f"cancelling {step}")

    def cancel_run(self, uid: int, via: str) -> Verdict:
        self.calls.append(("cancel_run", uid, via))
        self.cancelled = True
        return Verdict(True, "cancelling the run")

    def retry_step(self, step: str, uid: int, via: str) -> Verdict:
        self.calls.append(("retry_step", step, uid, via))
        return Verdict(False, f"step {step!r} has not failed")

    def status(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": "running", "waiting": sorted(self.waiting)}


@asynccontextmanager
async def serving(actions: GateActions, socket_path: Path) -> AsyncIterator[ControlServer]:
    server = ControlServer(actions, socket_path, actions.status)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def exchange(socket_path: Path, *lines: bytes) -> list[bytes]:
    """Send raw lines on one connection; return the answer lines (until the server closes)."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    answers: list[bytes] = []
    try:
        for line in lines:
            writer.write(line)
            await writer.drain()
            answers.append(await reader.readline())
    finally:
        writer.close()
        await writer.wait_closed()
    return answers


NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")


def ask(payload: dict[str, Any], **kwargs: Any) -> Any:
    return asyncio.to_thread(request, RUN_ID, payload, **kwargs)


async def cli(*argv: str, env: dict[str, str] | None = None,
              command: Sequence[str] = (sys.executable, "-m", "console")) -> tuple[int, str, str]:
    """Run `console *argv`; `command` may be another user's (multiuser.as_user)."""
    proc = await asyncio.create_subprocess_exec(
        *command, *argv, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# --- the server ------------------------------------------------------------------------


async def test_status_op_answers_with_the_runs_status() -> None:
    actions = GateActions(initiator_uid=os.getuid())
    async with serving(actions, control_socket_path(RUN_ID)):
        answer = await ask({"op": "status"})
    assert answer["ok"] is True
    assert answer["status"] == {"run_id": RUN_ID, "status": "running", "waiting": ["deploy"]}


async def test_socket_is_0666_while_live_and_removed_on_close() -> None:
    path = control_socket_path(RUN_ID)
    async with serving(GateActions(initiator_uid=os.getuid()), path):
        info = os.lstat(path)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o666
    assert not os.path.lexists(path)


async def test_identity_claimed_in_the_request_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    actions = GateActions(initiator_uid=os.getuid())
    async with serving(actions, control_socket_path(RUN_ID)):
        answer = await ask({"op": "approve", "step": "deploy", "uid": NOBODY, "user": "mallory",
                            "reason": "lgtm", "via": "tui"})
    assert answer == {
        "ok": False,
        "message": "you started this run; policy 'two people' requires someone else to approve",
    }
    assert actions.calls == [("approve", "deploy", os.getuid(), "socket", "lgtm")]
    assert actions.waiting == {"deploy"}


@needs_other_users
async def test_a_process_with_another_uid_is_seen_with_its_own_uid(
    shared_python: SharedPython, shared_dir: Path
) -> None:
    actions = GateActions(initiator_uid=os.getuid())
    runtime = shared_dir  # another uid reaches its socket; pytest's tmp_path is private
    nobody = as_user(Account.named("nobody"), shared_python.console())
    env = {"CONSOLE_RUNTIME_DIR": str(runtime), "USER": "root", "LOGNAME": "root"}
    async with serving(actions, runtime / f"{RUN_ID}.sock"):
        own = await cli("approve", RUN_ID, "deploy", env=env)
        other = await cli("approve", RUN_ID, "deploy", "--reason", "checked the diff",
                          env=env, command=nobody)
    assert own == (3, "", "console: you started this run; policy 'two people' requires "
                          "someone else to approve\n")
    assert other == (0, f"approved deploy as uid {NOBODY}\n", "")
    assert actions.calls == [
        ("approve", "deploy", 0, "socket", None),
        ("approve", "deploy", NOBODY, "socket", "checked the diff"),
    ]


def test_peer_credentials_name_the_connecting_process(tmp_path: Path) -> None:
    path = tmp_path / "peer.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(1)
        client = subprocess.Popen(
            [sys.executable, "-c",
             "import socket, sys; s = socket.socket(socket.AF_UNIX); "
             f"s.connect({str(path)!r}); sys.stdin.read()"],
            stdin=subprocess.PIPE,
        )
        try:
            conn, _ = listener.accept()
            with conn:
                creds = peer_credentials(conn)
        finally:
            assert client.stdin is not None
            client.stdin.close()
            client.wait()
    assert creds == PeerCredentials(pid=client.pid, uid=os.getuid(), gid=os.getgid())


async def test_bad_requests_get_errors_and_the_connection_goes_on() -> None:
    actions = GateActions(initiator_uid=NOBODY)
    async with serving(actions, control_socket_path(RUN_ID)) as server:
        answers = [json.loads(a) for a in await exchange(
            server.path,
            b"not json\n",
            b"[1, 2]\n",
            b"\xff\xfe\n",
            b'{"op": "launch"}\n',
            b'{"step": "deploy"}\n',
            b'{"op": "approve"}\n',
            b'{"op": "deny", "step": "deploy"}\n',
            b'{"op": "override", "step": "deploy", "reason": 7}\n',
            b'{"op": "approve", "step": "deploy", "reason": ["x"]}\n',
            b'{"op": "status"}\n',
        )]
    kinds = [(a["ok"], a.get("error")) for a in answers]
    assert kinds == [(False, "bad_json")] * 3 + [
        (False, "unknown_op"), (False, "bad_request"), (False, "bad_request"),
        (False, "bad_request"), (False, "bad_request"), (False, "bad_request"), (True, None),
    ]
    assert answers[3]["message"] == (
        "unknown op 'launch'; expected one of: status, approve, deny, override, cancel, retry"
    )
    assert answers[5]["message"] == 'approve needs "step" as a non-empty string'
    assert answers[6]["message"] == 'deny needs "reason" as a non-empty string'
    assert actions.calls == []


async def test_an_oversized_line_is_refused_and_the_server_keeps_serving() -> None:
    actions = GateActions(initiator_uid=NOBODY)
    async with serving(actions, control_socket_path(RUN_ID)) as server:
        huge = b'{"op": "approve", "step": "deploy", "reason": "' + b"x" * MAX_REQUEST_BYTES
        [answer] = await exchange(server.path, huge + b'"}\n')
        assert json.loads(answer) == {
            "ok": False, "error": "too_long",
            "message": "request longer than 64 KiB; send one JSON object per line",
        }
        assert (await ask({"op": "status"}))["ok"] is True
    assert actions.calls == []


async def test_a_client_that_hangs_up_mid_request_changes_nothing() -> None:
    actions = GateActions(initiator_uid=NOBODY)
    async with serving(actions, control_socket_path(RUN_ID)) as server:
        whole = b'{"op": "approve", "step": "deploy"}'
        for partial in (b"", whole[:20], whole):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(str(server.path))
            client.sendall(partial)
            client.close()
        # A client that half-closes without a newline hears why nothing was done.
        reader, writer = await asyncio.open_unix_connection(str(server.path))
        writer.write(b'{"op": "approve", "step": "deploy"}')
        writer.write_eof()
        answer = json.loads(await reader.readline())
        writer.close()
        assert answer["error"] == "incomplete"
        assert (await ask({"op": "status"}))["ok"] is True
    assert actions.calls == []
    assert actions.waiting == {"deploy"}


async def test_an_action_that_raises_is_an_error_not_a_dead_socket() -> None:
    class Broken(GateActions):
        def approve(self, step: str, uid: int, via: str, reason: str | None) -> Verdict:
            raise RuntimeError("gate table corrupted")

    async with serving(Broken(initiator_uid=NOBODY), control_socket_path(RUN_ID)):
        broken = await ask({"op": "approve", "step": "deploy"})
        alive = await ask({"op": "status"})
    assert broken == {"ok": False, "error": "internal",
                      "message": "internal error: RuntimeError: gate table corrupted"}
    assert alive["ok"] is True


async def test_every_op_reaches_its_action() -> None:
    actions = GateActions(initiator_uid=NOBODY, waiting={"deploy", "migrate"})
    uid = os.getuid()
    async with serving(actions, control_socket_path(RUN_ID)):
        answers = [await ask(p) for p in (
            {"op": "deny", "step": "migrate", "reason": "wrong window"},
            {"op": "override", "step": "deploy", "reason": "incident 42"},
            {"op": "cancel", "step": "build"},
            {"op": "retry", "step": "build"},
            {"op": "cancel"},
        )]
    assert [(a["ok"], a["message"]) for a in answers] == [
        (True, "denied migrate: wrong window"),
        (False, "policy on deploy is hard; no override"),
        (True, "cancelling build"),
        (False, "step 'build' has not failed"),
        (True, "cancelling the run"),
    ]
    assert actions.calls == [
        ("deny", "migrate", uid, "socket", "wrong window"),
        ("override", "deploy", uid, "socket", "incident 42"),
        ("cancel_step", "build", uid, "socket"),
        ("retry_step", "build", uid, "socket"),
        ("cancel_run", uid, "socket"),
    ]


async def test_many_clients_at_once() -> None:
    actions = GateActions(initiator_uid=NOBODY)
    async with serving(actions, control_socket_path(RUN_ID)):
        answers = await asyncio.gather(*(ask({"op": "status"}) for _ in range(20)))
    assert all(a["ok"] for a in answers)


async def test_close_ends_idle_connections() -> None:
    path = control_socket_path(RUN_ID)
    server = ControlServer(GateActions(initiator_uid=NOBODY), path, lambda: {})
    await server.start()
    reader, writer = await asyncio.open_unix_connection(str(path))
    await asyncio.wait_for(server.close(), timeout=5)
    assert await reader.read() == b""
    writer.close()
    assert not os.path.lexists(path)


async def test_a_silent_client_is_hung_up_on() -> None:
    path = control_socket_path(RUN_ID)
    server = ControlServer(GateActions(initiator_uid=NOBODY), path, lambda: {},
                           idle_timeout_s=0.05)
    await server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        writer.close()
        assert (await ask({"op": "status"}))["ok"] is True
    finally:
        await server.close()


# --- socket file safety ------------------------------------------------------------------


async def test_a_stale_socket_of_ours_is_replaced() -> None:
    path = control_socket_path(RUN_ID)
    path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    async with serving(GateActions(initiator_uid=NOBODY), path):
        assert (await ask({"op": "status"}))["ok"] is True


async def test_a_live_socket_is_not_stolen() -> None:
    path = control_socket_path(RUN_ID)
    async with serving(GateActions(initiator_uid=NOBODY), path):
        second = ControlServer(GateActions(initiator_uid=NOBODY), path, lambda: {})
        with pytest.raises(ControlError, match="already listening"):
            await second.start()
        assert (await ask({"op": "status"}))["ok"] is True


async def test_a_symlink_at_the_socket_path_is_refused(tmp_path: Path) -> None:
    path = control_socket_path(RUN_ID)
    path.parent.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    path.symlink_to(target)
    server = ControlServer(GateActions(initiator_uid=NOBODY), path, lambda: {})
    with pytest.raises(ControlError, match="is a symlink; refusing to replace it"):
        await server.start()
    assert target.read_text() == "precious"
    assert path.is_symlink()


@needs_root
async def test_a_socket_path_owned_by_someone_else_is_refused() -> None:
    path = control_socket_path(RUN_ID)
    path.parent.mkdir(parents=True)
    theirs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.bind(str(path))
    theirs.close()
    os.chown(path, NOBODY, NOBODY)
    server = ControlServer(GateActions(initiator_uid=NOBODY), path, lambda: {})
    with pytest.raises(ControlError, match=f"belongs to uid {NOBODY}, not to you"):
        await server.start()
    assert os.lstat(path).st_uid == NOBODY


# --- the client ----------------------------------------------------------------------


def test_a_run_without_a_socket_is_a_clear_error() -> None:
    with pytest.raises(ControlError) as caught:
        request("20250101T000000Z-gone00", {"op": "status"})
    runtime = os.environ["CONSOLE_RUNTIME_DIR"]
    assert caught.value.message == (
        f"run 20250101T000000Z-gone00 has no control socket in {runtime}: it finished, or "
        "runs on another host; `console status` lists live runs"
    )


def test_a_stale_socket_is_a_clear_error() -> None:
    path = control_socket_path(RUN_ID)
    path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    with pytest.raises(ControlError, match="refuses connections: the run ended without "
                                           r"removing it \(stale socket\)"):
        request(RUN_ID, {"op": "status"})


def test_a_silent_run_times_out_with_a_clear_error() -> None:
    path = control_socket_path(RUN_ID)
    path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))
        silent.listen(1)  # the kernel completes connect(); nobody ever answers
        with pytest.raises(ControlError, match=f"run {RUN_ID} did not answer within 0.2s"):
            request(RUN_ID, {"op": "status"}, timeout=0.2)


def test_a_run_id_cannot_walk_out_of_the_runtime_dir() -> None:
    with pytest.raises(ControlError, match="is not a run id"):
        request("../../etc/passwd", {"op": "status"})


# --- the commands, as subprocesses ----------------------------------------------------


async def test_console_approve_deny_override_cancel_exit_codes() -> None:
    actions = GateActions(initiator_uid=NOBODY, waiting={"deploy", "migrate"})
    async with serving(actions, control_socket_path(RUN_ID)):
        approved = await cli("approve", RUN_ID, "deploy", "--reason", "ok")
        again = await cli("approve", RUN_ID, "deploy")
        denied = await cli("deny", RUN_ID, "migrate", "--reason", "not today")
        overridden = await cli("override", RUN_ID, "deploy", "--reason", "incident")
        no_reason = await cli("deny", RUN_ID, "migrate")
        empty_reason = await cli("deny", RUN_ID, "migrate", "--reason", "")
        cancelled = await cli("cancel", RUN_ID)
    assert approved == (0, f"approved deploy as uid {os.getuid()}\n", "")
    assert again == (3, "", "console: step 'deploy' is not waiting at a gate\n")
    assert denied == (0, "denied migrate: not today\n", "")
    assert overridden == (3, "", "console: policy on deploy is hard; no override\n")
    assert no_reason[0] == 2 and "--reason" in no_reason[2]
    assert empty_reason == (1, "", f"console: run {RUN_ID} could not act on the request: "
                                   'deny needs "reason" as a non-empty string\n')
    assert cancelled == (0, "cancelling the run\n", "")
    assert actions.cancelled


async def test_console_approve_on_a_run_that_is_not_live() -> None:
    code, out, err = await cli("approve", "20250101T000000Z-gone00", "deploy")
    assert (code, out) == (1, "")
    assert err.startswith("console: run 20250101T000000Z-gone00 has no control socket in ")
