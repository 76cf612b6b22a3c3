"""What runs on the host: a tiny bootstrap on the command line, everything else on stdin.

The remote command line (all that `ps` on the target shows) is only BOOTSTRAP. It reads one
length-prefixed message from stdin and runs it: the wrapper, which holds the payload (`cd`,
the step's environment as `export` lines, then the step) and hands it to the step's shell
in that shell's environment (which it unsets before the step runs, so no child inherits
it). The step's shell runs in a session of its own (`setsid`, so its process group can be
signalled as one) with stdin from /dev/null. Secrets travel only on stdin and in the
environment, as the step's own environment does: never on a command line, never in a file.

The step's shell first writes `console-pid PID` on stderr (PID = its process group), which
the executor takes off the stream. The rest of stdin is a control channel: a line with a
signal name (TERM, KILL) signals the step's group; end of file (the console closed the
channel, or its connection dropped, or it died) sends TERM, waits the grace, sends KILL. So
a dropped connection never leaves the step running on the target.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from console.exec.base import StepCommand

PID_MARKER = b"console-pid "
# The exit code when the wrapper itself could not start the step (a broken stream).
WRAPPER_FAILED = 111

BOOTSTRAP = (
    "exec sh -c 'IFS= read -r n && w=$(head -c \"$n\"; echo x) && eval \"${w%x}\""
    f" || exit {WRAPPER_FAILED}'"
)

# How the wrapper hands the payload to the step's shell: in its environment (the cheapest:
# no process), or, past what one environment string may hold (Linux: 128 KiB), on a pipe.
_IN_ENVIRONMENT = """CONSOLE_PAYLOAD_=$payload setsid sh -c 'echo "console-pid $$" >&2; \
s=$CONSOLE_PAYLOAD_; unset CONSOLE_PAYLOAD_; exec </dev/null; eval "$s"' &"""
_ON_A_PIPE = """printf '%s' "$payload" | setsid sh -c 'echo "console-pid $$" >&2; \
s=$(cat; echo x); exec </dev/null; eval "${s%x}"' &"""
ENVIRONMENT_LIMIT = 96 * 1024

_WRAPPER = """\
exec 3<&0
payload={payload}
{start}
p=$!
payload=
(while IFS= read -r sig; do kill -s "$sig" -- "-$p" 2>/dev/null; done
 kill -s TERM -- "-$p" 2>/dev/null; sleep {grace}; kill -s KILL -- "-$p" 2>/dev/null
) <&3 >/dev/null 2>&1 &
w=$!
exec 3<&-
wait "$p"; rc=$?
kill "$w" 2>/dev/null
kill -s TERM -- "-$p" 2>/dev/null
exit "$rc"
"""


def _framed(text: str) -> bytes:
    data = text.encode("utf-8")
    return f"{len(data)}\n".encode() + data


def message(cmd: StepCommand, env: Mapping[str, str], grace_s: float) -> bytes:
    """What the bootstrap reads: the wrapper, the step's payload quoted inside it."""
    body = payload(cmd, env)
    start = _IN_ENVIRONMENT if len(body.encode()) < ENVIRONMENT_LIMIT else _ON_A_PIPE
    return _framed(_WRAPPER.format(payload=shlex.quote(body), start=start,
                                   grace=f"{max(grace_s, 0.0):g}"))


def payload(cmd: StepCommand, env: Mapping[str, str]) -> str:
    """The step as its shell on the host runs it: where, with what, what."""
    lines = []
    if cmd.remote_cwd:
        lines.append(f"cd {shlex.quote(cmd.remote_cwd)} || exit 1")
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    if cmd.argv is not None:
        lines.append("exec " + " ".join(shlex.quote(arg) for arg in cmd.argv))
    else:
        assert cmd.script is not None
        lines.append(cmd.script)
    return "\n".join(lines) + "\n"
