"""The audit trail: appends per second, and verification speed on a 1M-line file.

Appends go through console.audit.log.AuditLog, as the engine's audit sink calls it, in
three modes over the same stream of entries: no fsync at all (the floor), fsync on
decisions only (the product's default: a gate decision on every 4th step, so one line in
13 is fsynced), and fsync on every line (`--fsync-always`).

The 1M-line file is written with chain.seal, the function AuditLog itself uses to make a
line, in large writes; verify_chain must accept it, and its speed is lines per second.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import Figure, at_least, median, print_figures, reported, runs_from_argv

from console.audit.chain import GENESIS, entry_body, seal
from console.audit.log import AuditLog, verify_chain

APPENDS = 2000
VERIFY_LINES = 1_000_000
MIN_VERIFY_RATE = 200_000.0
RUN_ID = "20260101-120000-abc123"
TS = "2026-01-01T12:00:00.000000Z"


LOGS = f"/home/u/.local/state/console/runs/{RUN_ID}"


def step_entries(steps: int) -> Iterator[tuple[dict[str, Any], bool]]:
    """(entry, is_decision) for a run's step events: ready, a decision on every 4th step,
    started, finished. The entries have the shape and size of the real events' to_json()."""
    for i in range(steps):
        step = f"deploy-{i:04d}"
        yield {"run": RUN_ID, "type": "step.ready", "ts": TS, "step": step, "data": {}}, False
        if i % 4 == 0:
            decision = {
                "effect": "require_approval", "level": "hard", "approvals_required": 1,
                "rules": [{"name": "prod needs a second person", "effect": "require_approval",
                           "why": "tags prod matched"}],
                "summary": "needs 1 approval from @sre",
            }
            yield {"run": RUN_ID, "type": "gate.evaluated", "ts": TS, "step": step,
                   "data": {"decision": decision}}, True
        yield {"run": RUN_ID, "type": "step.started", "ts": TS, "step": step,
               "data": {"attempt": 1, "max_attempts": 3, "pid": 40000 + i,
                        "command": f"./deploy.sh {step} --env prod",
                        "log_path": f"{LOGS}/{step}.1.log"}}, False
        yield {"run": RUN_ID, "type": "step.finished", "ts": TS, "step": step,
               "data": {"attempt": 1, "outcome": "succeeded", "exit_code": 0, "error": None,
                        "duration_s": 1.234567, "log_size": 5120, "retry_in_s": None,
                        "log_path": f"{LOGS}/{step}.1.log",
                        "log_sha256": "ab" * 32}}, False


def append_rate(directory: Path, mode: str, count: int) -> float:
    entries = list(step_entries(count))[:count]
    log = AuditLog(directory / f"{mode}-{time.monotonic_ns()}.jsonl",
                   fsync_always=mode == "fsync always")
    start = time.perf_counter()
    with log:
        for entry, decision in entries:
            log.append(entry, sync=decision and mode == "fsync on decisions")
    return len(entries) / (time.perf_counter() - start)


def write_chain(path: Path, lines: int) -> None:
    """The same bytes AuditLog would write, line for line, written in big batches."""
    entries = list(step_entries(64))
    seq, prev = 0, GENESIS
    batch: list[bytes] = []
    with path.open("wb") as out:
        while seq < lines:
            entry, _ = entries[seq % len(entries)]
            record, line = seal(entry_body(entry), seq + 1, prev)
            seq, prev = record["seq"], record["hash"]
            batch.append(line)
            if len(batch) >= 10_000:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))


def run(runs: int = 5) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="console-bench-audit-") as tmp:
        directory = Path(tmp)
        for mode, count in (("no fsync", APPENDS), ("fsync on decisions", APPENDS),
                            ("fsync always", APPENDS // 4)):
            rates = [append_rate(directory, mode, count) for _ in range(runs)]
            figures.append(reported(f"audit appends, {mode}", median(rates), "lines/s",
                                    f"{count} lines per run"))
        path = directory / "million.jsonl"
        write_chain(path, VERIFY_LINES)
        size_mib = os.path.getsize(path) / (1024 * 1024)
        cores = os.cpu_count() or 1
        cli = f"`console audit verify`, {cores} cores"
        for label, workers in (("one process", 1), (cli, cores)):
            rates = []
            for _ in range(runs):
                start = time.perf_counter()
                report = verify_chain(path, workers=workers)
                elapsed = time.perf_counter() - start
                if not report.ok or report.lines != VERIFY_LINES:
                    raise SystemExit(f"verify_chain rejected the generated file: {report.message}")
                rates.append(VERIFY_LINES / elapsed)
            name = f"audit verify, 1M lines, {label}"
            if workers == 1:
                figures.append(reported(name, median(rates), "lines/s", f"{size_mib:.0f} MiB"))
            else:
                figures.append(at_least(name, median(rates), "lines/s", MIN_VERIFY_RATE,
                                        f"{size_mib:.0f} MiB file"))
    return figures


if __name__ == "__main__":
    print_figures("audit trail", run(runs_from_argv()))
