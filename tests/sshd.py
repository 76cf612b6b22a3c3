"""A real OpenSSH sshd for the fleet tests, listening on loopback addresses only.

Each "host" is its own address in 127.0.0.0/8 (127.0.0.2, 127.0.0.3, ...), all on one port;
one sshd takes at most 16 ListenAddress lines, so more hosts start more sshds. Fresh host
and client keys per fleet; `StrictModes no` because the keys live under /tmp; `SetEnv
SHLVL=1` so root's bash skips its rc files for each command. Never an address outside
127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
PER_SSHD = 16


def sshd_available() -> bool:
    return os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None and os.geteuid() == 0


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@dataclass
class Fleet:
    directory: Path
    port: int
    addresses: list[str]
    client_key: Path
    known_hosts: Path
    host_public_key: str
    listeners: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [f"web-{n:02d}" for n in range(1, len(self.addresses) + 1)]

    def inventory(self, group: str = "web", *, port: int | None = None,
                  addresses: dict[str, str] | None = None) -> str:
        """An inventory file's text: every host in `group`, with our key and known_hosts."""
        lines = [f'known_hosts = "{self.known_hosts}"', 'connect_timeout = "5s"']
        for name, address in zip(self.names, self.addresses, strict=True):
            lines += [f"[hosts.{name}]",
                      f'address = "{(addresses or {}).get(name, address)}"',
                      f"port = {port or self.port}", 'user = "root"',
                      f'identity = "{self.client_key}"', f'groups = ["{group}"]']
        return "\n".join(lines) + "\n"

    def session_pids(self) -> list[int]:
        """The sshd processes serving connections (children of the listeners)."""
        listeners = {p.pid for p in self.listeners}
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) in listeners and fields[0] != "Z":
                found.append(int(entry.name))
        return found

    def kill_sessions(self) -> int:
        """Kill -9 every connection's sshd (the listeners stay): connections drop."""
        pids = self.session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self) -> None:
        for process in self.listeners:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        for process in self.listeners:
            process.wait(timeout=10)
        for pid in self.session_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_fleet(directory: Path, hosts: int, first: int = 2) -> Fleet:
    """sshd for `hosts` loopback addresses 127.0.0.FIRST..., ready to accept."""
    assert first >= 2 and first + hosts <= 255
    addresses = [f"127.0.0.{first + n}" for n in range(hosts)]
    assert all(a.startswith("127.") for a in addresses)
    directory.mkdir(parents=True, exist_ok=True)
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    host_public = _keygen(directory / "host_key")
    client_public = _keygen(directory / "client_key")
    (directory / "authorized_keys").write_text(client_public + "\n")
    port = _free_port(addresses[0])
    known = directory / "known_hosts"
    known.write_text("".join(f"[{a}]:{port} {host_public}\n" for a in addresses))
    fleet = Fleet(directory, port, addresses, directory / "client_key", known, host_public)
    for index in range(0, hosts, PER_SSHD):
        chunk = addresses[index:index + PER_SSHD]
        config = directory / f"sshd_{index}.conf"
        config.write_text("\n".join([
            *[f"ListenAddress {a}:{port}" for a in chunk],
            f"HostKey {directory / 'host_key'}",
            f"PidFile {directory / f'sshd_{index}.pid'}",
            f"AuthorizedKeysFile {directory / 'authorized_keys'}",
            "StrictModes no", "UsePAM no", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "SetEnv SHLVL=1", "MaxSessions 100", "MaxStartups 200:30:400",
            "LogLevel ERROR", "PrintMotd no", "UseDNS no",
        ]) + "\n")
        with open(directory / f"sshd_{index}.log", "ab") as log:
            fleet.listeners.append(subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log,
            ))
    deadline = time.monotonic() + 30
    for address in addresses:
        while True:
            try:
                socket.create_connection((address, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    fleet.stop()
                    raise RuntimeError(f"sshd did not listen on {address}:{port}") from None
                time.sleep(0.02)
    return fleet
