"""terminal_safe: what someone else wrote reaches a terminal as visible text only."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from console.textsafe import terminal_safe, terminal_safe_json
from console.ui.ansi import sanitize

# Everything a terminal may act on: C0, DEL, C1, bidi controls, line separators, surrogates.
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
UNSAFE_BUT_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Text heavy in what matters here: escapes, controls, bidi, and ordinary characters around.
HOSTILE = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("ab;[]0123456789m?PX^_\\\x07\r\n\t\x1b\x9b\x9c\x9d\x00\x7f")),
        st.sampled_from(list(BIDI + "\u2028\u2029\ud800\udfff")),
        st.characters(),
    )
)


def test_an_osc_title_and_clear_screen_show_as_what_they_are() -> None:
    assert terminal_safe("evil\x1b]2;pwned\x07\x1b[2J") == "evil\\x1b]2;pwned\\x07\\x1b[2J"


def test_eight_bit_controls_and_del_are_escaped() -> None:
    assert terminal_safe("a\x9b2Jb\x9d0;t\x9cc\x7f") == "a\\x9b2Jb\\x9d0;t\\x9cc\\x7f"


def test_a_one_line_field_cannot_forge_lines_or_overwrite_itself() -> None:
    assert terminal_safe("ok\nfake: approved") == "ok\\nfake: approved"
    assert terminal_safe("denied\rapproved") == "denied\\rapproved"
    assert terminal_safe("a\tb\bc") == "a\\tb\\x08c"
    assert terminal_safe("a\u2028b\u2029c") == "a\\u2028b\\u2029c"


def test_multiline_keeps_newlines_and_tabs_only() -> None:
    text = "line one\r\n\tline two\x1b[31m\rthree"
    assert terminal_safe(text, multiline=True) == "line one\n\tline two\\x1b[31m\\rthree"


def test_bidi_overrides_and_isolates_are_escaped() -> None:
    shown = terminal_safe("txt.\u202egnp.exe\u2066x\u2069")
    assert shown == "txt.\\u202egnp.exe\\u2066x\\u2069"


def test_lone_surrogates_are_escaped_so_the_text_can_be_encoded() -> None:
    raw = b"run-\xff".decode("utf-8", "surrogateescape")
    shown = terminal_safe(raw)
    assert shown == "run-\\udcff"
    shown.encode("utf-8")


def test_printable_text_and_rich_markup_pass_through() -> None:
    # terminal_safe is about the terminal; markup is escaped (or avoided) where markup is used.
    text = "payments-deploy — [red]x[/red] ✓ 日本 👩‍👩‍👧 \\x1b"
    assert terminal_safe(text) == text


@given(HOSTILE)
def test_no_output_holds_anything_a_terminal_acts_on(text: str) -> None:
    shown = terminal_safe(text)
    assert UNSAFE.search(shown) is None
    assert terminal_safe(shown) == shown, "making safe twice changes nothing"
    shown.encode("utf-8")


@given(HOSTILE)
def test_multiline_output_holds_nothing_but_newlines_and_tabs(text: str) -> None:
    shown = terminal_safe(text, multiline=True)
    assert UNSAFE_BUT_LINES.search(shown) is None
    assert shown.count("\n") == text.count("\n")


@given(st.text(st.characters(codec="utf-8")).filter(str.isprintable))
def test_printable_text_is_unchanged(text: str) -> None:
    assert terminal_safe(text) == text
    assert terminal_safe(text, multiline=True) == text


@given(st.dictionaries(st.text(), st.one_of(st.text(), st.integers(), st.none())))
def test_the_json_form_keeps_the_value_and_shows_no_control(value: dict[str, object]) -> None:
    line = json.dumps(value, ensure_ascii=False)
    shown = terminal_safe_json(line)
    assert json.loads(shown) == value
    assert UNSAFE.search(shown) is None


def test_log_lines_share_the_tokens_and_show_bidi_as_escapes() -> None:
    assert sanitize("ok \x1b[31mred\x1b[0m\x1b]2;t\x07 \u202eevil") == (
        "ok \x1b[31mred\x1b[0m \\u202eevil"
    )


@given(HOSTILE)
def test_log_lines_keep_only_colours(text: str) -> None:
    kept = re.sub(r"\x1b\[[0-9;:]*m", "", sanitize(text))
    assert UNSAFE_BUT_LINES.search(kept) is None


def test_the_module_imports_neither_rich_nor_textual() -> None:
    code = (
        "import sys, console.textsafe; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'textual')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
