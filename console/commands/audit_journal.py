"""`console audit verify PATH --against-journal [FILE]`: the trail against the heads that
console serve kept in the system journal (console/host/serve_journal.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from console.host.serve_config import find_serve_config
from console.host.serve_journal import check_against_journal, read_journal
from console.textsafe import terminal_safe


def verify_against_journal(audit_path: Path, source: str) -> int:
    """FILE, else the service config's `journal_file`, else journalctl."""
    where: Path | None = Path(source) if source else None
    if where is None:
        config = find_serve_config()
        where = config.journal_file if config is not None else None
    check = check_against_journal(
        Path(os.path.abspath(audit_path)), read_journal(where)
    )
    shown = "journalctl" if where is None else str(where)
    if check.ok:
        print(terminal_safe(f"matches the journal ({shown}): {check.summary}"))
        return 0
    for problem in check.problems:
        print(f"console: {terminal_safe(str(audit_path))}: {terminal_safe(problem)}",
              file=sys.stderr)
    print(f"console: the audit trail does not match the journal ({terminal_safe(shown)})",
          file=sys.stderr)
    return 1
