"""`console serve`: the host service that owns team runs (docs/team-mode.md).

It listens on one socket (JSON lines, like a run's control socket) and knows each client
by the kernel's word (SO_PEERCRED): members of the configured groups may submit. A submit
names a workflow file, which must lie in one of the configured directories and be
writable by nobody but root and the service; the service loads it, checks the params,
and starts a run host for it (console/host/process.py) as itself, with its credentials in
the host's environment and the submitter recorded as the run's initiator. The client then
attaches to the run's own control socket, as to any run.

Run hosts live in sessions of their own: the service can die or restart and they finish
their runs; a run host can die and the service serves on. The service watches each run
it started (a protocol v2 subscription) to vouch for the lines it appends to the audit
trail, and journals the trail's head after every run and on a timer (serve_heads.py).

Requests: `{"op": "hello"}`, `{"op": "submit", "workflow": PATH, "params": {K: V},
"resume": RUN_ID?}`. Answers carry `ok` and `message`; a refusal also `error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from console.errors import ConsoleError
from console.host.channel import open_stream, read_frame
from console.host.process import StartedHost, start_host_process
from console.host.serve_config import ServeConfig
from console.host.serve_heads import HeadKeeper
from console.host.serve_setup import ServiceUser, read_credentials
from console.policy.identity import identity_for_uid
from console.run.control_server import peer_credentials
from console.run.history import ask_live_runs
from console.run.settings import EngineSettings
from console.textsafe import terminal_safe

PROTOCOL = 1
MAX_REQUEST_BYTES = 64 * 1024
IDLE_TIMEOUT_S = 60.0
MAX_CONNECTIONS_PER_UID = 8
WATCH_TIMEOUT_S = 10.0
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "LD_LIBRARY_PATH", "PYTHONPATH")


class Refused(ConsoleError):
    """A request the service will not act on; `error` names the kind."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


