"""Per-host workflow locks: at most one live run holds a given `[workflow] lock` name.

A lock is a listening Unix socket in Linux's abstract namespace, `@console-lock/<name>`
(the `@` is how `ss -xl` and /proc/net/unix show the leading NUL). bind() on a name is
exclusive, so taking the lock is binding it; the kernel frees the name when the holder's
socket closes, including when the holder dies by SIGKILL, so a crashed run never leaves a
stale lock. The name is not a file: no directory, owner, mode or symlink is involved, so no
local user can delete, replace or redirect a held lock, and any user can take a free one.

Whoever finds the name taken connects to it. The kernel says which process holds it and
as which uid (SO_PEERCRED); a console holder also answers with its LockHolder as JSON, so
the refusal names the run and how to cancel it. A process that squats on the name without
being a console run is still reported with its pid and owner. See docs/locks.md.

Abstract names live in the network namespace: runs in another one (a container, `unshare
-n`) do not see each other's locks, as if they were on another host.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import re
import select
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from console.errors import LockError

NAME_PREFIX = "console-lock/"
MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ANSWER_TIMEOUT_S = 2.0
_MAX_ANSWER_BYTES = 4096
_ACQUIRE_ATTEMPTS = 5
_BACKLOG = 64
_PROC = Path("/proc")
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_ACCEPT_PAUSE_S = 0.1


@dataclass(frozen=True)
class _Peer:
    """Who holds the name, as the kernel says (pid 0: not visible in our PID namespace)."""

    pid: int
    uid: int


@dataclass(frozen=True)
class LockHolder:
    user: str
    uid: int
    pid: int
    run: str
    since: str


def check_lock_name(name: str) -> None:
    """Refuse a name that is not 1–64 of [A-Za-z0-9_.-] starting with a letter or digit."""
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise LockError(
            f"workflow lock name {name!r} is not valid: `[workflow] lock` must be 1 to "
            f"{MAX_NAME_LENGTH} letters, digits, '_', '.' or '-', starting with a letter or "
            "digit — rename it in the workflow file"
        )


class WorkflowLock:
    """One lock name on this host. `runtime_dir` is accepted for the engine's sake and
    ignored: the lock is the same for every runtime directory (and every user) on the host."""

    def __init__(self, runtime_dir: Path, name: str) -> None:
        check_lock_name(name)
        self.name = name
        self.path = f"@{NAME_PREFIX}{name}"
        self._address = b"\0" + f"{NAME_PREFIX}{name}".encode()
        self._listener: socket.socket | None = None
        self._answerer: _Answerer | None = None

    def acquire(self, holder: LockHolder) -> None:
        """Take the lock for `holder`, or raise LockError saying who has it."""
        if self._listener is not None:
            raise LockError(f"workflow lock {self.name!r} is already held by this run")
        for _ in range(_ACQUIRE_ATTEMPTS):
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # close-on-exec
            try:
                listener.bind(self._address)
                listener.listen(_BACKLOG)
            except OSError as exc:
                listener.close()
                if exc.errno != errno.EADDRINUSE:
                    raise LockError(
                        f"cannot take workflow lock {self.name!r} ({self.path}): {exc.strerror}"
                    ) from exc
                refusal = _describe_holder(self.name, self._address, self.path)
                if refusal is None:
                    continue  # the holder let go while we looked: try again
                raise LockError(refusal) from None
            listener.setblocking(False)
            payload = json.dumps({"console_lock": self.name, **asdict(holder)}).encode() + b"\n"
            self._listener = listener
            self._answerer = _Answerer(listener, payload, self.name)
            return
        raise LockError(f"workflow lock {self.name!r} keeps changing hands; try again in a moment")

    def release(self) -> None:
        """Let go of the lock (a no-op if it is not held); the name is free on return."""
        if self._answerer is not None:
            self._answerer.stop()
            self._answerer = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None


class _Answerer:
    """A daemon thread that tells each process connecting to the lock who holds it."""

    def __init__(self, listener: socket.socket, payload: bytes, name: str) -> None:
        self._listener = listener
        self._payload = payload
        self._wake_r, self._wake_w = os.pipe()  # non-inheritable, like every fd Python opens
        self._thread = threading.Thread(
            target=self._serve, name=f"console-lock {name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self._listener, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._wake_r in ready:
                return
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue  # the caller gave up before we got to it
            except OSError:
                # Out of descriptors (EMFILE/ENFILE): the listener stays readable, so pause
                # rather than spin; the lock is held all the same.
                if select.select([self._wake_r], [], [], _ACCEPT_PAUSE_S)[0]:
                    return
                continue
            with conn:
                conn.settimeout(0.5)  # the answer fits a socket buffer; never wait on a reader
                with contextlib.suppress(OSError):
                    conn.sendall(self._payload)


# --- who holds it ------------------------------------------------------------------------


def _describe_holder(name: str, address: bytes, shown: str) -> str | None:
    """Why the lock cannot be taken, or None if nobody holds it any more."""
    for attempt in range(5):
        asked = _ask(address)
        if asked is not None:
            peer, claim = asked
            return _refusal(name, peer, claim)
        if not _bound_inodes(shown):
            return None
        time.sleep(0.02 * (attempt + 1))  # a console holder may be between bind and listen
    # Bound but not answering (not listening, or its backlog is full): not a console run.
    inodes = _bound_inodes(shown)
    if not inodes:
        return None
    owners = _processes_holding(inodes)
    if not owners:
        return (
            f"workflow lock {name!r} is held by a process that does not answer as a console "
            f"run and that you cannot see; as root, `ss -xlp | grep {shown}` names it"
        )
    pid, uid = owners[0]
    return _squatter(name, shown, _Peer(pid=pid, uid=uid))


def _ask(address: bytes) -> tuple[_Peer, LockHolder | None] | None:
    """Connect to the holder: the kernel's word on who it is, and what it says it is."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(_ANSWER_TIMEOUT_S)
    try:
        try:
            sock.connect(address)
        except OSError:
            return None  # not listening (yet), a full backlog, or gone
        pid, uid, _gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
        peer = _Peer(pid=pid, uid=uid)
        answer = b""
        deadline = time.monotonic() + _ANSWER_TIMEOUT_S  # a trickling answer is cut short
        with contextlib.suppress(OSError, ValueError):
            while len(answer) < _MAX_ANSWER_BYTES and not answer.endswith(b"\n"):
                sock.settimeout(deadline - time.monotonic())  # ValueError once it is past
                chunk = sock.recv(_MAX_ANSWER_BYTES - len(answer))
                if not chunk:
                    break
                answer += chunk
        return peer, _parse_holder(answer)
    finally:
        sock.close()


