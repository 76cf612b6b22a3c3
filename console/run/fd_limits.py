"""File descriptors: how many this process may open, how many it has, how many are left.

A run opens descriptors for its steps (pipes, log files, pidfds) and for the clients of its
control socket. The soft RLIMIT_NOFILE is often 1024 while the hard one is far higher;
`raise_fd_limit()` lifts the soft limit to the hard one once, at run start, so a busy run
does not fail a step with "Too many open files" when the system would have allowed more.
`free_fds()` is what the control socket checks before it accepts a connection.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

# Where the kernel's ceiling for RLIMIT_NOFILE is, when the hard limit says "unlimited".
_NR_OPEN = Path("/proc/sys/fs/nr_open")
_OPEN_FDS = "/proc/self/fd"


@dataclass(frozen=True)
class FdLimit:
    """The soft RLIMIT_NOFILE before and after `raise_fd_limit()`, and the hard one."""

    before: int
    soft: int
    hard: int


def raise_fd_limit() -> FdLimit:
    """Raise the soft RLIMIT_NOFILE to the hard limit; call once when a run starts.

    Never lowers a limit; if the kernel refuses, the limit stays as it was (no exception).
    Child processes (the steps) inherit the raised soft limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if target == resource.RLIM_INFINITY:
        target = _kernel_ceiling()
    if target == resource.RLIM_INFINITY or (soft != resource.RLIM_INFINITY and soft >= target):
        return FdLimit(before=soft, soft=soft, hard=hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError):
        return FdLimit(before=soft, soft=soft, hard=hard)
    return FdLimit(before=soft, soft=target, hard=hard)


def _kernel_ceiling() -> int:
    try:
        return int(_NR_OPEN.read_text().strip())
    except (OSError, ValueError):
        return resource.RLIM_INFINITY


def open_fd_count() -> int | None:
    """How many descriptors this process has open, or None where /proc cannot say."""
    try:
        # listdir holds one descriptor of its own while it reads the directory.
        return len(os.listdir(_OPEN_FDS)) - 1
    except OSError:
        return None


def free_fds() -> int | None:
    """How many more descriptors this process may open, or None when there is no telling."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    used = open_fd_count()
    if used is None:
        return None
    return max(0, soft - used)
