"""The domain is reachable without the TUI: importing it must not pull in textual or rich."""

from __future__ import annotations

import json
import subprocess
import sys

DOMAIN_MODULES = [
    "console.errors",
    "console.workflow.model",
    "console.workflow.loader",
    "console.workflow.graph",
    "console.workflow.expressions",
    "console.policy.rules",
    "console.events",
    "console.run.state",
    "console.exec.local",
    "console.run.engine",
    "console.run.control",
    "console.audit.log",
]


def test_domain_imports_leave_textual_and_rich_out() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {DOMAIN_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "ui = ('textual', 'rich')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ui)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_validate_path_leaves_textual_out() -> None:
    code = (
        "import sys, console.cli, console.commands.validate\n"
        "print('textual' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
