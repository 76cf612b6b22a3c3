"""Each theme on a small sample screen at 80x24 (status words, a log tail, the audit pane)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.pilot import Pilot
from textual.widgets import Footer, Static

from console.ui.themes import register_themes
from console.ui.widgets.audit_pane import AuditPane
from console.ui.widgets.log_tail import LogTail
from tests.ui.test_audit_pane import RUN_A, run_events, write_events

LOG = (
    b"\x1b]0;retitled by the step\x07$ make build VERSION=1.4.2\n"
    b"\x1b[1mcompiling\x1b[0m payments-api (release)\n"
    b"\x1b[2J\x1b[Hwarning: \x1b[33mdeprecated flag --fast\x1b[0m\n"
    b"downloading 10%\rdownloading 55%\rdownloading 100%\n"
    b"\x1b[32m\xe2\x9c\x93 tests passed\x1b[0m (412 in 8.1s)\n"
    b"\x1b[31merror:\x1b[0m lint found 2 problems\n"
    b"built dist/payments-1.4.2.tar.gz\n"
)

STATUSES = (
    "[$success]✓ build succeeded 12.0s[/]   [$error]✗ lint failed (exit 2)[/]\n"
    "[$warning]◆ migrate awaiting approval 1/2[/]   [$primary]▶ test running 4.2s[/]\n"
    "[$text-muted]↷ switch skipped   ○ notify pending[/]"
)


@pytest.fixture(autouse=True)
def utc_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class SampleScreenApp(App[None]):
    CSS = """
    #statuses { height: auto; padding: 0 1; background: $panel; }
    #body { height: 1fr; }
    #detail { width: 30; padding: 0 1; color: $foreground; background: $boost; }
    AuditPane { height: 9; }
    """

    def __init__(self, theme: str, log: Path, audit: Path) -> None:
        super().__init__()
        register_themes(self)
        self.theme = theme
        self.log_path = log
        self.audit_path = audit

    def compose(self) -> ComposeResult:
        yield Static(STATUSES, id="statuses")
        with Horizontal(id="body"):
            yield Static(
                "[b]build[/b]\nmake build VERSION=1.4.2\n"
                "env: DB_URL=[$text-muted]••••••[/]\n[$accent]attempt 1/3[/]",
                id="detail",
            )
            tail = LogTail()
            tail.can_focus = False  # the audit pane's keys in the footer, as before the pager
            yield tail
        yield AuditPane(self.audit_path, RUN_A)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(LogTail).show(self.log_path)


def sample_app(tmp_path: Path, theme: str) -> SampleScreenApp:
    log = tmp_path / "build.1.log"
    log.write_bytes(LOG)
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A))
    return SampleScreenApp(theme, log, audit)


def audit_settled(rows: int) -> Callable[[Pilot[Any]], Any]:
    async def wait(pilot: Pilot[Any]) -> None:
        pane = pilot.app.query_one(AuditPane)
        deadline = time.monotonic() + 10
        while pane.chain.state == "checking" or len(pane.shown_records) < rows:
            assert time.monotonic() < deadline, "the audit pane did not settle"
            await pilot.pause(0.05)
        await pilot.pause()

    return wait


@pytest.mark.parametrize("theme", ["dark", "light", "high-contrast", "monochrome"])
def test_theme_snapshot(snap_compare: Any, tmp_path: Path, theme: str) -> None:
    app = sample_app(tmp_path, theme)
    assert snap_compare(app, terminal_size=(80, 24), run_before=audit_settled(5))
