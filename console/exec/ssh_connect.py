"""Connections to hosts: one per host, reused by every attempt on it, keys checked.

A host key is trusted only if known_hosts (the inventory's, else the user's
~/.ssh/known_hosts) holds it. An unknown or changed key fails the attempt with the key's
fingerprint and how to trust it; nothing is ever accepted silently. Every failure to
connect is a HostUnreachable whose message names the host, its address and what to check.
"""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path
from typing import Any

import asyncssh

from console.exec.base import HostTarget


class HostUnreachable(Exception):
    """Connecting to a host failed; the message says which, why and what to check."""


def _where(host: HostTarget) -> str:
    return f"{host.name} ({host.address}:{host.port})"


def _fingerprint(key: asyncssh.SSHKey) -> str:
    return str(key.get_fingerprint("sha256"))


class _Client(asyncssh.SSHClient):
    """Remembers the key the server presented, so an untrusted one can be named."""

    def __init__(self, pool: ConnectionPool, name: str) -> None:
        self._pool = pool
        self._name = name
        self.presented: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.presented = key
        return False  # only keys already in known_hosts are trusted

    def connection_lost(self, exc: Exception | None) -> None:
        self._pool.forget(self._name)


class Connection:
    def __init__(self, conn: asyncssh.SSHClientConnection, host_key: str) -> None:
        self.conn = conn
        self.host_key = host_key  # SHA256:… of the key the host proved it holds


class ConnectionPool:
    def __init__(self) -> None:
        self._open: dict[str, Connection] = {}
        self._pending: dict[str, asyncio.Task[Connection]] = {}
        # Each known_hosts file is read once per run, not once per host (50 hosts sharing
        # one file would otherwise parse it 50 times).
        self._known: dict[Path, asyncssh.SSHKnownHosts] = {}
        self._keys: dict[str, asyncssh.SSHKey] = {}  # identity file -> its key, read once

    def forget(self, name: str) -> None:
        self._open.pop(name, None)

    async def get(self, host: HostTarget) -> Connection:
        found = self._open.get(host.name)
        if found is not None:
            return found
        task = self._pending.get(host.name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._connect(host))
            self._pending[host.name] = task
            task.add_done_callback(lambda _: self._pending.pop(host.name, None))
        return await asyncio.shield(task)

    async def close(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        connections, self._open = list(self._open.values()), {}
        for connection in connections:
            connection.conn.close()
        for connection in connections:
            await connection.conn.wait_closed()

    def _identity(self, host: HostTarget) -> asyncssh.SSHKey:
        assert host.identity is not None
        key = self._keys.get(host.identity)
        if key is None:
            try:
                key = self._keys[host.identity] = asyncssh.read_private_key(host.identity)
            except (OSError, asyncssh.KeyImportError) as exc:
                raise HostUnreachable(f"{_where(host)}: cannot use the key {host.identity}: "
                                      f"{exc} — check `identity` in the inventory") from None
        return key

    async def _connect(self, host: HostTarget) -> Connection:
        known_path = Path(host.known_hosts or os.path.expanduser("~/.ssh/known_hosts"))
        trusted = self._known.get(known_path)
        if trusted is None:
            trusted = self._known[known_path] = _read_known_hosts(known_path, host)
        client = _Client(self, host.name)
        options: dict[str, Any] = {
            "port": host.port,
            "known_hosts": trusted,
            "connect_timeout": host.connect_timeout_s,
            "config": [],  # the inventory says how to reach a host, not ~/.ssh/config
        }
        if host.user:
            options["username"] = host.user
        if host.identity:
            options["client_keys"] = [self._identity(host)]
            options["agent_path"] = None
        try:
            conn = await asyncssh.connect(host.address, client_factory=lambda: client,
                                          **options)
        except asyncssh.HostKeyNotVerifiable:
            raise HostUnreachable(_untrusted(host, client.presented, known_path,
                                             trusted)) from None
        except asyncssh.PermissionDenied:
            who = host.user or _local_user()
            keys = f"the key {host.identity}" if host.identity else "the agent's and ~/.ssh keys"
            raise HostUnreachable(
                f"{_where(host)}: authentication refused for user {who} with {keys} — check "
                "`user` and `identity` in the inventory, and the host's authorized_keys"
            ) from None
        except TimeoutError:
            raise HostUnreachable(
                f"{_where(host)}: no answer within {host.connect_timeout_s:g}s — check the "
                "address and port, and that the host is up (connect_timeout sets the wait)"
            ) from None
        except (OSError, asyncssh.Error) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise HostUnreachable(
                f"{_where(host)}: cannot connect: {reason} — check the address and port, and "
                "that sshd runs there"
            ) from None
        except asyncssh.KeyImportError as exc:
            raise HostUnreachable(f"{_where(host)}: cannot use the key {host.identity}: "
                                  f"{exc} — check the identity file") from None
        server_key = conn.get_server_host_key()
        connection = Connection(conn, _fingerprint(server_key) if server_key else "unknown")
        self._open[host.name] = connection
        return connection


def _local_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _read_known_hosts(path: Path, host: HostTarget) -> asyncssh.SSHKnownHosts:
    try:
        return asyncssh.read_known_hosts(str(path))
    except FileNotFoundError:
        return asyncssh.import_known_hosts("")
    except (OSError, ValueError) as exc:
        raise HostUnreachable(f"{_where(host)}: cannot read known_hosts {path}: {exc} — fix "
                              "or remove that file") from None


def _untrusted(host: HostTarget, key: asyncssh.SSHKey | None, known_path: Path,
               trusted: asyncssh.SSHKnownHosts) -> str:
    shown = _fingerprint(key) if key is not None else "(none presented)"
    listed = trusted.match(host.address, host.address, host.port)[0]
    port = f"-p {host.port} " if host.port != 22 else ""
    if listed:
        return (
            f"{_where(host)}: the host key CHANGED: it presented {shown}, but {known_path} "
            f"holds another key for it — this may be an attack; if the host was reinstalled "
            f"(ask its owner), remove the old entry (ssh-keygen -R '[{host.address}]:"
            f"{host.port}' -f {known_path}) and trust the new one"
        )
    return (
        f"{_where(host)}: unknown host key {shown} (not in {known_path}) — check the "
        f"fingerprint with the host's owner, then trust it: ssh-keyscan {port}{host.address} "
        f">> {known_path}"
    )
