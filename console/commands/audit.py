"""`console audit verify | head | tail`: check, anchor and read the audit trail.

Records hold what other people wrote (reasons, user names, step ids): every line goes out
through `terminal_safe` (`--json`: its JSON form, the same value to a parser).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from console.audit.chain import format_head, parse_head
from console.audit.reading import last_records, read_head
from console.audit.verify import verify_chain
from console.config import audit_path
from console.errors import UsageError
from console.present import record_line
from console.textsafe import terminal_safe, terminal_safe_json


def main(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else audit_path(getattr(args, "audit", None))
    command: str = args.audit_command
    if command == "verify":
        code = _verify(path, args.head)
        journal = getattr(args, "against_journal", None)
        if code == 0 and journal is not None:
            from console.commands.audit_journal import verify_against_journal

            return verify_against_journal(path, journal)
        return code
    if command == "head":
        return _head(path)
    return _tail(path, args)


def _verify(path: Path, head_text: str | None) -> int:
    head = parse_head(head_text) if head_text is not None else None
    report = verify_chain(path, head, workers=os.cpu_count() or 1)
    if report.ok:
        print(terminal_safe(report.message))
        return 0
    print(f"console: {terminal_safe(report.message)}", file=sys.stderr)
    return 1


def _head(path: Path) -> int:
    tail = read_head(path)
    print(format_head(tail.seq, tail.hash))
    if tail.torn_bytes:
        print(
            f"console: {path}: the last line is torn ({tail.torn_bytes} bytes without a newline, "
            "a crash mid-write); this is the head of the lines before it",
            file=sys.stderr,
        )
    return 0


def _tail(path: Path, args: argparse.Namespace) -> int:
    count: int = args.lines
    if count < 0:
        raise UsageError(f"-n {count}: the number of lines must be 0 or more")
    run: str | None = args.run_id
    as_json: bool = args.json
    records, end = last_records(path, count, run)
    for record, line in records:
        _show(record, line, as_json=as_json, with_run=run is None)
    if args.follow:
        # Imported here so that verify, head and a plain tail start without asyncio.
        import asyncio

        sys.stdout.flush()
        asyncio.run(_follow(path, end, run, as_json))
    return 0


async def _follow(path: Path, offset: int, run: str | None, as_json: bool) -> None:
    from console.audit.follow import follow_lines

    async for record, line in follow_lines(path, offset=offset):
        if run is None or record.get("run") == run:
            _show(record, line, as_json=as_json, with_run=run is None)
            sys.stdout.flush()


def _show(record: Mapping[str, Any], line: bytes, *, as_json: bool, with_run: bool) -> None:
    if as_json:
        sys.stdout.write(terminal_safe_json(line.decode("utf-8", "replace")) + "\n")
    else:
        sys.stdout.write(record_line(record, with_run=with_run) + "\n")
