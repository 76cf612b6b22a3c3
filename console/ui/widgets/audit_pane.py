"""The audit pane: the audit file followed live, a row per record, and the chain's state.

Records written by other terminals (approvals, other runs) appear as they land, because the
pane follows the file itself rather than this process's events. Everything in a record may
be someone else's text: rows, titles and the record view are `terminal_safe` rich Text, never
markup (a DataTable reads a str cell as markup).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from console.audit.follow import follow
from console.audit.log import VerifyReport, verify_chain
from console.present import fit
from console.textsafe import terminal_safe, terminal_safe_json
from console.ui.dialog import Dialog
from console.ui.widgets.audit_records import ChainTracker, cells, last_records

MAX_ROWS = 2000
COLUMN_LABELS = ("time", "actor", "type", "step", "summary")
FIXED_WIDTHS = (8, 8, 14, 10)
MIN_SUMMARY_WIDTH = 20
# On a pane too narrow for the summary, these columns give it their room, in this order.
NARROW_DROPS = ("actor", "time")
FLUSH_INTERVAL_S = 1 / 30


class AuditPane(Vertical):
    """A row per audit record (time, actor, type, step, summary), newest at the bottom.

    `run_id` is the run this screen shows (None: no run yet); `f` toggles between that run
    and every run. `enter` opens the whole record. The border title says how far the chain
    is verified, or where it is broken.
    """

    DEFAULT_CSS = """
    AuditPane {
        height: 10;
        border: round $border-blurred;
        border-title-color: $foreground;
        border-subtitle-color: $text-muted;
        background: $surface;
    }
    AuditPane:focus-within {
        border: round $border;
    }
    AuditPane.-broken {
        border-title-color: $error;
        border-title-style: bold;
    }
    AuditPane > DataTable {
        height: 1fr;
        overflow-x: hidden;
        background: $surface;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_filter", "This run/all", tooltip="Show this run's records or all"),
    ]

    @dataclass
    class EventArrived(Message):
        """A record was appended to the audit file after the pane opened."""

        record: dict[str, Any]

    run_id: reactive[str | None] = reactive(None)
    only_this_run: reactive[bool] = reactive(True)

    def __init__(
        self,
        audit_path: Path,
        run_id: str | None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.audit_path = audit_path
        self.set_reactive(AuditPane.run_id, run_id)
        self.chain = ChainTracker()
        self._records: deque[tuple[int, dict[str, Any]]] = deque(maxlen=MAX_ROWS)
        self._incoming: list[dict[str, Any]] = []
        self._flush_scheduled = False
        self._next_key = 0
        self._summary_width = 40
        self._fixed_shown = tuple(range(len(FIXED_WIDTHS)))  # indexes of the columns shown
        self.follow_error: str | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(cursor_type="row", zebra_stripes=True)
        self._add_columns(table)
        yield table

    def _add_columns(self, table: DataTable[str | Text]) -> None:
        for i in self._fixed_shown:
            table.add_column(COLUMN_LABELS[i], width=FIXED_WIDTHS[i], key=COLUMN_LABELS[i])
        table.add_column(COLUMN_LABELS[-1], width=self._summary_width, key=COLUMN_LABELS[-1])

    def on_resize(self) -> None:
        # The summary takes what the other columns leave, so the table never scrolls
        # sideways; on a narrow pane (60 columns) the actor, then the time, make room for it.
        shown = list(range(len(FIXED_WIDTHS)))
        for label in NARROW_DROPS:
            if self._room(shown) >= MIN_SUMMARY_WIDTH:
                break
            shown.remove(COLUMN_LABELS.index(label))
        width = max(MIN_SUMMARY_WIDTH, self._room(shown))
        if width != self._summary_width or tuple(shown) != self._fixed_shown:
            self._summary_width, self._fixed_shown = width, tuple(shown)
            self._rebuild(columns=True)

    def _room(self, shown: list[int]) -> int:
        padding = 2 * (len(shown) + 1)
        return self.content_size.width - sum(FIXED_WIDTHS[i] for i in shown) - padding - 2

    def on_mount(self) -> None:
        self._update_titles()
        self._verify()
        self._follow()

    @property
    def table(self) -> DataTable[str | Text]:
        return self.query_one(DataTable)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The records the pane holds (at most MAX_ROWS), oldest first, unfiltered."""
        return [record for _, record in self._records]

    @property
    def shown_records(self) -> list[dict[str, Any]]:
        """The records that have a row under the current filter, oldest first."""
        return [record for _, record in self._records if self._shows(record)]

    # --- following the file -------------------------------------------------------------

    @work(exclusive=True, group="audit-follow", exit_on_error=False)
    async def _follow(self) -> None:
        history, offset = await asyncio.to_thread(last_records, self.audit_path, MAX_ROWS)
        self.add_records(history, live=False)
        async for record in follow(self.audit_path, offset=offset):
            self._incoming.append(record)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.set_timer(FLUSH_INTERVAL_S, self._flush)

    @work(thread=True, exclusive=True, group="audit-verify", exit_on_error=False)
    def _verify(self) -> None:
        if not self.audit_path.exists():
            self.app.call_from_thread(self._verified, None)
            return
        report = verify_chain(self.audit_path)
        self.app.call_from_thread(self._verified, report)

    def _verified(self, report: VerifyReport | None) -> None:
        if report is None:
            self.chain.settle_empty()
        else:
            self.chain.settle(report)
        self._update_titles()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        why = str(error) if error is not None else "unknown error"
        if event.worker.group == "audit-verify":
            self.chain.unavailable(why)
        elif event.worker.group == "audit-follow":
            self.follow_error = why
        self._update_titles()

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._incoming = self._incoming, []
        if batch:
            self.add_records(batch)

    def add_records(self, records: Iterable[dict[str, Any]], *, live: bool = True) -> None:
        """Take records in file order: rows, chain state, and (when `live`, i.e. appended
        since the pane opened) an EventArrived for each."""
        table = self.table
        following = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        added = False
        for record in records:
            if len(self._records) == self._records.maxlen:
                old_key, _ = self._records[0]
                if str(old_key) in table.rows:
                    table.remove_row(str(old_key))
            key = self._next_key
            self._next_key += 1
            self._records.append((key, record))
            self.chain.observe(record)
            if self._shows(record):
                table.add_row(*self._cells(record), key=str(key))
                added = True
            if live:
                self.post_message(self.EventArrived(record))
        if added and following:
            table.move_cursor(row=table.row_count - 1, animate=False)
        self._update_titles()

    def _cells(self, record: dict[str, Any]) -> tuple[Text, ...]:
        row = cells(record)
        picked = [(row[i], FIXED_WIDTHS[i]) for i in self._fixed_shown]
        picked.append((row[-1], self._summary_width))
        return tuple(Text(fit(cell, width)) for cell, width in picked)

    # --- filter and details -------------------------------------------------------------

    def _shows(self, record: dict[str, Any]) -> bool:
        return not (self.only_this_run and self.run_id) or record.get("run") == self.run_id

    def action_toggle_filter(self) -> None:
        self.only_this_run = not self.only_this_run

    def watch_only_this_run(self) -> None:
        self._rebuild()

    def watch_run_id(self) -> None:
        self._rebuild()

    def _rebuild(self, columns: bool = False) -> None:
        if not self.is_mounted:
            return
        table = self.table
        table.clear(columns=columns)
        if columns:
            self._add_columns(table)
        for key, record in self._records:
            if self._shows(record):
                table.add_row(*self._cells(record), key=str(key))
        if table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)
        self._update_titles()

    @on(DataTable.RowSelected)
    def _open_record(self, event: DataTable.RowSelected) -> None:
        event.stop()
        wanted = int(str(event.row_key.value))
        for key, record in self._records:
            if key == wanted:
                self.app.push_screen(AuditEventScreen(record))
                return

    def _update_titles(self) -> None:
        self.border_title = Text(terminal_safe(f"Audit · {self.chain.describe()}"))
        self.set_class(self.chain.broken, "-broken")
        if self.run_id is None:
            scope = "all runs"
        elif self.only_this_run:
            scope = f"run {self.run_id} · f: all runs"
        else:
            scope = "all runs · f: this run"
        rows = f"{len(self.shown_records)} rows"
        if self.follow_error is not None:
            rows = f"not following: {self.follow_error}"
        self.border_subtitle = Text(terminal_safe(f"{rows} · {scope}"))


class AuditEventScreen(Dialog[None]):
    """One audit record in full, as pretty JSON; any of escape, enter or q closes it."""

    DEFAULT_CSS = """
    AuditEventScreen {
        align: center middle;
    }
    AuditEventScreen > VerticalScroll {
        width: 90%;
        max-width: 100;
        height: 80%;
        border: round $border;
        border-title-color: $foreground;
        background: $panel;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("enter", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, record: Mapping[str, Any]) -> None:
        super().__init__()
        self.record = dict(record)

    def compose(self) -> ComposeResult:
        scroll = VerticalScroll()
        scroll.border_title = Text(terminal_safe(f"audit record seq {self.record.get('seq', '?')}"))
        scroll.border_subtitle = "escape: close"
        with scroll:
            yield Static(Text(pretty_record(self.record)), id="audit-record-json")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)




def pretty_record(record: Mapping[str, Any]) -> str:
    """The record as indented JSON, its unsafe characters written as JSON escapes."""
    pretty = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False)
    # json.dumps writes a newline only between members, never inside a string.
    return "\n".join(terminal_safe_json(line) for line in pretty.split("\n"))
