"""A live run's control socket: the server the engine starts, the client the CLI uses.

The pieces live in `control_server`, `control_client` and `runtime_dir`; import them from
here. The protocol and the security model are described in docs/control.md.
"""

from __future__ import annotations

from console.run.control_client import request
from console.run.control_server import (
    MAX_REQUEST_BYTES,
    OPS,
    ControlServer,
    PeerCredentials,
    peer_credentials,
    run_state_to_json,
)
from console.run.runtime_dir import SHARED_RUNTIME_DIR, clear_socket_path, ensure_runtime_dir

__all__ = [
    "MAX_REQUEST_BYTES",
    "OPS",
    "SHARED_RUNTIME_DIR",
    "ControlServer",
    "PeerCredentials",
    "clear_socket_path",
    "ensure_runtime_dir",
    "peer_credentials",
    "request",
    "run_state_to_json",
]
