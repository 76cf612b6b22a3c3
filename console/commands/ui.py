"""`console` with no subcommand: open the UI, idle, on the workflow in this directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from console.errors import UsageError


def find_workflow(directory: Path) -> Path:
    """./workflow.toml, else the only *.toml in ./workflows/; otherwise say what to do."""
    direct = directory / "workflow.toml"
    if direct.is_file():
        return direct
    folder = directory / "workflows"
    candidates = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        names = ", ".join(str(p.relative_to(directory)) for p in candidates)
        raise UsageError(
            f"several workflows in {folder}/ ({names}) — open one with `console run FILE`"
        )
    raise UsageError(
        f"no workflow here: {direct} does not exist and {folder}/ has no *.toml — "
        "write one with `console init`, or open one with `console run FILE`"
    )


def main(args: argparse.Namespace) -> int:
    from console.ui.app import make_app
    from console.workflow.loader import load_workflow

    loaded = load_workflow(find_workflow(Path.cwd()))
    audit = Path(args.audit).expanduser() if args.audit else None
    app = make_app(loaded, params=dict(args.params), theme=args.theme, audit_path=audit)
    code = app.run()
    return 1 if code is None else code
