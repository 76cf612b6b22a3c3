"""Run processes as other Unix users in tests, wherever the checkout and the interpreter live.

A test that needs a second person (an approver, an outsider) runs a real process under
another uid with `setpriv`, so the server identifies it by SO_PEERCRED. That process has to
read the interpreter, the standard library and `console` itself, which it cannot when any of
them sits under a directory other users cannot traverse: a clone in a 0700 `mktemp -d` or
in /root, or a pyenv interpreter under /root/.pyenv. So, once per session and only when a
test asks for it, the fixtures build a world-readable copy of what such a process needs
(`SharedPython`: hard links where it can, so it takes half a second) under a fresh 0755
directory in a temp dir everyone can reach, and remove it at the end. Nothing outside that
directory changes mode: no ACLs, no chmod of the clone or of the interpreter.

The fixtures live in tests/conftest.py; the pieces here are what a test imports:

    # in tests/<area>/test_<topic>.py
    from ..multiuser import Accounts, SharedPython, needs_other_users, run_as

    @needs_other_users
    def test_a_colleague_approves(
        accounts: Accounts, shared_python: SharedPython, shared_dir: Path
    ) -> None:
        alice = accounts.user("alice", groups=["sre"])     # a real user in a real group
        done = run_as(alice, shared_python.console("approve", run_id, "deploy"),
                      env={"CONSOLE_RUNTIME_DIR": str(shared_dir)})
        assert done.returncode == 0, done.stderr

- `accounts` (session): `Accounts`, test users and groups made on first use, idempotently,
  and removed when the session ends (a group has its exact name, e.g. a workflow's `sre`,
  so concurrent sessions share it: the last one out deletes it, if the tests made it).
  `Account.named("nobody")` is an account the system already has.
- `shared_python` (session): `SharedPython`; `.console(*args)` is the argv of
  `python -m console ...` and `.argv(*args)` of any other Python command line, both
  runnable by every user (the copy of `console` is this checkout's, taken at session start).
- `shared_dir` (per test): a fresh sticky, world-writable directory every user can reach,
  e.g. a CONSOLE_RUNTIME_DIR whose control socket other users connect to.
- `as_user(user, argv)`: the argv that runs `argv` as `user` (for asyncio subprocesses);
  `run_as(user, argv, env=...)` runs it and returns the completed process, in text.
"""

from __future__ import annotations

import fcntl
import grp
import importlib.metadata
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import console

needs_other_users = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="running a process as another user needs root and setpriv",
)

# Parts of the standard library no test user runs: leaving them out keeps the copy small.
_STDLIB_LEFT_OUT = frozenset({
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
    "site-packages", "dist-packages",
})


@dataclass(frozen=True)
class Account:
    """A Unix account a test process can run as."""

    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, name: str) -> Account:
        entry = pwd.getpwnam(name)
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)


def as_user(user: Account, argv: Sequence[str]) -> list[str]:
    """`argv` run as `user`, with the user's own groups (from /etc/group)."""
    return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", *argv]


