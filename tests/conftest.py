"""Shared fixtures: every test gets its own state, runtime and config directories.

Tests that run processes as other Unix users use `accounts`, `shared_python` and
`shared_dir` (see tests/multiuser.py for how, and why).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .multiuser import Accounts, SharedPython, build_shared_python, reachable_dir
from .sshd import Fleet, sshd_available, start_fleet

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"


def own_workflows(tmp_path: Path) -> Path:
    """A copy of workflows/ whose locks are this test's own: a run never waits for the lock
    of someone else's run of the same example on this host."""
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, copy)
    for path in copy.glob("*.toml"):
        text = path.read_text()
        path.write_text(re.sub(r'^lock = "([^"]+)"', rf'lock = "\1-{uuid.uuid4().hex[:8]}"',
                               text, flags=re.M))
    return copy


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Keep audit files, run logs, sockets and config out of the real home directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("CONSOLE_RUNTIME_DIR", str(tmp_path / "runtime"))
    # No test submits to a `console serve` of this host by accident.
    monkeypatch.setenv("CONSOLE_SERVE_CONFIG", str(tmp_path / "serve.toml"))
    yield tmp_path


@pytest.fixture(scope="session")
def accounts() -> Iterator[Accounts]:
    """Test users and groups, made on first use and removed at the end of the session."""
    if os.geteuid() != 0:
        pytest.skip("creating users and groups needs root; run as root to test real accounts")
    if not all(shutil.which(tool) for tool in ("useradd", "usermod", "groupadd")):
        pytest.skip("useradd, usermod and groupadd are not installed")
    made = Accounts()
    try:
        yield made
    finally:
        made.remove_all()


@pytest.fixture(scope="session")
def shared_python() -> Iterator[SharedPython]:
    """This interpreter with console, in a copy every user can read; built once, on first use."""
    root = reachable_dir("console-multiuser-", 0o755)
    try:
        yield build_shared_python(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A fresh sticky, world-writable directory every user can reach (e.g. a runtime dir)."""
    path = reachable_dir("console-shared-", 0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """20 "hosts" (127.0.0.2-21) served by real sshds, shared by the fleet tests."""
    if not sshd_available():
        pytest.skip("OpenSSH's sshd is not installed (apt-get install openssh-server), "
                    "or not running as root")
    started = start_fleet(tmp_path_factory.mktemp("fleet"), 20)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def own_fleet(tmp_path: Path) -> Iterator[Callable[[int], Fleet]]:
    """A fleet of the test's own (on 127.0.0.30 upwards), for tests that kill its sshds."""
    if not sshd_available():
        pytest.skip("OpenSSH's sshd is not installed, or not running as root")
    made: list[Fleet] = []

    def make(hosts: int) -> Fleet:
        made.append(start_fleet(tmp_path / f"fleet-{len(made)}", hosts, first=30))
        return made[-1]

    try:
        yield make
    finally:
        for one in made:
            one.stop()
