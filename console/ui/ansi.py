"""Make a step's output safe to draw: keep its colours, drop everything that drives a terminal.

A log line may contain anything a program wrote: cursor movement, clear-screen, window
titles, hyperlinks, the alternate screen, device control strings. Drawn as-is (or handed to
a parser that honours them) they would move or corrupt the console's own screen. Only SGR
sequences (`ESC [ … m`, colour and text style) survive; a carriage return that overwrites
its line (progress bars) keeps what the terminal would finally show, the last segment.
"""

from __future__ import annotations

import re

from rich.text import Text

# CSI: ESC [ or the 8-bit form; parameter bytes, intermediate bytes, one final byte.
_CSI = r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
# OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (ESC \ or 0x9c); unterminated ones
# run to the end of the text.
_STRING = r"(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)"
# Any other escape: ESC, intermediate bytes, a final byte (ESC 7, ESC c, ESC ( B, …).
_OTHER_ESC = r"\x1b[\x20-\x2f]*[\x30-\x7e]?"
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"

_TOKENS = re.compile(f"({_CSI})|{_STRING}|{_OTHER_ESC}|{_CONTROL}", re.DOTALL)
_ANY_CONTROL = re.compile(_CONTROL)
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
    return ""


def to_rich_text(line: str) -> Text:
    """One log line as rich Text, colours kept, terminal control neutralised."""
    return Text.from_ansi(sanitize(line), end="")
