"""The runtime directory that holds live runs' control sockets, checked before it is trusted.

The per-host default is shared by every user, like /tmp: world-writable with the sticky
bit, so anyone can create a socket there but only its owner (or the directory's owner, or
root) can remove or replace it. That only holds if the directory itself is trustworthy, so
a symlink, a non-directory, a foreign owner or a world-writable directory without the
sticky bit is refused rather than used.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from pathlib import Path

from console.errors import ControlError

SHARED_RUNTIME_DIR = Path("/tmp/console-runs")
SHARED_MODE = 0o1777
PRIVATE_MODE = 0o755

_FIX = (
    "set CONSOLE_RUNTIME_DIR to a directory you own (e.g. $XDG_RUNTIME_DIR/console), "
    f"or have root create the shared one: install -d -m 1777 {SHARED_RUNTIME_DIR}"
)


def ensure_runtime_dir(path: Path, *, shared: bool | None = None) -> Path:
    """Create `path` if missing and refuse it if it is not safe to put sockets in.

    `shared` defaults to "is it the per-host default"; a shared directory is created
    mode 1777 (sticky, like /tmp), any other one 0755 (others may connect, not create).
    """
    is_shared = path == SHARED_RUNTIME_DIR if shared is None else shared
    created = _create(path, SHARED_MODE if is_shared else PRIVATE_MODE)
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise ControlError(
            f"runtime directory {path} cannot be read: {exc.strerror}; {_FIX}"
        ) from exc
    if stat.S_ISLNK(info.st_mode):
        raise ControlError(
            f"runtime directory {path} is a symlink; refusing to follow it (someone could "
            f"point it at a directory they control); remove it, or {_FIX}"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise ControlError(f"runtime directory {path} exists and is not a directory; {_FIX}")
    if not created and info.st_uid not in (os.geteuid(), 0):
        raise ControlError(
            f"runtime directory {path} is owned by uid {info.st_uid}, not by you or root, "
            f"so its owner could replace your run's socket; {_FIX}"
        )
    if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        raise ControlError(
            f"runtime directory {path} is writable by everyone without the sticky bit, so "
            f"anyone could replace your run's socket; run `chmod +t {path}`, or {_FIX}"
        )
    return path


def _create(path: Path, mode: int) -> bool:
    """mkdir with an exact mode (the umask would strip the sticky and write bits)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return False
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _create(path, mode)
    except OSError as exc:
        raise ControlError(
            f"cannot create runtime directory {path}: {exc.strerror}; {_FIX}"
        ) from exc
    os.chmod(path, mode)
    return True


def clear_socket_path(path: Path) -> None:
    """Make `path` free for a new socket: remove our own stale socket, refuse anything else."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise ControlError(f"control socket path {path} is a symlink; refusing to replace it")
    if info.st_uid != os.geteuid():
        raise ControlError(
            f"control socket path {path} belongs to uid {info.st_uid}, not to you; "
            "refusing to replace it"
        )
    if not stat.S_ISSOCK(info.st_mode):
        raise ControlError(f"control socket path {path} exists and is not a socket; remove it")
    if _socket_answers(path):
        raise ControlError(f"another process is already listening on {path}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _socket_answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except TimeoutError:
        return True  # a listener with a full backlog is still a listener
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise ControlError(f"cannot check control socket {path}: {exc.strerror}") from exc
    finally:
        probe.close()
    return True
