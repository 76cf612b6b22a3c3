"""The audit file cannot be swapped for a FIFO, a device or a link, nor used when others can
write it; what the writer creates is 0700 (directories) and 0600 (files)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.audit.follow import follow
from console.audit.log import AuditLog, read_records, verify_chain
from console.audit.parallel import verify_intact
from console.audit.reading import last_records, read_head
from console.errors import AuditError
from console.paths import make_private_dirs

NOT_ROOT = os.geteuid() != 0
NOBODY = 65534


def console(*args: str) -> subprocess.CompletedProcess[str]:
    # A reader that blocked on the FIFO would never answer: the timeout fails the test.
    return subprocess.run(
        [sys.executable, "-m", "console", *args], capture_output=True, text=True, timeout=30
    )


def entry(number: int) -> dict[str, Any]:
    return {"run": "r-1", "type": "step.ready", "step": f"s{number}", "data": {"n": number}}


def write_trail(path: Path, count: int = 3) -> bytes:
    with AuditLog(path) as log:
        for number in range(count):
            log.append(entry(number))
    return path.read_bytes()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


# --- not a regular file: answered at once, never read ---------------------------------


@pytest.mark.parametrize("command", ["verify", "head", "tail"])
def test_a_fifo_is_refused_at_once_by_every_reading_command(tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo)
    result = console("audit", command, str(fifo))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"{fifo} is a FIFO (named pipe), not a regular file" in result.stderr


@pytest.mark.parametrize("command", ["verify", "head", "tail"])
def test_dev_zero_is_refused_at_once_by_every_reading_command(command: str) -> None:
    result = console("audit", command, "/dev/zero")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "/dev/zero is a character device, not a regular file" in result.stderr


def test_the_readers_refuse_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo)
    readers = [
        lambda: verify_chain(fifo),
        lambda: verify_chain(fifo, workers=4),
        lambda: verify_intact(fifo, None, 2, min_bytes=0),
        lambda: read_head(fifo),
        lambda: list(read_records(fifo)),
        lambda: last_records(fifo, 5),
    ]
    for read in readers:
        with pytest.raises(AuditError, match="is a FIFO"):
            read()


def test_the_writer_refuses_a_fifo_and_a_device(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(AuditError, match="is a FIFO"):
        AuditLog(fifo)
    with pytest.raises(AuditError, match="is a character device"):
        AuditLog("/dev/null")


# --- symbolic links: never followed -----------------------------------------------------


def test_the_writer_does_not_create_the_target_of_a_dangling_link(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    target = tmp_path / "elsewhere" / "audit.jsonl"
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    with pytest.raises(AuditError) as raised:
        AuditLog(link)
    assert not target.exists()
    message = raised.value.message
    assert f"{link} is a symbolic link to {target}" in message
    assert "does not exist and is not created" in message


def test_the_writer_does_not_append_through_a_link_to_a_good_trail(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    before = write_trail(real)
    link = tmp_path / "audit.jsonl"
    link.symlink_to(real)
    with pytest.raises(AuditError, match=rf"pass the file's own path \({real}\)"):
        AuditLog(link)
    assert real.read_bytes() == before


def test_a_link_put_in_place_of_an_open_trail_is_refused_not_followed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    decoy = tmp_path / "decoy.jsonl"
    decoy.write_bytes(b"")
    with AuditLog(path) as log:
        log.append(entry(1))
        path.rename(tmp_path / "audit.jsonl.moved")
        path.symlink_to(decoy)
        with pytest.raises(AuditError, match="is a symbolic link"):
            log.append(entry(2))
    assert decoy.read_bytes() == b""


def test_the_readers_refuse_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    write_trail(real)
    link = tmp_path / "audit.jsonl"
    link.symlink_to(real)
    readers = [
        lambda: verify_chain(link),
        lambda: verify_chain(link, workers=2),
        lambda: read_head(link),
        lambda: list(read_records(link)),
        lambda: last_records(link, 5),
    ]
    for read in readers:
        with pytest.raises(AuditError, match=f"{link} is a symbolic link to {real}"):
            read()
    result = console("audit", "verify", str(link))
    assert result.returncode == 1 and "is a symbolic link" in result.stderr


async def test_following_stops_when_the_trail_is_replaced_by_a_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path, 1)
    real = tmp_path / "real.jsonl"
    write_trail(real, 1)
    seen: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def consume() -> None:
        async for record in follow(path):
            seen.put_nowait(record)

    task = asyncio.create_task(consume())
    try:
        # Append until the follower reports a line: it is then watching the file.
        with AuditLog(path) as log:
            while True:
                log.append(entry(2))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(seen.get(), timeout=1)
                    break
        path.unlink()
        path.symlink_to(real)
        with pytest.raises(AuditError, match="is a symbolic link"):
            await asyncio.wait_for(task, timeout=30)
    finally:
        task.cancel()


def test_a_link_in_place_of_the_torn_copy_is_not_followed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path, 2)
    with path.open("ab") as handle:
        handle.write(b'{"torn')
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (tmp_path / "audit.jsonl.torn-3").symlink_to(victim)
    with AuditLog(path) as log:
        record = log.append(entry(9))
    assert victim.read_bytes() == b"keep me"
    assert (tmp_path / "audit.jsonl.torn-3.2").read_bytes() == b'{"torn'
    assert mode_of(tmp_path / "audit.jsonl.torn-3.2") == 0o600
    assert record["seq"] == 4 and verify_chain(path).ok


# --- permissions of the file ------------------------------------------------------------


@pytest.mark.parametrize(("mode", "who"), [(0o666, "group and others"), (0o620, "group")])
def test_the_writer_refuses_a_file_others_can_write(tmp_path: Path, mode: int, who: str) -> None:
    path = tmp_path / "audit.jsonl"
    before = write_trail(path)
    path.chmod(mode)
    with pytest.raises(AuditError) as raised:
        AuditLog(path)
    message = raised.value.message
    assert f"{path} can be written by {who} (mode {mode:04o})" in message
    assert f"chmod 600 {path}" in message
    assert path.read_bytes() == before


def test_verify_reads_a_file_others_can_write_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    path.chmod(0o666)
    report = verify_chain(path)
    assert report.ok and report.lines == 3
    assert report.warning.startswith(f"warning: {path} can be written by group and others")
    result = console("audit", "verify", str(path))
    assert result.returncode == 0
    assert result.stdout.startswith("ok: 3 lines") and "chmod 600" in result.stdout
    path.chmod(0o644)
    assert verify_chain(path).warning == ""


@pytest.mark.skipif(NOT_ROOT, reason="giving a file to another user needs root")
def test_the_writer_refuses_another_users_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_trail(path)
    os.chown(path, NOBODY, -1)
    with pytest.raises(AuditError, match=r"belongs to .*uid 65534.*not to you"):
        AuditLog(path)
    assert verify_chain(path).ok  # reading another user's trail is fine


# --- what the writer creates, and where -------------------------------------------------


def test_created_file_is_0600_and_missing_directories_0700_whatever_the_umask(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a" / "b" / "audit.jsonl"
    with umask(0), AuditLog(path):
        pass
    assert mode_of(path) == 0o600
    assert mode_of(tmp_path / "a" / "b") == 0o700
    assert mode_of(tmp_path / "a") == 0o700


def test_make_private_dirs_leaves_existing_directories_alone(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(0o755)
    make_private_dirs(tmp_path / "shared" / "x" / "y")
    make_private_dirs(tmp_path / "shared" / "x" / "y")  # already there: nothing to do
    assert mode_of(tmp_path / "shared") == 0o755
    assert mode_of(tmp_path / "shared" / "x") == mode_of(tmp_path / "shared" / "x" / "y") == 0o700
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(FileExistsError):
        make_private_dirs(tmp_path / "file")


def test_nothing_is_created_in_a_directory_everyone_can_write(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    for path in (open_dir / "audit.jsonl", open_dir / "sub" / "audit.jsonl"):
        with pytest.raises(AuditError) as raised:
            AuditLog(path)
        message = raised.value.message
        assert f"{open_dir} can be written by every user (mode 0777, no sticky bit)" in message
        assert f"chmod o-w {open_dir}" in message
    assert list(open_dir.iterdir()) == []


def test_a_sticky_shared_directory_like_tmp_is_accepted(tmp_path: Path) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    write_trail(sticky / "audit.jsonl")
    assert verify_chain(sticky / "audit.jsonl").ok


def test_a_group_shared_directory_is_accepted(tmp_path: Path) -> None:
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o2770)
    write_trail(team / "audit.jsonl")
    assert mode_of(team / "audit.jsonl") == 0o600


def test_a_directory_linked_by_its_user_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o700)
    (tmp_path / "state").symlink_to(tmp_path / "data")
    write_trail(tmp_path / "state" / "audit.jsonl")
    assert verify_chain(tmp_path / "data" / "audit.jsonl").ok


@pytest.mark.skipif(NOT_ROOT, reason="a link owned by another user needs root to make")
def test_nothing_is_created_through_a_directory_link_another_user_owns(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o700)
    link = tmp_path / "state"
    link.symlink_to(tmp_path / "data")
    os.lchown(link, NOBODY, -1)
    with pytest.raises(AuditError, match=rf"{link} is a symbolic link .* owned by .*uid 65534"):
        AuditLog(link / "audit.jsonl")
    assert list((tmp_path / "data").iterdir()) == []
