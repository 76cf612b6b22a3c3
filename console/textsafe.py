"""Text that came from someone else, made safe to show on a terminal: visible characters only.

A workflow's name, a step id, a reason typed by an approver, a user name or run id read from
the audit file, a message echoed back by a run's control socket: any of them may hold
characters that drive the terminal instead of showing — ESC sequences that clear the screen,
move the cursor or retitle the window (CSI, OSC, DCS…, and their 8-bit C1 forms), BEL,
backspace, a carriage return that overwrites what was written before it, a newline that
forges a line of output, or a bidi override that makes the text read in another order.

`terminal_safe` writes each such character as a visible escape, the way Python's `repr`
does: ESC becomes the four characters `\\x1b`, BEL `\\x07`, U+202E `\\u202e`, a newline
`\\n`. An escape sequence therefore shows as what it is (`\\x1b]2;title\\x07`) and can no
longer act, and the field stays on one line. Every other character, printable or not
(letters, emoji, box drawing, a zero-width joiner), is left as it is; so is a backslash, so
`\\x1b` typed as four characters reads the same as an escaped ESC.

Unsafe characters: C0 controls (U+0000–U+001F), DEL and C1 controls (U+007F–U+009F), the
bidi controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), the line and
paragraph separators (U+2028, U+2029) and lone surrogates (U+D800–U+DFFF, which cannot even
be encoded for the terminal). `multiline=True` keeps `\\n` (and `\\r\\n`, as `\\n`) and tabs,
for text that is several lines by nature: an error listing problems, a script.

No textual or rich here, so that every layer may use it. The token definitions are shared
with `console.ui.ansi`, which keeps a step's log colours and drops the rest.
"""

from __future__ import annotations

import re

# --- tokens, shared with console.ui.ansi ----------------------------------------------------

# CSI: ESC [ or the 8-bit form; parameter bytes, intermediate bytes, one final byte.
CSI = r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
# OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (ESC \ or 0x9c); unterminated ones
# run to the end of the text (match with re.DOTALL).
CONTROL_STRING = r"(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)"
# Any other escape: ESC, intermediate bytes, a final byte (ESC 7, ESC c, ESC ( B, …).
OTHER_ESCAPE = r"\x1b[\x20-\x2f]*[\x30-\x7e]?"
# One control character: C0 but tab and newline, DEL, C1.
CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"
# Not controls to a terminal, unsafe all the same: bidi controls reorder what is read, line
# separators break a line where a terminal or a pager may not, and lone surrogates cannot be
# encoded for output at all.
INVISIBLE = r"[\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"

_ONE_LINE = re.compile(f"[\\t\\n]|{CONTROL}|{INVISIBLE}")
_SEVERAL_LINES = re.compile(f"\\r\\n|{CONTROL}|{INVISIBLE}")
_JSON_UNSAFE = re.compile(f"\\n|{CONTROL}|{INVISIBLE}")
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def visible_escape(char: str) -> str:
    """One character as its escape: `\\n`, `\\x1b`, `\\u202e`."""
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape(match: re.Match[str]) -> str:
    found = match.group()
    return "\n" if found == "\r\n" else visible_escape(found)


def terminal_safe(text: str, *, multiline: bool = False) -> str:
    """`text` with every character that could drive a terminal written as a visible escape.

    One line unless `multiline` (then `\\n` and tabs stay, `\\r\\n` becomes `\\n`). Printable
    text comes back unchanged, and so does text already made safe.
    """
    return (_SEVERAL_LINES if multiline else _ONE_LINE).sub(_escape, text)


def terminal_safe_json(line: str) -> str:
    """A JSON text with the same unsafe characters written as JSON's `\\u001b`-style escapes:
    the same value to a JSON parser, visible text to a terminal (`audit tail --json`)."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)
