"""What tmux holds for each cell beyond its character: the colours and styles a screen was
drawn with, and lines the terminal wrapped, joined again. For tests that read how the
screen looks (16 colours, NO_COLOR) or copy a long line from it."""

from __future__ import annotations

import re
import subprocess

from tests.e2e.tmux_console import Screen


def styled_text(screen: Screen) -> str:
    """The screen with the SGR escapes (colours, bold, reverse) tmux holds for each cell."""
    out = subprocess.run(["tmux", "-L", screen.server, "capture-pane", "-e", "-p", "-t",
                          screen.server], capture_output=True, text=True, check=False)
    return out.stdout


def joined_text(screen: Screen) -> str:
    """The screen with the lines the terminal wrapped joined again (`capture-pane -J`)."""
    out = subprocess.run(["tmux", "-L", screen.server, "capture-pane", "-J", "-p", "-t",
                          screen.server], capture_output=True, text=True, check=False)
    return out.stdout


def colour_codes(styled: str) -> set[str]:
    """Every SGR parameter in `styled` that sets a colour (foreground or background);
    the resets to the terminal's own colours (39, 49, 0) are not colours."""
    found: set[str] = set()
    for params in re.findall(r"\x1b\[([0-9;:]*)m", styled):
        parts = params.replace(":", ";").split(";")
        i = 0
        while i < len(parts):
            code = parts[i]
            if code in ("38", "48", "58"):
                width = 5 if parts[i + 1:i + 2] == ["2"] else 3
                found.add(";".join(parts[i:i + width]))
                i += width
                continue
            if code.isdigit() and (30 <= int(code) <= 37 or 40 <= int(code) <= 47
                                   or 90 <= int(code) <= 97 or 100 <= int(code) <= 107):
                found.add(code)
            i += 1
    return found


def foreground_of(styled_line: str, char: str) -> list[str | None]:
    """The foreground colour (its SGR parameters, None for the terminal's own) of each
    `char` on a line of `styled_text`, left to right."""
    colours: list[str | None] = []
    fg: str | None = None
    for escape, text in re.findall(r"(\x1b\[[0-9;:]*m)|([^\x1b]+)", styled_line):
        if escape:
            parts = escape[2:-1].split(";") if escape[2:-1] else ["0"]
            i = 0
            while i < len(parts):
                code = parts[i]
                if code in ("0", "39"):
                    fg = None
                elif code == "38":
                    width = 5 if parts[i + 1:i + 2] == ["2"] else 3
                    fg = ";".join(parts[i:i + width])
                    i += width
                    continue
                elif code in ("48", "58"):
                    i += 5 if parts[i + 1:i + 2] == ["2"] else 3
                    continue
                elif code.isdigit() and (30 <= int(code) <= 37 or 90 <= int(code) <= 97):
                    fg = code
                i += 1
        colours.extend(fg for ch in text if ch == char)
    return colours

