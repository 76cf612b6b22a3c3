"""The orphan watchdog: kill the console's step process groups once the console is gone.

Run as `python -I -S _watchdog_main.py GRACE_SECONDS` (standard library only, so it starts
fast and needs no site-packages). Its stdin is a pipe whose only write end is held by the
console. The console writes `+PGID` when a step's process group starts and `-PGID` when it
is gone. End of file means the console closed the pipe or died, however it died (SIGKILL
included): every group still registered gets SIGTERM, GRACE_SECONDS to exit, then SIGKILL.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

DRAIN_INTERVAL_MS = 1000


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False once the kernel knows no member of it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        # A member changed uid (sudo inside a step): it exists but is not ours to signal.
        return True
    return True


def group_alive(pgid: int) -> bool:
    """Whether the group has a member that is not a zombie.

    The kernel counts zombies as members until they are reaped, and an orphan is reaped by
    init, which in a container may take seconds or never happen; a zombie holds no pipe and
    runs no code, so it does not count here. Without /proc, the kernel's answer stands.
    """
    if not signal_group(pgid, 0):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    wanted = str(pgid).encode()
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat_file:
                stat = stat_file.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split(maxsplit=3)
        if len(fields) > 2 and fields[2] == wanted and fields[0] not in (b"Z", b"X"):
            return True
    return False


def terminate_groups(groups: set[int], grace_s: float) -> None:
    alive = {pgid for pgid in groups if signal_group(pgid, signal.SIGTERM)}
    deadline = time.monotonic() + grace_s
    pause = 0.005
    while alive and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
        alive = {pgid for pgid in alive if group_alive(pgid)}
    for pgid in alive:
        signal_group(pgid, signal.SIGKILL)


def apply_lines(data: bytes, groups: set[int]) -> bytes:
    """Apply every complete line in `data` to `groups`; return the incomplete rest."""
    *complete, rest = data.split(b"\n")
    for raw in complete:
        line = raw.strip()
        if len(line) < 2 or not line[1:].isdigit():
            continue
        pgid = int(line[1:])
        if line[:1] == b"+":
            groups.add(pgid)
        elif line[:1] == b"-":
            groups.discard(pgid)
    return rest


def watch(fd: int) -> set[int]:
    """Follow the register/unregister lines until end of file; return what is still registered.

    Registrations are read in batches, once a second or at hang-up, never as they arrive:
    polling for hang-up only (an empty event mask), the watchdog is not even woken when a
    step starts, so it costs the console nothing per step. The pipe holds the lines between
    batches (the console makes it 1 MiB: some 100,000 lines).
    """
    os.set_blocking(fd, False)
    poller = select.poll()
    poller.register(fd, 0)
    groups: set[int] = set()
    pending = b""
    while True:
        poller.poll(DRAIN_INTERVAL_MS)
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not data:
                apply_lines(pending + b"\n", groups)
                return groups
            pending = apply_lines(pending + data, groups)


def main(argv: list[str]) -> int:
    grace_s = float(argv[1]) if len(argv) > 1 else 0.0
    # Only end of file on stdin may stop us: a ^C or hangup meant for the console must not
    # take the watchdog down before the console (it is in its own session as well).
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    groups = watch(sys.stdin.fileno())
    terminate_groups(groups, grace_s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