def _parse_holder(answer: bytes) -> LockHolder | None:
    try:
        data: Any = json.loads(answer)
        if not isinstance(data, dict) or "console_lock" not in data:
            return None
        return LockHolder(
            user=str(data["user"]),
            uid=int(data["uid"]),
            pid=int(data["pid"]),
            run=str(data["run"]),
            since=str(data["since"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _refusal(name: str, peer: _Peer, claim: LockHolder | None) -> str:
    # Only the kernel's pid and uid are facts; an answer is believed when its pid matches.
    if claim is None:
        return _squatter(name, f"@{NAME_PREFIX}{name}", peer)
    if claim.pid != peer.pid or peer.pid <= 0:
        where = f"pid {peer.pid}" if peer.pid > 0 else "a process in another PID namespace"
        return (
            f"workflow lock {name!r} is held by {where} of {_user_name(peer.uid)} "
            f"(uid {peer.uid}), which answers as run {claim.run} of {claim.user} since "
            f"{claim.since} (it says pid {claim.pid}; the kernel does not confirm it) — wait "
            f"for it to finish, or `console cancel {claim.run}`"
        )
    runs_as = ""
    if claim.uid != peer.uid:
        runs_as = f" (its process runs as {_user_name(peer.uid)}, uid {peer.uid})"
    return (
        f"workflow lock {name!r} is held: locked by {claim.user} (uid {claim.uid}){runs_as}, "
        f"pid {claim.pid}, run {claim.run}, since {claim.since} — wait for it to finish, "
        f"or `console cancel {claim.run}`"
    )


def _squatter(name: str, shown: str, peer: _Peer) -> str:
    who = f"{_user_name(peer.uid)} (uid {peer.uid})"
    if peer.pid <= 0:
        return (
            f"workflow lock {name!r} is held by a process of {who} in another PID namespace, "
            f"which is not a console run; it holds the lock's socket {shown}"
        )
    return (
        f"workflow lock {name!r} is held by pid {peer.pid} of {who}, which is not a console "
        f"run: it holds the lock's socket {shown}. Ask {_user_name(peer.uid)} to stop it "
        f"(or, as root, `kill {peer.pid}`)"
    )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def _bound_inodes(shown: str) -> set[str]:
    """Inodes of stream sockets bound to the abstract name, from /proc/net/unix."""
    inodes: set[str] = set()
    try:
        lines = (_PROC / "net" / "unix").read_text().splitlines()[1:]
    except OSError:
        return {"?"}  # cannot tell: assume still held, so we never take it by mistake
    for line in lines:
        fields = line.split()
        # Num RefCount Protocol Flags Type St Inode Path. Type 0001 is SOCK_STREAM; state 01
        # (unconnected) is the bound or listening socket, while accepted connections, which
        # show the same name, are 03 and hold nothing once the socket that bound it is gone.
        if len(fields) == 8 and fields[7] == shown and fields[4:6] == ["0001", "01"]:
            inodes.add(fields[6])
    return inodes


def _processes_holding(inodes: set[str]) -> list[tuple[int, int]]:
    """(pid, uid) of the processes with one of these sockets open, as far as we may look."""
    targets = {f"socket:[{inode}]" for inode in inodes}
    found: list[tuple[int, int]] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (entry / "fd").iterdir()}
            if links & targets:
                found.append((int(entry.name), _effective_uid(entry)))
        except (OSError, ValueError):
            continue  # gone, or not ours to look at
    return sorted(found)


def _effective_uid(process: Path) -> int:
    for line in (process / "status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])  # real, effective, saved, filesystem
    raise ValueError(f"no Uid line in {process}/status")
