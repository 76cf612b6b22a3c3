"""Loading: a 1000-step workflow loaded and validated in-process, and `console validate`.

The workflow is the layered shape (10 layers of 100, two needs each) with what a real file
carries besides: params, a description, tags, env, retries and timeouts on every step, and
three policies (one with a CEL `when`), so the loader's every check runs. In-process:
load_workflow after the imports are done, median of the runs. `console validate`: a fresh
subprocess each time, wall time from start to exit, imports included.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import (
    CONSOLE,
    Figure,
    at_most,
    isolated_state,
    median,
    print_figures,
    runs_from_argv,
    timed_child,
)
from shapes import layered

from console.workflow.loader import load_workflow

MAX_LOAD_S = 0.150
MAX_VALIDATE_S = 0.5

HEADER = '''[workflow]
name = "bench-large"
description = "A thousand steps in ten layers"
concurrency = 2

[params]
version = { type = "string", pattern = '^\\d+\\.\\d+\\.\\d+$', default = "1.0.0" }
env = { type = "choice", choices = ["staging", "prod"], default = "staging" }

[[policy]]
name = "prod needs two people"
match = { tags = ["prod"] }
effect = "require_approval"
approvals = 2
approvers = ["@sre", "@release"]

[[policy]]
name = "only release builds reach prod"
effect = "deny"
when = 'params.env == "prod" && !params.version.matches("^[0-9]+[.][0-9]+[.][0-9]+$")'

[[policy]]
name = "db steps are announced"
match = { tags = ["db"] }
effect = "allow"
'''


def large_workflow() -> str:
    out = [HEADER]
    for step, needs in layered().items():
        out.append(f'[steps."{step}"]')
        out.append(f'description = "step {step} of the large workflow"')
        out.append(f'run = ["./deploy.sh", "{step}", "--version", "{{{{ params.version }}}}"]')
        if needs:
            out.append("needs = [" + ", ".join(f'"{n}"' for n in needs) + "]")
        out.append('tags = ["db"]' if step.endswith("7") else 'tags = ["app"]')
        out.append('env = { TARGET = "fleet-a" }')
        out.append('timeout = "10m"')
        out.append('retry = { attempts = 2, delay = "1s" }')
        out.append("")
    return "\n".join(out)


def run(runs: int = 5) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="console-bench-load-") as tmp:
        path = Path(tmp) / "large.toml"
        path.write_text(large_workflow())
        loaded = load_workflow(path)
        if len(loaded.steps) != 1000:
            raise SystemExit(f"expected 1000 steps, loaded {len(loaded.steps)}")
        loads = []
        for _ in range(max(runs, 7)):
            start = time.perf_counter()
            load_workflow(path)
            loads.append(time.perf_counter() - start)
        walls = []
        with isolated_state() as env:
            for _ in range(runs):
                got = timed_child([*CONSOLE, "validate", str(path)], env)
                if got.returncode != 0:
                    raise SystemExit(f"console validate {path} exited {got.returncode}")
                walls.append(got.wall_s)
    return [
        at_most("load_workflow, 1000 steps", median(loads), "s", MAX_LOAD_S, "in-process"),
        at_most("console validate, 1000 steps", median(walls), "s", MAX_VALIDATE_S,
                "subprocess wall"),
    ]


if __name__ == "__main__":
    print_figures("loading", run(runs_from_argv()))
