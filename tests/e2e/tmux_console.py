"""The real `console` command in a private tmux server, read as a person reads the screen.

`console_in_tmux` starts it in a terminal of the given size; `Screen.wait_for` waits until a
text is on the screen (never a fixed sleep) and returns the screen.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Screen:
    def __init__(self, server: str, exit_file: Path) -> None:
        self.server = server
        self.exit_file = exit_file

    def text(self) -> str:
        out = subprocess.run(["tmux", "-L", self.server, "capture-pane", "-p", "-t", self.server],
                             capture_output=True, text=True, check=False)
        return out.stdout

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.server, "send-keys", "-t", self.server, *keys],
                       check=True)

    def type(self, text: str) -> None:
        self.send("-l", text)

    def wait_for(self, *texts: str, seconds: float = 30.0, gone: bool = False) -> str:
        """The screen once it shows every one of `texts` (with `gone`: none of them)."""
        deadline = time.monotonic() + seconds
        screen = ""
        while time.monotonic() < deadline:
            screen = self.text()
            present = [text in screen for text in texts]
            if (not any(present)) if gone else all(present):
                return screen
            time.sleep(0.1)
        state = "still there" if gone else "never all appeared"
        raise AssertionError(f"{texts!r} {state}; the screen was:\n{screen}")

    def exit_code(self, seconds: float = 20.0) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.exit_file.exists() and self.exit_file.read_text().strip():
                return self.exit_file.read_text().strip()
            time.sleep(0.1)
        raise AssertionError(f"the console never exited; the screen was:\n{self.text()}")


@contextmanager
def console_in_tmux(tmp_path: Path, *args: str, size: tuple[int, int] = (80, 24),
                    term: str = "xterm-256color", cwd: Path = REPO,
                    no_color: bool = False) -> Iterator[Screen]:
    """`console ARGS` in a terminal of `size`, with its state under `tmp_path`."""
    server = f"console-e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CONSOLE_RUNTIME_DIR": str(tmp_path / "runtime"),
        "TERM": term,
    }
    if no_color:
        env["NO_COLOR"] = "1"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    done = tmp_path / "exit-code"
    command = (
        # Without COLUMNS and LINES (under pytest the pane has them): the size is the pane's.
        f"cd {shlex.quote(str(cwd))} && env -u COLUMNS -u LINES {exports} "
        f"{shlex.quote(sys.executable)} -m console "
        f"{' '.join(shlex.quote(a) for a in args)}; echo $? > {shlex.quote(str(done))}; "
        "sleep 30"
    )
    width, height = size
    subprocess.run(["tmux", "-L", server, "new-session", "-d", "-s", server,
                    "-x", str(width), "-y", str(height), command], check=True)
    try:
        yield Screen(server, done)
    finally:
        subprocess.run(["tmux", "-L", server, "kill-server"], check=False)


# --- what a plain capture does not show: attributes, the bell; workflows of one's own ------

_SGR = re.compile(r"\x1b\[([0-9;:]*)m")
_EXTENDED = {"38", "48", "58"}  # colour codes followed by 5;N or 2;R;G;B


def reverse_video(screen: Screen) -> list[str]:
    """The text each row draws in reverse video (how the DAG shows its selection), stripped;
    rows with none are left out."""
    out = subprocess.run(["tmux", "-L", screen.server, "capture-pane", "-p", "-e", "-t",
                          screen.server], capture_output=True, text=True, check=False)
    rows: list[str] = []
    for line in out.stdout.splitlines():
        reverse, shown, at = False, [], 0
        for match in _SGR.finditer(line):
            if reverse:
                shown.append(line[at:match.start()])
            params = match.group(1).replace(":", ";").split(";")
            i = 0
            while i < len(params):
                code = params[i]
                if code in _EXTENDED:
                    i += 3 if params[i + 1:i + 2] == ["5"] else 5
                    continue
                if code in ("", "0", "27"):
                    reverse = False
                elif code == "7":
                    reverse = True
                i += 1
            at = match.end()
        if reverse:
            shown.append(line[at:])
        text = "".join(shown).strip()
        if text:
            rows.append(text)
    return rows


def bell_rung(screen: Screen) -> bool:
    """tmux saw the console ring the terminal bell (the window's bell flag; the session is
    detached, so nothing clears it)."""
    out = subprocess.run(["tmux", "-L", screen.server, "display-message", "-p", "-t",
                          screen.server, "#{window_bell_flag}"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() == "1"


def stop_runs(tmp_path: Path) -> None:
    """Stop the run hosts a test left behind (one that failed at a gate would wait there for
    the gate's timeout): each gets SIGTERM, as a stop signal, and winds its run down."""
    marker = f"XDG_STATE_HOME={tmp_path / 'state'}\0".encode()
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and b"_host" in (entry / "cmdline").read_bytes()
                    and marker in (entry / "environ").read_bytes()):
                os.kill(int(entry.name), signal.SIGTERM)
        except OSError:
            continue
