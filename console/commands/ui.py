"""`console` with no subcommand: open the UI, idle, on the workflow in this directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from console.errors import UsageError


def workflow_candidates(directory: Path) -> list[Path]:
    """The *.toml files in ./workflows/ that are workflows (an inventory is not)."""
    folder = directory / "workflows"
    found = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    return [p for p in found if not _is_inventory(p)]


def _is_inventory(path: Path) -> bool:
    try:
        head = path.read_text(errors="replace")[:65536]
    except OSError:
        return False
    lines = [line.strip() for line in head.splitlines()]
    return (not any(line.startswith(("[workflow]", "[steps.", "[steps]")) for line in lines)
            and any(line.startswith("[hosts.") for line in lines))


def find_workflow(directory: Path, *, pick: bool = False) -> Path | None:
    """./workflow.toml, else the only workflow in ./workflows/; with several, a picker when
    `pick` (a terminal) and None if the person left it; otherwise say what to do."""
    direct = directory / "workflow.toml"
    if direct.is_file():
        return direct
    folder = directory / "workflows"
    candidates = workflow_candidates(directory)
    if len(candidates) == 1:
        return candidates[0]
    if candidates and pick:
        from console.ui.workflow_picker import WorkflowPickerApp

        return WorkflowPickerApp(candidates, directory).run()
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

    chosen = find_workflow(Path.cwd(), pick=sys.stdin.isatty() and sys.stdout.isatty())
    if chosen is None:
        return 0  # left the picker
    loaded = load_workflow(chosen)
    audit = Path(args.audit).expanduser() if args.audit else None
    app = make_app(loaded, params=dict(args.params), theme=args.theme, audit_path=audit)
    code = app.run()
    return 1 if code is None else code
