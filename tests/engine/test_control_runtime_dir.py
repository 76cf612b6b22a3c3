"""The runtime directory and socket paths are checked before a run trusts them."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.errors import ControlError
from console.run.control import SHARED_RUNTIME_DIR, clear_socket_path, ensure_runtime_dir

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another uid")


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_shared_default_is_the_per_host_tmp_dir() -> None:
    assert Path("/tmp/console-runs") == SHARED_RUNTIME_DIR


@pytest.mark.usefixtures("strict_umask")
def test_a_shared_dir_is_created_sticky_and_world_writable(tmp_path: Path) -> None:
    path = ensure_runtime_dir(tmp_path / "runs", shared=True)
    assert mode(path) == 0o1777
    assert os.lstat(path).st_mode & stat.S_ISVTX


@pytest.mark.usefixtures("strict_umask")
def test_a_private_dir_is_created_with_parents_and_reachable_not_writable(
    tmp_path: Path,
) -> None:
    path = ensure_runtime_dir(tmp_path / "a" / "b" / "runs")
    assert mode(path) == 0o755


def test_an_existing_dir_of_ours_is_used_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "runs"
    path.mkdir(mode=0o700)
    assert ensure_runtime_dir(path) == path
    assert mode(path) == 0o700


def test_a_symlink_is_refused_even_to_a_good_dir(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "runs"
    link.symlink_to(real)
    with pytest.raises(ControlError) as caught:
        ensure_runtime_dir(link)
    assert caught.value.message.startswith(f"runtime directory {link} is a symlink; refusing")
    assert "set CONSOLE_RUNTIME_DIR" in caught.value.message


def test_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs"
    path.write_text("")
    with pytest.raises(ControlError, match="exists and is not a directory; set CONSOLE_RUNTIME"):
        ensure_runtime_dir(path)


def test_world_writable_without_sticky_bit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs"
    path.mkdir()
    os.chmod(path, 0o777)
    with pytest.raises(ControlError, match=r"everyone without the sticky bit.*chmod \+t"):
        ensure_runtime_dir(path)


@needs_root
def test_a_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs"
    path.mkdir()
    os.chmod(path, 0o1777)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(ControlError) as caught:
        ensure_runtime_dir(path, shared=True)
    assert caught.value.message == (
        f"runtime directory {path} is owned by uid {NOBODY}, not by you or root, so its owner "
        "could replace your run's socket; set CONSOLE_RUNTIME_DIR to a directory you own "
        "(e.g. $XDG_RUNTIME_DIR/console), or have root create the shared one: "
        "install -d -m 1777 /tmp/console-runs"
    )


def test_clear_socket_path_removes_our_stale_socket(tmp_path: Path) -> None:
    path = tmp_path / "run.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))
    clear_socket_path(path)
    assert not os.path.lexists(path)
    clear_socket_path(path)  # nothing there: nothing to do


def test_clear_socket_path_refuses_symlinks_and_plain_files(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep me")
    link = tmp_path / "link.sock"
    link.symlink_to(target)
    with pytest.raises(ControlError, match="is a symlink; refusing to replace it"):
        clear_socket_path(link)
    with pytest.raises(ControlError, match="exists and is not a socket; remove it"):
        clear_socket_path(target)
    assert target.read_text() == "keep me"


@needs_root
def test_clear_socket_path_refuses_someone_elses_socket(tmp_path: Path) -> None:
    path = tmp_path / "run.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as theirs:
        theirs.bind(str(path))
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(ControlError, match=f"belongs to uid {NOBODY}, not to you"):
        clear_socket_path(path)
    assert os.path.lexists(path)
