"""Which lines of the host-wide audit trail the service vouches for, and the heads it journals.

Only the service's run hosts append to the trail. The service subscribes to each of them
(protocol v2) and so sees every record each one writes, with its seq and hash. When it
journals the head (after every run, and on a timer), it first reads the lines after the
last head it journaled and checks each against what it saw:

- a line a run host sent it: vouched;
- a line already in the file when the service started (written while it was down), of a
  run the service started (its state file lists them) and not after that run's
  `run.finished`: vouched;
- a line of a run it is watching that has not arrived on the subscription yet: wait
  (at most PENDING_GRACE_S), the journal's head stays before it;
- anything else: not written by any run of this service. It is reported to the journal
  as such (an alert), once, and the head moves past it, so it cannot be removed unseen.

The state file (`<state_dir>/serve-state.json`, the service user's alone) keeps the last
journaled head, the lines reported and the runs started, across restarts.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from console.audit.reading import read_records
from console.host.serve_journal import forged_message, head_message

PENDING_GRACE_S = 5.0
STATE_FILE = "serve-state.json"
# A writer's own note about a torn tail it moved aside: it belongs to no run, no host
# publishes it, and it only appears after a crash mid-write.
_UNOWNED_TYPES = frozenset({"audit.recovered_tail"})

Send = Callable[[str, bool], None]


class HeadKeeper:
    def __init__(self, audit_path: Path, state_dir: Path, send: Send) -> None:
        self.audit_path = audit_path
        self.state_path = state_dir / STATE_FILE
        self.send = send
        self.seen: dict[int, str] = {}
        self.watching: set[str] = set()
        self._pending_since: dict[int, float] = {}
        self._offset = 0  # the audit file's bytes up to here are judged
        self._finished_at: dict[str, int] = {}  # run -> seq of its run.finished, so far
        saved = self._load()
        head = saved.get("head") or [0, ""]
        self.head: tuple[int, str] = (int(head[0]), str(head[1]))
        self.reported: set[int] = set(saved.get("reported") or ())
        self.runs: set[str] = set(saved.get("runs") or ())
        # Lines up to here were written while no service watched: judged by run id.
        self.restart_seq = self._file_last_seq()

    # --- what the service tells it ---------------------------------------------------

    def started(self, run_id: str) -> None:
        self.runs.add(run_id)
        self.watching.add(run_id)
        self._save()

    def saw(self, record: Mapping[str, Any]) -> None:
        seq, digest = record.get("seq"), record.get("hash")
        if isinstance(seq, int) and isinstance(digest, str):
            self.seen[seq] = digest

    def stopped_watching(self, run_id: str) -> None:
        self.watching.discard(run_id)

    # --- the journal -------------------------------------------------------------------

    def journal(self) -> tuple[int, str]:
        """Judge the lines after the last journaled head, report the ones no run wrote,
        and journal the new head if it moved. Returns the journaled head. Reads only what
        was appended since the last call (all of it again if the file shrank)."""
        new_head = self.head
        now = time.monotonic()
        for record, end in self._records_since():
            seq, digest, run = record.get("seq"), record.get("hash"), record.get("run")
            if not isinstance(seq, int) or not isinstance(digest, str):
                self._offset = end
                continue
            if seq > self.head[0]:
                verdict = self._judge(seq, digest, record, now)
                if verdict == "pending":
                    break
                if verdict == "forged" and seq not in self.reported:
                    self.send(forged_message(seq, digest, self.audit_path), True)
                    self.reported.add(seq)
                new_head = (seq, digest)
            if record.get("type") == "run.finished" and isinstance(run, str):
                self._finished_at.setdefault(run, seq)
            self._offset = end
        if new_head != self.head:
            self.send(head_message(*new_head, self.audit_path), False)
            self.head = new_head
            self._save()
        self.seen = {s: h for s, h in self.seen.items() if s > self.head[0]}
        return self.head

    def _records_since(self) -> Iterator[tuple[dict[str, Any], int]]:
        """Each complete line from the last judged one on, parsed, with the offset after it."""
        try:
            fd = os.open(self.audit_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        with os.fdopen(fd, "rb") as file:
            if os.fstat(fd).st_size < self._offset:  # rewritten or cut: judge it all again
                self._offset, self._finished_at = 0, {}
            file.seek(self._offset)
            end = self._offset
            for line in file:
                if not line.endswith(b"\n"):
                    return  # being written: judged next time
                end += len(line)
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                yield (record if isinstance(record, dict) else {}), end

    def _judge(self, seq: int, digest: str, record: Mapping[str, Any], now: float) -> str:
        run = record.get("run")
        if self.seen.get(seq) == digest or record.get("type") in _UNOWNED_TYPES:
            return "vouched"
        if (seq <= self.restart_seq and isinstance(run, str) and run in self.runs
                and self._finished_at.get(run, seq) >= seq):
            return "vouched"
        if isinstance(run, str) and run in self.watching:
            first = self._pending_since.setdefault(seq, now)
            if now - first < PENDING_GRACE_S:
                return "pending"
        self._pending_since.pop(seq, None)
        return "forged"

    # --- the state file ----------------------------------------------------------------

    def _file_last_seq(self) -> int:
        last = 0
        with contextlib.suppress(FileNotFoundError):
            for record in read_records(self.audit_path):
                seq = record.get("seq")
                if isinstance(seq, int):
                    last = max(last, seq)
        return last

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged state file: start over; the journal still has the heads
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        data = {"head": list(self.head), "reported": sorted(self.reported),
                "runs": sorted(self.runs)}
        fd, temp = tempfile.mkstemp(prefix=".serve-state.", dir=self.state_path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.state_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
