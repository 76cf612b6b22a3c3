"""`console init [FILE]`: write a commented starter workflow that validates as written.

The data is built as Python values and written with tomli-w, one section at a time, so every
value is valid TOML; the comments go around the sections. An existing file is never
overwritten.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import tomli_w

from console.errors import ConsoleError
from console.workflow.loader import load_workflow

_HEADER = """\
# A starter workflow, written by `console init`. Make it yours, then:
#   console validate {file}     check it (every problem at once, with line and fix)
#   console graph {file}        draw the DAG
#   console run {file}          run it (add -p env=prod to see the approval gate)
# The format is described in docs/workflow-format.md. For completion in your editor:
#   console schema > workflow.schema.json
# and make `#:schema ./workflow.schema.json` the first line of this file.
"""

_SECTIONS: list[tuple[str, dict[str, Any]]] = [
    (
        "# What this workflow is. `concurrency`: steps running at once; `lock`: at most one\n"
        "# run holding it per host.",
        {"workflow": {"name": "my-service-deploy",
                      "description": "Build, test and deploy my service",
                      "concurrency": 2, "lock": "my-service"}},
    ),
    (
        "# Typed inputs: `-p version=1.2.3` on the command line, or a form in the UI.\n"
        "# A string-form run sees them as $PARAM_VERSION; a list-form run element may say\n"
        "# {{ params.version }} (one argument each, never shell syntax).",
        {"params": {
            "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$", "default": "0.1.0",
                        "description": "the version to build and deploy"},
            "env": {"type": "choice", "choices": ["staging", "prod"], "default": "staging"},
        }},
    ),
    (
        "# Each [steps.ID] runs one command. A list runs the program directly (no shell);\n"
        "# a string runs through /bin/sh -c. Durations: \"500ms\", \"90s\", \"10m\", \"1h30m\".",
        {"steps": {"build": {"run": ["echo", "building version {{ params.version }}"],
                             "timeout": "5m"}}},
    ),
    (
        "# `needs` orders steps; steps whose needs are done run in parallel. `retry` tries a\n"
        "# failing step again after a delay that grows by `backoff`.",
        {"steps": {"test": {"needs": ["build"],
                            "run": "echo testing; sleep 1; echo 'all tests passed'",
                            "retry": {"attempts": 2, "delay": "1s", "backoff": 2.0}}}},
    ),
    (
        "# `tags` let policies select steps. Secrets never go in the file: write\n"
        "# env = { TOKEN = \"${secret:DEPLOY_TOKEN}\" } and export DEPLOY_TOKEN before the run.",
        {"steps": {"deploy": {"needs": ["test"],
                              "run": 'echo "deploying $PARAM_VERSION to $PARAM_ENV"',
                              "tags": ["deploy"]}}},
    ),
    (
        "# if = \"always\" runs after its needs whatever their outcome (\"failure\": only when\n"
        "# one failed; \"success\", the default: only when all succeeded).",
        {"steps": {"notify": {"needs": ["deploy"], "if": "always",
                              "run": "echo 'deploy finished'"}}},
    ),
    (
        "# Policy as code: each [[policy]] applies to the steps its `match` selects, when its\n"
        "# CEL condition `when` holds. effect: allow | require_approval | deny.",
        {"policy": [{"name": "production deploys need an approval",
                     "description": "Someone looks before a release reaches production users",
                     "match": {"tags": ["deploy"]}, "when": 'params.env == "prod"',
                     "effect": "require_approval", "approvals": 1, "reason": True,
                     "timeout": "30m"}]},
    ),
]

_SHORT_ARRAY = re.compile(r'\[\n((?: +(?:"(?:[^"\\\n]|\\.)*"|[^\n\[\]{}"]+),\n)+)\]')


def _one_line_arrays(text: str) -> str:
    """tomli-w writes every array over several lines; short ones read better on one."""
    def join(found: re.Match[str]) -> str:
        items = [line.strip().removesuffix(",") for line in found.group(1).splitlines()]
        joined = "[" + ", ".join(items) + "]"
        return joined if len(joined) <= 80 else found.group(0)

    return _SHORT_ARRAY.sub(join, text)


def starter_text(file: str) -> str:
    chunks = [_HEADER.format(file=file)]
    for comment, data in _SECTIONS:
        chunks.append(f"{comment}\n{_one_line_arrays(tomli_w.dumps(data))}")
    return "\n".join(chunks)


def main(args: argparse.Namespace) -> int:
    path = Path(args.file)
    text = starter_text(args.file)
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise ConsoleError(
            f"{args.file} already exists — choose another name (console init other.toml) "
            "or move it away; init never overwrites a file"
        ) from None
    except OSError as exc:
        raise ConsoleError(f"cannot write {args.file}: {exc.strerror} — check the directory "
                           "exists and is writable") from None
    loaded = load_workflow(path)
    print(f"wrote {args.file} ({len(loaded.steps)} steps, {len(loaded.rules)} policy); "
          f"next: console validate {args.file}")
    return 0
