"""What the service sets up before it serves: directories, the socket, the audit file, and
then who it is.

Started as root (a test, or a unit without socket activation), it makes the socket's
directory root's (0755) so the service user cannot replace the socket, binds the socket
there (root:GROUP 0660, so the group's members may connect), makes the service user's
directories and the audit file (SERVICE:GROUP 0640), and then becomes the service user
for good (groups, gid, uid). Under systemd the socket comes ready from console-serve.socket
(LISTEN_FDS) and the service starts as the service user.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from console.errors import ConsoleError
from console.host.serve_config import ServeConfig

SD_LISTEN_FDS_START = 3
_AUDIT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC


class ServeSetupError(ConsoleError):
    """The service cannot set itself up; the message says what to fix."""


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int
    group_gid: int  # the config's first group: owns the socket and the audit file

    @classmethod
    def of(cls, config: ServeConfig) -> ServiceUser:
        try:
            entry = pwd.getpwnam(config.user)
        except KeyError:
            raise ServeSetupError(
                f"there is no user {config.user!r}: create it "
                f"(useradd --system --no-create-home {config.user}) or set `user` in the config"
            ) from None
        try:
            group = grp.getgrnam(config.group)
        except KeyError:
            raise ServeSetupError(
                f"there is no group {config.group!r} (`groups` in the config): "
                f"create it (groupadd {config.group}) and add the engineers to it"
            ) from None
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, group.gr_gid)


def inherited_socket() -> socket.socket | None:
    """The listening socket systemd handed over (socket activation), if any."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    return socket.socket(fileno=SD_LISTEN_FDS_START)


def prepare_as_root(
    config: ServeConfig, user: ServiceUser, listener: socket.socket | None
) -> socket.socket:
    """Directories, the bound socket (unless systemd passed one) and the audit file, made
    as root for the service."""
    if listener is None:
        _root_dir(config.socket.parent)
        listener = _bind(config.socket)
        os.chown(config.socket, 0, user.group_gid)
        os.chmod(config.socket, 0o660)
    _service_dir(config.runtime_dir, user, 0o750, user.group_gid)
    _service_dir(config.state_dir, user, 0o700, user.gid)
    _service_dir(config.runs_dir, user, 0o700, user.gid)
    _service_dir(config.audit.parent, user, 0o750, user.group_gid)
    ensure_audit_file(config.audit, user)
    return listener


def become(user: ServiceUser) -> None:
    """Drop root for good: the service user's groups, gid, then uid."""
    os.setgroups(os.getgrouplist(user.name, user.gid))
    os.setgid(user.gid)
    os.setuid(user.uid)


def prepare_as_service(config: ServeConfig, user: ServiceUser) -> None:
    """Started as the service user (systemd made its directories): the runs directory and
    the audit file, group-readable."""
    for path in (config.runtime_dir, config.state_dir, config.audit.parent):
        if not path.is_dir():
            raise ServeSetupError(
                f"{path} does not exist: start `console serve` as root once (it creates its "
                "directories, then runs as the service user), or create it for the service user"
            )
    try:
        os.makedirs(config.runs_dir, 0o700, exist_ok=True)
    except OSError as exc:
        raise ServeSetupError(f"cannot create {config.runs_dir}: {exc.strerror}") from None
    ensure_audit_file(config.audit, user)


def bind_as_service(path: Path) -> socket.socket:
    return _bind(path)


def _root_dir(path: Path) -> None:
    try:
        os.makedirs(path, 0o755, exist_ok=True)
    except OSError as exc:
        raise ServeSetupError(f"cannot create {path}: {exc.strerror}") from None
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise ServeSetupError(
            f"{path} must be a directory of root's that nobody else can write (it holds the "
            f"service's socket; whoever could write it could replace the socket): "
            f"`chown root: {path}; chmod 755 {path}`"
        )


def _service_dir(path: Path, user: ServiceUser, mode: int, gid: int) -> None:
    try:
        os.makedirs(path, 0o700, exist_ok=True)
        os.chown(path, user.uid, gid)
        os.chmod(path, mode)
    except OSError as exc:
        raise ServeSetupError(f"cannot prepare {path} for {user.name}: {exc.strerror}") from None


def ensure_audit_file(path: Path, user: ServiceUser) -> None:
    """The host-wide trail: the service user's, its group may read, nobody else."""
    try:
        fd = os.open(path, _AUDIT_FLAGS, 0o640)
    except OSError as exc:
        raise ServeSetupError(f"cannot open the audit file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ServeSetupError(f"{path} is not a regular file")
        os.fchown(fd, user.uid, user.group_gid)
        os.fchmod(fd, 0o640)
    finally:
        os.close(fd)


def _bind(path: Path) -> socket.socket:
    if path.is_socket():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()  # a service that died left it: nobody listens
        except OSError:
            pass
        else:
            raise ServeSetupError(f"a service already listens on {path}")
        finally:
            probe.close()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
    except OSError as exc:
        listener.close()
        raise ServeSetupError(f"cannot listen on {path}: {exc.strerror}") from None
    listener.listen(128)
    return listener


def read_credentials(path: Path | None, service_uid: int) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments skipped) of a file only the service user
    may read. A file others could read is refused: its secrets would not be the service's."""
    if path is None:
        return {}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ServeSetupError(f"cannot read the credentials {path}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="utf-8") as file:
        info = os.fstat(file.fileno())
        if info.st_uid not in (service_uid, 0) or info.st_mode & 0o077:
            raise ServeSetupError(
                f"{path} (mode {stat.S_IMODE(info.st_mode):04o}) can be read by others than "
                f"the service user: `chown SERVICE_USER {path}; chmod 600 {path}`"
            )
        text = file.read()
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not key.replace("_", "").isalnum():
            raise ServeSetupError(f"{path}:{number}: not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def check_workflow_dirs(config: ServeConfig, service_uid: int) -> None:
    """Everything in the allowed directories (workflows, policies, the scripts the steps
    run) must be changeable by root and the service user only: whoever else could change
    a file there could change what runs with the service's credentials."""
    for top in config.workflows:
        if not top.is_dir():
            raise ServeSetupError(f"{top} (`workflows` in the config) is not a directory")
        for directory, dirs, files in os.walk(top):
            for name in [".", *dirs, *files]:
                path = Path(directory, name)
                info = os.lstat(path)
                if stat.S_ISLNK(info.st_mode):
                    info = os.stat(path)
                if info.st_uid not in (0, service_uid) or info.st_mode & 0o022:
                    raise ServeSetupError(
                        f"{path.resolve()} (mode {stat.S_IMODE(info.st_mode):04o}) can be "
                        "changed by others than root and the service user, so they could "
                        "change what runs with its credentials: `chown -R root: "
                        f"{top}; chmod -R go-w {top}`"
                    )
