"""`console validate FILE...`: check workflow files without running anything.

Kept light on purpose: it imports the loader only (no textual, no rich), so it is quick
enough for an editor's save hook or a pre-commit check. A problem may quote the file's own
text (a bad step id, a value): it is printed through `terminal_safe`.
"""

from __future__ import annotations

import argparse
import sys

from console.errors import WorkflowError
from console.textsafe import terminal_safe
from console.workflow.loader import load_workflow


def main(args: argparse.Namespace) -> int:
    invalid = 0
    for file in args.files:
        try:
            loaded = load_workflow(file)
        except WorkflowError as exc:
            invalid += 1
            print(terminal_safe(exc.message, multiline=True), file=sys.stderr)
            continue
        steps, rules = len(loaded.steps), len(loaded.rules)
        print(f"{terminal_safe(file)}: ok ({steps} step{'s' if steps != 1 else ''}, "
              f"{rules} polic{'ies' if rules != 1 else 'y'})")
    if invalid and len(args.files) > 1:
        print(f"{invalid} of {len(args.files)} files invalid", file=sys.stderr)
    return 1 if invalid else 0