def run_as(
    user: Account,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path = "/",
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` as `user` and wait for it; `env` is added to this process's environment.

    It starts in `/` by default, a directory every user can reach.
    """
    return subprocess.run(
        as_user(user, argv),
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Accounts:
    """Test users and groups for one session: made on first use, removed by `remove_all`.

    `user(key)` makes the user `<prefix><key>`, the prefix being unique to the session (so
    concurrent sessions never share users); asking again for the same key returns the same
    account. `group(name)` uses the exact name, since workflows name their groups (`@sre`),
    so concurrent sessions may share a group: see `_GroupRegistry`.
    """

    def __init__(self, registry: Path | None = None) -> None:
        self.prefix = f"ct{secrets.token_hex(3)}"
        self._registry = _GroupRegistry(registry or _default_registry())
        self._users: dict[str, Account] = {}
        self._groups_of: dict[str, set[str]] = {}
        self._groups: list[str] = []

    def group(self, name: str) -> str:
        """The group `name`, made if the system has none; kept until this session ends."""
        if name not in self._groups:
            self._registry.join(name)
            self._groups.append(name)
        return name

    def user(self, key: str, groups: Iterable[str] = ()) -> Account:
        wanted = {self.group(name) for name in groups}
        name = f"{self.prefix}{key}"
        if key not in self._users:
            extra = ["--groups", ",".join(sorted(wanted))] if wanted else []
            _checked(["useradd", "--no-create-home", *extra, name])
            self._users[key] = Account.named(name)
            self._groups_of[key] = wanted
        elif missing := wanted - self._groups_of[key]:
            _checked(["usermod", "--append", "--groups", ",".join(sorted(missing)), name])
            self._groups_of[key] |= missing
        return self._users[key]

    def remove_all(self) -> None:
        """Delete this session's users, then leave its groups (the last one out deletes)."""
        for account in self._users.values():
            subprocess.run(["userdel", account.name], capture_output=True)
        self._users.clear()
        for name in reversed(self._groups):
            self._registry.leave(name)
        self._groups.clear()


def _default_registry() -> Path:
    base = Path("/run/lock")
    return (base if base.is_dir() else Path(tempfile.gettempdir())) / "console-test-groups.json"


class _GroupRegistry:
    """Which test sessions on this host use which group, in a JSON file under an flock.

    The first session to join a missing group makes it; the last to leave deletes it, if the
    tests made it (a group the system had is never deleted). Sessions that died without
    leaving are dropped by pid. The file is removed when no session uses any group.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def join(self, name: str) -> None:
        with self._locked() as groups:
            entry = groups.setdefault(name, {"made": False, "sessions": []})
            if not _group_exists(name):
                _checked(["groupadd", name])
                entry["made"] = True
            entry["sessions"] = [*_alive(entry["sessions"]), os.getpid()]

    def leave(self, name: str) -> None:
        with self._locked() as groups:
            entry = groups.get(name)
            if entry is None:
                return
            entry["sessions"] = [p for p in _alive(entry["sessions"]) if p != os.getpid()]
            if not entry["sessions"]:
                if entry["made"] and _group_exists(name):
                    subprocess.run(["groupdel", name], capture_output=True)
                del groups[name]

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The registry's content, locked; what the block leaves in it is written back."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:  # a session that emptied the file may have removed it while we waited
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            with os.fdopen(fd, "r+", closefd=False) as file:
                groups: dict[str, Any] = json.loads(file.read() or "{}")
                try:
                    yield groups
                except BaseException:
                    if os.fstat(fd).st_size == 0:  # made by this call: leave no trace
                        os.unlink(self.path)
                    raise
                if not groups:
                    os.unlink(self.path)
                    return
                file.seek(0)
                file.truncate()
                file.write(json.dumps(groups))
        finally:
            os.close(fd)


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _checked(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


@dataclass(frozen=True)
class SharedPython:
    """A copy of this interpreter with `console` and its dependencies, readable by all users.

    `executable` is a small launcher that finds the copied libpython; run it, not the
    binary next to it. `-I` keeps out the caller's PYTHONPATH and current directory, so
    `console` is always the copied one.
    """

    root: Path

    @property
    def executable(self) -> Path:
        return self.root / "bin" / "python"

    def argv(self, *args: str) -> list[str]:
        return [str(self.executable), "-I", *args]

    def console(self, *args: str) -> list[str]:
        return self.argv("-m", "console", *args)


def reachable_temp_base() -> Path:
    """A temp directory every user can traverse to (the default one may be private)."""
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        path = Path(candidate).resolve()
        if path.is_dir() and all(_traversable(p) for p in (path, *path.parents)):
            return path
    raise RuntimeError("no temp directory that every user can traverse (tried $TMPDIR, /tmp)")


def _traversable(path: Path) -> bool:
    return bool(os.stat(path).st_mode & stat.S_IXOTH)


def reachable_dir(prefix: str, mode: int) -> Path:
    """A fresh directory with `mode` under a temp directory every user can reach."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=reachable_temp_base()))
    path.chmod(mode)
    return path


def build_shared_python(root: Path) -> SharedPython:
    """Copy into `root` what `python -m console` needs, every file readable by all users.

    The layout is a Python prefix (`bin/`, `lib/pythonX.Y/`, `site-packages` inside it), so
    the copied interpreter finds its standard library by itself.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = Path(os.__file__).parent
    lib = root / "lib"
    shutil.copytree(stdlib, lib / version, ignore=_leave_out_of(stdlib), copy_function=_place)
    dynload = Path(str(sysconfig.get_config_var("DESTSHARED")))
    if dynload.is_dir() and not dynload.is_relative_to(stdlib):
        shutil.copytree(
            dynload, lib / version / "lib-dynload", ignore=_leave_out_of(dynload),
            copy_function=_place,
        )
    libpython = Path(str(sysconfig.get_config_var("LIBDIR"))) / str(
        sysconfig.get_config_var("INSTSONAME")
    )
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libpython.is_file():
        _place(libpython, lib / libpython.name)
    binary = root / "bin" / version
    binary.parent.mkdir()
    _place(os.path.realpath(getattr(sys, "_base_executable", sys.executable)), binary)
    launcher = root / "bin" / "python"
    launcher.write_text(
        "#!/bin/sh\n"
        f'LD_LIBRARY_PATH="{lib}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}" '
        f'exec "{binary}" "$@"\n'
    )
    launcher.chmod(0o755)
    site = lib / version / "site-packages"
    shutil.copytree(Path(console.__file__).parent, site / "console", copy_function=_place)
    for dist in _runtime_dependencies("console"):
        for file in dist.files or ():
            source = Path(str(dist.locate_file(file)))
            if file.parts[0] != ".." and source.is_file():
                (site / file).parent.mkdir(parents=True, exist_ok=True)
                _place(source, site / file)
    _open_directories_to_all(root)
    return SharedPython(root)


def _leave_out_of(top: Path) -> Callable[[str, list[str]], set[str]]:
    def ignore(directory: str, names: list[str]) -> set[str]:
        left_out = {n for n in names if n.endswith((".opt-1.pyc", ".opt-2.pyc"))}
        if Path(directory) == top:
            left_out |= {n for n in names if n in _STDLIB_LEFT_OUT or n.startswith("config-")}
        return left_out

    return ignore


def _runtime_dependencies(name: str) -> list[importlib.metadata.Distribution]:
    """The installed distributions `name` needs at run time (not its extras), recursively."""
    found: dict[str, importlib.metadata.Distribution] = {}
    extras_seen: dict[str, set[str]] = {}
    pending: list[tuple[str, frozenset[str]]] = [(name, frozenset())]
    while pending:
        wanted, extras = pending.pop()
        key = canonicalize_name(wanted)
        if key in extras_seen and extras <= extras_seen[key]:
            continue
        extras_seen.setdefault(key, set()).update(extras)
        dist = importlib.metadata.distribution(wanted)
        if key != canonicalize_name(name):  # the package itself is copied from its source
            found[key] = dist
        for text in dist.requires or ():
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return list(found.values())


def _place(source: str | Path, target: str | Path) -> None:
    """Hard-link `source` when a link is as good as a copy, else copy it, readable by all.

    A link is as good when both sit on one filesystem and the file is already readable by
    others and writable by its owner only (a link shares the mode: it is never changed).
    Linking makes the build take a fraction of a second instead of copying ~120 MB.
    """
    mode = os.stat(source).st_mode
    executable = mode & stat.S_IXUSR
    shareable = (mode & stat.S_IROTH and not mode & (stat.S_IWGRP | stat.S_IWOTH)
                 and (not executable or mode & stat.S_IXOTH))
    if shareable:
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    shutil.copy2(source, target)
    os.chmod(target, 0o755 if executable else 0o644)


def _open_directories_to_all(root: Path) -> None:
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o755)
