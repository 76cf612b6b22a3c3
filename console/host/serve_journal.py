"""The audit chain's head, kept where the service user cannot rewrite it: the system journal.

The service sends one syslog datagram per message to `syslog_socket` (`/dev/log`: journald
on a systemd host, else the syslog daemon), tagged `console-serve`:

    audit head 4711:9f86d0… of /var/log/console/audit.jsonl
    audit line 4712:60303a… of /var/log/console/audit.jsonl was not written by any run of …

`console audit verify PATH --against-journal [FILE]` reads them back (from FILE, a syslog
file, or else from `journalctl -t console-serve`) and checks the file against every one:
a head whose line is missing or different means the trail was rewritten or cut; a line
the service reported as not written by its runs means a forged append.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from console.audit.reading import read_records
from console.errors import ConsoleError

TAG = "console-serve"
_AUTHPRIV = 10 << 3
_INFO, _ALERT = 6, 1
_HEAD = re.compile(r"audit head (\d+):([0-9a-f]{64}) of (/\S+)")
_FORGED = re.compile(r"audit line (\d+):([0-9a-f]{64}) of (/\S+) was not written")


class JournalError(ConsoleError):
    """The journal cannot be written or read."""


def head_message(seq: int, digest: str, path: Path) -> str:
    return f"audit head {seq}:{digest} of {path}"


def forged_message(seq: int, digest: str, path: Path) -> str:
    return f"audit line {seq}:{digest} of {path} was not written by any run of this service"


def send(syslog_socket: Path, message: str, *, alert: bool = False) -> None:
    """One syslog datagram. Raises JournalError when nobody listens on `syslog_socket`."""
    priority = _AUTHPRIV | (_ALERT if alert else _INFO)
    datagram = f"<{priority}>{TAG}[{os.getpid()}]: {message}".encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(datagram, str(syslog_socket))
        except OSError as exc:
            raise JournalError(
                f"cannot write to the system journal on {syslog_socket}: "
                f"{exc.strerror or exc} — is journald or a syslog daemon running?"
            ) from None


@dataclass
class JournalView:
    """What the journal says about one audit file, in the journal's order."""

    heads: list[tuple[int, str]] = field(default_factory=list)
    forged: list[tuple[int, str]] = field(default_factory=list)


def parse_journal(text: str, audit_path: Path) -> JournalView:
    view = JournalView()
    wanted = str(audit_path)
    for line in text.splitlines():
        if TAG not in line and "audit " not in line:
            continue
        if (found := _FORGED.search(line)) and found.group(3) == wanted:
            view.forged.append((int(found.group(1)), found.group(2)))
        elif (found := _HEAD.search(line)) and found.group(3) == wanted:
            view.heads.append((int(found.group(1)), found.group(2)))
    return view


def read_journal(source: Path | None) -> str:
    """The service's journal messages: from the syslog file `source`, else journalctl."""
    if source is not None:
        try:
            return source.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise JournalError(f"cannot read {source}: {exc.strerror or exc}") from None
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        raise JournalError(
            "no journalctl on this host: name the file syslog writes to, "
            "e.g. --against-journal /var/log/syslog"
        )
    done = subprocess.run(
        [journalctl, "--no-pager", "-o", "cat", "-t", TAG],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise JournalError(
            f"journalctl could not be read: {why[-1] if why else done.returncode}; "
            "name the syslog file instead: --against-journal FILE"
        )
    return done.stdout


@dataclass(frozen=True)
class JournalCheck:
    ok: bool
    problems: list[str]
    summary: str


def check_against_journal(audit_path: Path, journal_text: str) -> JournalCheck:
    """Every head the journal kept must be a line of the file, every line the service
    reported as forged must be gone; lines after the last head are only counted."""
    view = parse_journal(journal_text, audit_path)
    if not view.heads and not view.forged:
        return JournalCheck(False, [
            f"the journal has no head of {audit_path}: the service never recorded one "
            "(is this the service's audit file, and the right journal?)"
        ], "")
    hashes: dict[int, str] = {}
    last = 0
    for record in read_records(audit_path):
        seq, digest = record.get("seq"), record.get("hash")
        if isinstance(seq, int) and isinstance(digest, str):
            hashes[seq] = digest
            last = max(last, seq)
    problems: list[str] = []
    for seq, digest in view.heads:
        found = hashes.get(seq)
        if found is None:
            problems.append(
                f"line {seq} is missing: the journal kept head {seq}:{digest[:12]}…, "
                f"the file ends at line {last} (cut off or rewritten)"
            )
        elif found != digest:
            problems.append(
                f"line {seq} was rewritten: the journal kept hash {digest[:12]}…, "
                f"the file has {found[:12]}…"
            )
    for seq, digest in view.forged:
        if hashes.get(seq) == digest:
            problems.append(
                f"line {seq} ({digest[:12]}…) was not written by any run of the service "
                "(it said so in the journal): a forged append"
            )
    newest = max((seq for seq, _ in view.heads), default=0)
    unvouched = last - newest if last > newest else 0
    summary = f"{len(view.heads)} journal heads checked, the newest at line {newest}"
    if unvouched:
        summary += f"; {unvouched} later lines are not in the journal yet"
    return JournalCheck(not problems, problems, summary)
