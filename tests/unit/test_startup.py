"""The program's start-up settings for the garbage collector end, whether or not the
command says its start-up is over (console/startup.py). In a child process: they are
process-wide."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc
from console import startup

default = gc.get_threshold()
startup.starting()
assert gc.get_threshold()[0] == startup._STARTING_THRESHOLD
{body}
assert gc.get_threshold() == default, (gc.get_threshold(), default)
assert startup._after_first_collection not in gc.callbacks
print("ok")
"""


def run_check(body: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK.format(body=body)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_settled_restores_the_thresholds_and_freezes_what_start_up_built() -> None:
    assert run_check("startup.settled()\nassert gc.get_freeze_count() > 0") == "ok"


def test_a_command_that_never_settles_gets_them_back_after_the_first_collection() -> None:
    assert run_check("keep = [[] for _ in range(300_000)]") == "ok"
