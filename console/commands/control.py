"""`console approve | deny | override | cancel`: act on a live run through its control socket.

Exit 0 when the run accepted the action, 3 when it refused (policy, separation of duties,
a step not at a gate: the message says which), 1 when the run could not be reached. The
run's message may quote what someone else sent (a step id, a reason): it is printed through
`terminal_safe`.
"""

from __future__ import annotations

import argparse
from typing import Any

from console.errors import ControlError, PolicyDenied
from console.run.control_client import request
from console.textsafe import terminal_safe


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    """The socket request for a parsed `approve`/`deny`/`override`/`cancel` command line."""
    command: str = args.command
    if command == "cancel":
        return {"op": "cancel"} if args.step is None else {"op": "cancel", "step": args.step}
    if command not in ("approve", "deny", "override"):
        raise ControlError(f"{command!r} is not a control command")
    payload: dict[str, Any] = {"op": command, "step": args.step}
    if args.reason is not None:
        payload["reason"] = args.reason
    return payload


def main(args: argparse.Namespace) -> int:
    from console.host.serve_paths import served_socket
    from console.paths import runtime_dir

    served = served_socket(args.run_id, runtime_dir())
    answer = request(args.run_id, build_request(args), socket_path=served)
    message = terminal_safe(str(answer.get("message", "")))
    if answer["ok"]:
        print(message)
        return 0
    if "error" in answer:
        raise ControlError(f"run {args.run_id} could not act on the request: {message}")
    raise PolicyDenied(message)
