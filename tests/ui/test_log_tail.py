"""LogTail reads only the end of a log, keeps colours and neutralises terminal control."""

from __future__ import annotations

import os
from pathlib import Path

from rich.style import Style
from textual.app import App, ComposeResult

from console.ui.themes import register_themes
from console.ui.widgets.log_tail import TAIL_BYTES, LogTail


class TailApp(App[None]):
    def __init__(self, path: Path | None) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield LogTail(id="tail")

    def on_mount(self) -> None:
        self.query_one(LogTail).show(self.path)


def shown(tail: LogTail) -> list[str]:
    return tail.render().plain.split("\n")


async def test_a_50_mb_log_is_read_from_its_end_only(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    with log.open("wb") as handle:
        line = b"x" * 99 + b"\n"
        block = line * 10_000
        for _ in range(50):
            handle.write(block)
        for number in range(30):
            handle.write(f"final line {number}\n".encode())
    assert log.stat().st_size > 50_000_000
    app = TailApp(log)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tail = app.query_one(LogTail)
        assert 0 < tail.last_read_bytes <= TAIL_BYTES
        rows = shown(tail)
        assert len(rows) == 24
        assert rows[-1].strip() == "final line 29"
        assert rows[-24].strip() == "final line 6"


async def test_colours_kept_and_escapes_neutralised(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_bytes(
        b"\x1b[2J\x1b[Hstart\n\x1b]0;evil title\x07\x1b[32mgreen ok\x1b[0m\n"
        b"\x1b[?1049hprogress 10%\rprogress 100%\n"
    )
    app = TailApp(log)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tail = app.query_one(LogTail)
        plain = [line.plain for line in tail.lines]
        assert plain == ["start", "green ok", "progress 100%"]
        assert tail.lines[1].spans, "the colour of 'green ok' is kept"
        assert not any("\x1b" in line or "\r" in line for line in plain)


async def test_waits_for_a_missing_file_then_follows_it(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    app = TailApp(log)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tail = app.query_one(LogTail)
        assert "waiting for output" in tail.render().plain
        assert tail.has_class("-placeholder")
        log.write_text("one\n")
        tail.refresh_tail()
        assert [t.plain for t in tail.lines] == ["one"]
        with log.open("a") as handle:
            handle.write("two\nthree (no newline yet)")
        tail.refresh_tail()
        assert [t.plain for t in tail.lines] == ["one", "two", "three (no newline yet)"]
        read_before = tail.last_read_bytes
        tail.refresh_tail()
        assert tail.last_read_bytes == 0, "an unchanged file is not read again"
        assert read_before > 0


async def test_a_truncated_file_shows_its_new_content(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_text("".join(f"old {n}\n" for n in range(5000)))
    app = TailApp(log)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tail = app.query_one(LogTail)
        assert tail.lines[-1].plain == "old 4999"
        log.write_text("fresh start\n")
        tail.refresh_tail()
        assert [t.plain for t in tail.lines] == ["fresh start"]


async def test_binary_garbage_is_drawn_harmlessly(tmp_path: Path) -> None:
    log = tmp_path / "binary.log"
    log.write_bytes(os.urandom(200_000))
    app = TailApp(log)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tail = app.query_one(LogTail)
        assert tail.last_read_bytes == TAIL_BYTES
        text = tail.render().plain
        assert not any(ord(ch) < 0x20 and ch not in "\n\t" for ch in text)
        assert "\x1b" not in text


async def test_a_giant_line_without_newline_shows_its_last_part(tmp_path: Path) -> None:
    log = tmp_path / "giant.log"
    log.write_bytes(b"a" * 3_000_000 + b"THE END")
    app = TailApp(log)
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        tail = app.query_one(LogTail)
        assert tail.last_read_bytes == TAIL_BYTES
        rows = shown(tail)
        assert len(rows) == 10
        assert rows[-1].endswith("THE END")


async def test_no_path_and_empty_file_say_so(tmp_path: Path) -> None:
    app = TailApp(None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tail = app.query_one(LogTail)
        assert "no log" in tail.render().plain
        empty = tmp_path / "empty.log"
        empty.write_text("")
        tail.show(empty)
        assert "no output yet" in tail.render().plain


async def test_long_lines_wrap_and_the_bottom_rows_show(tmp_path: Path) -> None:
    log = tmp_path / "wrap.log"
    log.write_text("first\n" + "b" * 100 + "\nlast\n")
    app = TailApp(log)
    async with app.run_test(size=(42, 3)) as pilot:
        await pilot.pause()
        tail = app.query_one(LogTail)
        rows = shown(tail)
        # 40 columns inside the padding: the 100-character line takes 3 rows, 2 of them fit
        assert rows == ["b" * 40, "b" * 20, "last"]


async def test_a_theme_can_turn_the_logs_own_colours_off(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_bytes(b"\x1b[1;31mbold red\x1b[0m\n")
    app = TailApp(log)
    register_themes(app)
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        tail = app.query_one(LogTail)
        app.theme = "dark"
        styles = [span.style for span in tail.render().spans]
        assert any(isinstance(s, Style) and s.color is not None for s in styles)
        app.theme = "monochrome"
        styles = [span.style for span in tail.render().spans]
        assert styles and all(isinstance(s, Style) and s.color is None for s in styles)
        assert all(isinstance(s, Style) and s.bold for s in styles)
