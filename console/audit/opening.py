"""Opening the audit file so that it cannot be swapped for something else.

The file is never opened through a symbolic link (O_NOFOLLOW) and must be a regular file:
it is opened with O_NONBLOCK, so a FIFO or a device answers at once, and checked with
fstat before anything is read. The writer also refuses a file that someone else could
rewrite (another owner, or group/world write permission), creates what is missing with
mode 0700 (directories) and 0600 (the file), and creates nothing in a directory that
every user may write without the sticky bit, or that is a link another user made.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pwd
import stat
from pathlib import Path

from console.errors import AuditError
from console.paths import make_private_dirs

_COMMON_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | _COMMON_FLAGS
_APPEND_FLAGS = os.O_RDWR | os.O_APPEND | _COMMON_FLAGS
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _COMMON_FLAGS


def open_for_reading(path: Path) -> int:
    """A read-only fd on the audit file, or an AuditError that says what to do instead."""
    try:
        return open_existing(path)
    except FileNotFoundError:
        raise AuditError(
            f"{path}: no audit file there — runs create it on their first event; "
            "pass the path of an existing audit file"
        ) from None


def open_existing(path: Path) -> int:
    """As open_for_reading, but a missing file raises FileNotFoundError (for following)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _open_error(path, exc, "open") from None
    return _checked(fd, path, appending=False)


def open_for_appending(path: Path) -> tuple[int, bool]:
    """An O_APPEND fd on the audit file, and whether this call created it.

    A missing file is created 0600, and its missing directories 0700. An existing file must
    be a regular file of this user's that no one else can write; see `check_for_appending`.
    """
    _prepare_directory(path.parent)
    while True:
        try:
            fd = os.open(path, _APPEND_FLAGS)
            created = False
        except FileNotFoundError:
            check_directory(path.parent, path.name)
            try:
                fd = os.open(path, _APPEND_FLAGS | os.O_CREAT | os.O_EXCL, 0o600)
                created = True
            except FileExistsError:
                continue  # another writer created it first: open theirs
            except OSError as exc:
                raise _open_error(path, exc, "create") from None
        except OSError as exc:
            raise _open_error(path, exc, "open") from None
        break
    return _checked(fd, path, appending=True), created


def create_beside(path: Path, name: str) -> int | None:
    """A new file `name` (mode 0600) in `path`'s directory; None when that name is taken."""
    check_directory(path.parent, name)
    try:
        return os.open(path.with_name(name), _NEW_FILE_FLAGS, 0o600)
    except FileExistsError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None  # a link with that name: taken, and never followed
        raise


def check_for_appending(fd: int, path: Path) -> None:
    """Refuse a file the writer should not append to: another user's, or writable by others."""
    info = os.fstat(fd)
    me = os.geteuid()
    if info.st_uid != me:
        raise AuditError(
            f"{path} belongs to {_user(info.st_uid)}, not to you ({_user(me)}): its owner "
            "could rewrite what you append, so nothing is appended to it — use an audit file "
            "of your own (--audit PATH), or have it handed over to you (chown)"
        )
    who = others_who_can_write(info.st_mode)
    if who:
        raise AuditError(
            f"{path} can be written by {who} (mode {stat.S_IMODE(info.st_mode):04o}): they "
            "could rewrite the trail, so nothing is appended to it — "
            f"`chmod 600 {path}`, then check it with `console audit verify {path}`"
        )


def others_who_can_write(mode: int) -> str:
    """'group', 'others', 'group and others', or '' from a file's mode."""
    who = [name for bit, name in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others"))
           if mode & bit]
    return " and ".join(who)


def writable_warning(fd: int, path: Path) -> str:
    """A warning for readers when others could have rewritten the file; '' when not."""
    mode = os.fstat(fd).st_mode
    who = others_who_can_write(mode)
    if not who:
        return ""
    return (
        f"warning: {path} can be written by {who} (mode {stat.S_IMODE(mode):04o}), who could "
        f"have rewritten it undetected — compare with a head you kept (--head SEQ:HASH), "
        f"and `chmod 600 {path}`"
    )


