"""Make a step's output safe to draw: keep its colours, drop everything that drives a terminal.

A log line may contain anything a program wrote: cursor movement, clear-screen, window
titles, hyperlinks, the alternate screen, device control strings. Drawn as-is (or handed to
a parser that honours them) they would move or corrupt the console's own screen. Only SGR
sequences (`ESC [ … m`, colour and text style) survive; a carriage return that overwrites
its line (progress bars) keeps what the terminal would finally show, the last segment. Bidi
controls, line separators and lone surrogates are shown as escapes (`\\u202e`), as
`console.textsafe.terminal_safe` shows them.
"""

from __future__ import annotations

import re

from rich.text import Text

from console.textsafe import (
    CONTROL,
    CONTROL_STRING,
    CSI,
    INVISIBLE,
    OTHER_ESCAPE,
    visible_escape,
)

# The token definitions are terminal_safe's: the two never disagree about what an escape is.
_TOKENS = re.compile(
    f"({CSI})|{CONTROL_STRING}|{OTHER_ESCAPE}|{CONTROL}|({INVISIBLE})", re.DOTALL
)
_ANY_CONTROL = re.compile(f"{CONTROL}|{INVISIBLE}")
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def sanitize(text: str) -> str:
    """`text` with only SGR escapes left; lines keep their `\\n`, tabs stay."""
    return "\n".join(_sanitize_line(line) for line in text.split("\n"))


def _sanitize_line(line: str) -> str:
    if "\r" not in line:
        return _strip_controls(line)
    segments = line.rstrip("\r").split("\r")
    # The terminal would finally show the last segment written over the line; earlier
    # segments still set colours that later text inherits, so their SGR codes stay.
    kept_styles = "".join(_SGR.findall("".join(_strip_controls(s) for s in segments[:-1])))
    return kept_styles + _strip_controls(segments[-1])


def _strip_controls(line: str) -> str:
    if _ANY_CONTROL.search(line) is None:
        return line
    return _TOKENS.sub(_keep_sgr, line)


def _keep_sgr(match: re.Match[str]) -> str:
    csi = match.group(1)
    if csi is not None and _SGR.fullmatch(csi):
        return csi
    invisible = match.group(2)
    if invisible is not None:
        return visible_escape(invisible)  # shown, not dropped: it may be why a line reads oddly
    return ""


def to_rich_text(line: str) -> Text:
    """One log line as rich Text, colours kept, terminal control neutralised."""
    return Text.from_ansi(sanitize(line), end="")