class Service:
    def __init__(
        self, config: ServeConfig, user: ServiceUser, listener: socket.socket,
        keeper: HeadKeeper,
    ) -> None:
        self.config = config
        self.user = user
        self.listener = listener
        self.keeper = keeper
        self._watches: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()
        self._connections: dict[int, int] = {}

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._stopped.set)
        loop.add_signal_handler(signal.SIGCHLD, _reap_children)
        self.listener.setblocking(False)
        server = await asyncio.start_unix_server(
            self._serve_client, sock=self.listener, limit=MAX_REQUEST_BYTES
        )
        self._rewatch_live_runs()
        self._journal()
        timer = loop.create_task(self._timer())
        self._say(f"serving on {self.config.socket} as {self.user.name}; runs may come from "
                  + ", ".join(str(d) for d in self.config.workflows))
        try:
            await self._stopped.wait()
        finally:
            timer.cancel()
            server.close()
            for task in list(self._watches):
                task.cancel()
            self._journal()
            self._say("stopped; the runs it started go on")
        return 0

    # --- clients -------------------------------------------------------------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = peer_credentials(writer.get_extra_info("socket"))
        held = self._connections.get(peer.uid, 0)
        if held >= MAX_CONNECTIONS_PER_UID:
            busy = {"ok": False, "error": "busy", "message": (
                f"uid {peer.uid} already has {held} connections open to the service "
                f"(limit {MAX_CONNECTIONS_PER_UID}); close one and try again")}
            writer.write(json.dumps(busy).encode("utf-8") + b"\n")
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            writer.close()
            return
        self._connections[peer.uid] = held + 1
        try:
            while True:
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT_S):
                        line = await reader.readline()
                except (TimeoutError, ValueError):
                    break
                if not line.endswith(b"\n"):
                    break
                answer = await self._answer(peer.uid, line)
                writer.write(json.dumps(answer).encode("utf-8") + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._connections[peer.uid] -= 1
            if not self._connections[peer.uid]:
                del self._connections[peer.uid]
            writer.close()

    async def _answer(self, uid: int, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise Refused("bad_json", "a request is one JSON object per line")
            who = identity_for_uid(uid)
            if not self._may_submit(uid, who.groups):
                raise Refused("not_allowed", (
                    f"{who.user} may not use this service: it takes runs from members of "
                    + ", ".join(f"@{g}" for g in self.config.groups)
                ))
            op = request.get("op")
            if op == "hello":
                return {"ok": True, "protocol": PROTOCOL,
                        "message": f"console serve, protocol {PROTOCOL}; you are {who.user}",
                        "you": {"user": who.user, "uid": uid}, "service_user": self.user.name,
                        "workflows": [str(d) for d in self.config.workflows],
                        "audit": str(self.config.audit)}
            if op == "submit":
                return await self._submit(uid, who.user, request)
            raise Refused("unknown_op", f"unknown op {op!r}: hello or submit")
        except Refused as exc:
            return {"ok": False, "error": exc.error, "message": exc.message}
        except ValueError:
            return {"ok": False, "error": "bad_json", "message": "the request is not JSON"}
        except ConsoleError as exc:
            return {"ok": False, "error": "failed", "message": exc.message}

    def _may_submit(self, uid: int, groups: frozenset[str]) -> bool:
        return uid in (0, self.user.uid) or bool(groups & set(self.config.groups))

    async def _submit(self, uid: int, user: str, request: Mapping[str, Any]) -> dict[str, Any]:
        workflow = request.get("workflow")
        params = request.get("params") or {}
        resume = request.get("resume")
        if not isinstance(workflow, str) or not workflow.startswith("/"):
            raise Refused("bad_request", "submit needs \"workflow\": an absolute path")
        if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in params.items()
        ):
            raise Refused("bad_request", "\"params\" must map names to strings")
        if resume is not None and not isinstance(resume, str):
            raise Refused("bad_request", "\"resume\" must be a run id")
        path = self._allowed_workflow(workflow)
        started = await asyncio.to_thread(self._start, path, params, resume, uid)
        self.keeper.started(started.run_id)
        self._watch(started.run_id, started.socket_path, since=0)
        self._say(f"run {started.run_id} of {path} for {user} (uid {uid}), "
                  f"host pid {started.pid}")
        return {"ok": True, "run": started.run_id, "pid": started.pid,
                "socket": str(started.socket_path or ""), "workflow": str(path),
                "message": f"run {started.run_id} started for {user} by the service"}

    def _allowed_workflow(self, given: str, what: str | None = None) -> Path:
        """The real path of `given` if it lies in an allowed directory and only root or the
        service can change it; else Refused, saying why."""
        what = what or given
        real = Path(os.path.realpath(given))
        roots = [Path(os.path.realpath(d)) for d in self.config.workflows]
        if not any(real.is_relative_to(root) for root in roots):
            raise Refused("not_allowed", (
                f"{what} is not in the service's workflow directories "
                f"({', '.join(str(d) for d in self.config.workflows)}): only those run with "
                "the service's credentials; run your copy as yourself with --local"
            ))
        try:
            info = os.stat(real)
        except OSError as exc:
            raise Refused("not_found", f"{given}: {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise Refused("bad_request", f"{given} is not a workflow file")
        if info.st_uid not in (0, self.user.uid) or info.st_mode & 0o022:
            raise Refused("not_allowed", (
                f"{what} can be changed by others than root and {self.user.name} "
                f"(mode {stat.S_IMODE(info.st_mode):04o}): the service runs no such file"
            ))
        return real

    def _start(
        self, path: Path, given: Mapping[str, str], resume: str | None, uid: int
    ) -> StartedHost:
        from console.workflow.loader import load_workflow
        from console.workflow.params import resolve_params

        loaded = load_workflow(path)
        for used in loaded.file_hashes:  # its policies and inventory: the same rule
            if Path(used) != path:
                self._allowed_workflow(str(used), f"{path} uses {used}, which")
        params = resolve_params(loaded.model, given)
        settings = EngineSettings(
            audit_path=self.config.audit, runs_dir=self.config.runs_dir,
            runtime_dir=self.config.runtime_dir, resume_from=resume,
        )
        env = self._host_environment()
        return start_host_process(path, params, settings, initiator_uid=uid, env=env,
                                  via="serve")

    def _host_environment(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update(HOME=str(self.config.state_dir), USER=self.user.name,
                   LOGNAME=self.user.name, CONSOLE_RUNTIME_DIR=str(self.config.runtime_dir))
        env.update(read_credentials(self.config.credentials, self.user.uid))
        return env

    # --- watching the runs, journaling the head --------------------------------------------

    def _watch(self, run_id: str, socket_path: Path | None, since: int) -> None:
        if socket_path is None:
            return
        task = asyncio.get_running_loop().create_task(self._follow(run_id, socket_path, since))
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)

    async def _follow(self, run_id: str, socket_path: Path, since: int) -> None:
        self.keeper.watching.add(run_id)
        writer: asyncio.StreamWriter | None = None
        try:
            while True:
                deadline = asyncio.get_running_loop().time() + WATCH_TIMEOUT_S
                (reader, writer), answer = await open_stream(
                    socket_path, {"op": "subscribe", "since_seq": since}, deadline
                )
                if answer.get("ok") is not True:
                    break
                while (frame := await read_frame(reader)) is not None:
                    if "seq" in frame:
                        self.keeper.saw(frame)
                        since = max(since, int(frame["seq"]))
                    elif frame.get("error") == "too_slow" or frame.get("type") == "end":
                        break
                writer.close()
                if frame is None or frame.get("type") == "end":
                    break
        except ConsoleError as exc:
            self._say(f"run {run_id}: lost sight of it: {exc.message}")
        finally:
            if writer is not None:
                writer.close()
            self.keeper.stopped_watching(run_id)
            self._journal()

    def _rewatch_live_runs(self) -> None:
        """Runs this service started before it restarted: watch them again, from now."""
        live = ask_live_runs(self.config.runtime_dir)
        for run_id, found in live.items():
            if run_id in self.keeper.runs and found.status is not None:
                self._watch(run_id, found.socket_path, since=self.keeper.restart_seq)

    async def _timer(self) -> None:
        while True:
            await asyncio.sleep(self.config.head_interval)
            self._journal()

    def _journal(self) -> None:
        try:
            self.keeper.journal()
        except (ConsoleError, OSError) as exc:
            message = exc.message if isinstance(exc, ConsoleError) else str(exc)
            self._say(f"the audit head could not be journaled: {message}")

    def _say(self, line: str) -> None:
        print(f"console serve: {terminal_safe(line)}", file=sys.stderr, flush=True)


def _reap_children() -> None:
    """Collect every run host that ended, so none lingers as a zombie (status would call a
    killed one's run alive)."""
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
