"""`console serve`: the team-mode host service (console/host/serve.py, docs/team-mode.md).

Started as root it prepares its directories and socket, then runs as the service user;
under systemd (`--install-unit` writes the units) it gets its socket from
console-serve.socket and starts as the service user.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from console.host.serve_config import load_serve_config
from console.host.serve_journal import send
from console.host.serve_paths import config_path
from console.host.serve_setup import (
    ServeSetupError,
    ServiceUser,
    become,
    bind_as_service,
    check_workflow_dirs,
    inherited_socket,
    prepare_as_root,
    prepare_as_service,
    read_credentials,
)
from console.host.serve_units import render_units, write_units
from console.textsafe import terminal_safe


def main(args: argparse.Namespace) -> int:
    path = Path(args.config).absolute() if args.config else config_path()
    config = load_serve_config(path)
    if args.install_unit:
        units = render_units(config, path)
        if args.unit_dir is None:
            for name, text in units.items():
                print(f"# {name}\n{text}")
            return 0
        for written in write_units(units, Path(args.unit_dir)):
            print(f"wrote {terminal_safe(str(written))}")
        print("then: systemctl daemon-reload && systemctl enable --now console-serve.socket")
        return 0
    user = ServiceUser.of(config)
    listener = inherited_socket()
    if os.geteuid() == 0:
        listener = prepare_as_root(config, user, listener)
        become(user)
    elif os.geteuid() == user.uid:
        prepare_as_service(config, user)
        if listener is None:
            listener = bind_as_service(config.socket)
    else:
        raise ServeSetupError(
            f"console serve runs as root (it then becomes {user.name}) or as {user.name}, "
            f"not as uid {os.geteuid()}"
        )
    read_credentials(config.credentials, user.uid)  # a bad file stops the start, not a run
    check_workflow_dirs(config, user.uid)

    from console.host.serve import Service
    from console.host.serve_heads import HeadKeeper

    def journal(message: str, alert: bool) -> None:
        send(config.syslog_socket, message, alert=alert)

    keeper = HeadKeeper(config.audit, config.state_dir, journal)
    return asyncio.run(Service(config, user, listener, keeper).run())