def check_directory(directory: Path, creating: str) -> None:
    """Refuse to create `creating` in a directory where another user could swap or remove it.

    Refused: a directory every user may write without the sticky bit (/tmp has it, so other
    users cannot remove or rename what is ours there), and a symbolic link owned by another
    user (they can point it anywhere). A directory shared with a group is the user's choice,
    and a link the user or root made (`~/.local/state` -> `/data/state`) is allowed.
    """
    try:
        link = os.lstat(directory)
        info = os.stat(directory)
    except OSError:
        return  # the creation itself reports what is wrong
    if stat.S_ISLNK(link.st_mode) and link.st_uid not in (0, os.geteuid()):
        raise AuditError(
            f"{directory} is a symbolic link (to {os.readlink(directory)}) owned by "
            f"{_user(link.st_uid)}, who can point it anywhere: {creating} is not created "
            "through it — use a directory of your own (--audit PATH)"
        )
    if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        raise AuditError(
            f"{directory} can be written by every user (mode "
            f"{stat.S_IMODE(info.st_mode):04o}, no sticky bit), who could remove or replace "
            f"{creating}: it is not created there — use a directory of your own "
            f"(--audit PATH), or `chmod o-w {directory}` (or `chmod +t {directory}`)"
        )


def _prepare_directory(directory: Path) -> None:
    """Create the audit file's directory (and missing parents) 0700 if it is not there."""
    if directory.is_dir():
        return
    existing = directory.parent
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    check_directory(existing, f"the directory {directory}")
    try:
        make_private_dirs(directory)
    except (FileExistsError, NotADirectoryError):
        raise AuditError(
            f"{directory} is not a directory (or a file is in its path) — pass an audit path "
            "inside a directory"
        ) from None
    except OSError as exc:
        raise AuditError(
            f"cannot create the directory {directory}: {exc.strerror} — create it yourself "
            "(mkdir -m 700) or pass another path with --audit"
        ) from None


def _checked(fd: int, path: Path, *, appending: bool) -> int:
    """`fd` once it is known to be a regular file (fit to append to, if `appending`), in
    blocking mode again; closed, and an AuditError raised, when it is not."""
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise AuditError(f"{path} is a directory — pass the audit file inside it")
        if not stat.S_ISREG(mode):
            raise AuditError(_not_regular(path, mode))
        if appending:
            check_for_appending(fd, path)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _not_regular(path: Path, mode: int) -> str:
    return (
        f"{path} is {_kind(mode)}, not a regular file: an audit trail is only read from and "
        "written to a regular file — pass the path of the audit file itself"
    )


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "something else"


def _open_error(path: Path, exc: OSError, doing: str) -> AuditError:
    """Why `path` could not be opened, said for a person."""
    if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
        return AuditError(_symlink_message(path))
    if exc.errno == errno.EISDIR:
        return AuditError(f"{path} is a directory — pass the audit file's path, not its directory")
    if exc.errno == errno.ENXIO:  # a socket, or a FIFO opened for writing with no reader
        try:
            return AuditError(_not_regular(path, os.lstat(path).st_mode))
        except OSError:
            pass
    if exc.errno in (errno.EACCES, errno.EPERM):
        if doing == "create":
            return AuditError(
                f"cannot create {path}: permission denied in {path.parent} — pass an audit "
                "path in a directory you can write (--audit PATH)"
            )
        return AuditError(
            f"{path}: permission denied — run as the file's owner or ask them for a copy"
        )
    return AuditError(f"cannot {doing} {path}: {exc.strerror}")


def _symlink_message(path: Path) -> str:
    target = os.readlink(path)
    real = os.path.realpath(path)
    where = (
        f"pass the file's own path ({real})"
        if os.path.isfile(real)
        else f"remove the link, or pass a real file's path (the link points to {real}, "
        "which does not exist and is not created)"
    )
    return (
        f"{path} is a symbolic link to {target}: the audit file is never opened through a "
        f"link, since whoever can change the link could redirect the trail — {where}"
    )


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
