"""Log text is made safe to draw: colours stay, terminal control goes."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from rich.style import Style

from console.ui.ansi import sanitize, to_rich_text

SGR = re.compile(r"\x1b\[[0-9;:]*m")
FORBIDDEN_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def test_colour_codes_survive_and_become_styles() -> None:
    text = to_rich_text("ok \x1b[31mred\x1b[0m done")
    assert text.plain == "ok red done"
    assert [(span.start, span.end) for span in text.spans] == [(3, 6)]
    style = text.spans[0].style
    assert isinstance(style, Style) and style.color is not None
    assert style.color.number == 1  # ANSI red


def test_cursor_movement_and_clear_screen_are_dropped() -> None:
    assert sanitize("a\x1b[2J\x1b[H\x1b[10;5Hb\x1b[Kc\x1b[3A") == "abc"


def test_alternate_screen_and_private_modes_are_dropped() -> None:
    assert sanitize("\x1b[?1049hscreen\x1b[?25l") == "screen"


def test_osc_title_and_hyperlinks_are_dropped_keeping_the_link_text() -> None:
    assert sanitize("\x1b]0;pwned title\x07line") == "line"
    assert sanitize("\x1b]8;;https://example.com\x1b\\click\x1b]8;;\x1b\\") == "click"


def test_device_control_strings_and_single_escapes_are_dropped() -> None:
    assert sanitize("\x1bPq#0;2;0;0;0\x1b\\after") == "after"
    assert sanitize("\x1b7saved\x1b8\x1bc\x1b(B") == "saved"


def test_carriage_return_keeps_what_the_terminal_finally_shows() -> None:
    assert sanitize("10%\r50%\r100%") == "100%"
    assert sanitize("windows line\r\nnext\r\n") == "windows line\nnext\n"
    # colours set by overwritten segments still apply to what is left
    assert sanitize("\x1b[32m10%\r20%") == "\x1b[32m20%"


def test_other_controls_are_dropped_but_tabs_stay() -> None:
    assert sanitize("a\x00b\x07c\bd\te\x7f") == "abcd\te"


def test_unterminated_sequences_do_not_leak() -> None:
    assert "\x1b" not in sanitize("text\x1b[12")
    assert sanitize("before\x1b]0;never ends") == "before"


def test_eight_bit_controls_are_dropped() -> None:
    assert sanitize("a\x9b2Jb\x9d0;t\x07c") == "abc"


@given(st.text(alphabet=st.sampled_from(list("ab;[]0123456789m?PX^_\\\x07\r\n\t\x1b\x9b\x9c\x00"))))
def test_output_never_contains_escapes_other_than_sgr(text: str) -> None:
    out = sanitize(text)
    without_sgr = SGR.sub("", out)
    assert "\x1b" not in without_sgr
    assert FORBIDDEN_CONTROL.search(without_sgr) is None
    assert out.count("\n") == text.count("\n")
    assert sanitize(out) == out, "sanitising twice changes nothing"


@given(st.text())
def test_any_text_becomes_rich_text_without_control(text: str) -> None:
    plain = to_rich_text(text).plain
    assert FORBIDDEN_CONTROL.search(plain) is None
    assert "\x1b" not in plain
