"""The console program's start and end: what a run pays before its first step and after
its last, kept small.

- While the program starts, the cyclic garbage collector stays out of the way: importing
  the run path allocates some 50,000 objects that live as long as the process, and the
  collector would walk them several times over (~15 ms). `settled()` then moves them out
  of its sight for good (gc.freeze) and restores the thresholds, so collections during a
  run look only at what the run allocates.
- At the end, `exit_now` ends the process without the interpreter's teardown (freeing
  every module and object one by one, 50-90 ms for the ~370 modules of a run): atexit
  handlers run, stdout and stderr are flushed, and then the process exits. The console
  writes its files with os.write and closes them itself (the audit trail is fsynced), so
  there is no buffered file left to lose. If a thread other than a daemon is still alive,
  or a profiler or debugger is attached (`python -m cProfile -m console`), it exits the
  ordinary way.

Only the program uses these (`python -m console`, the `console` script); code that
imports the package, tests included, keeps Python's defaults.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
import threading
from typing import NoReturn

# Allocations between young collections while starting: more than starting makes.
_STARTING_THRESHOLD = 200_000
_defaults: tuple[int, int, int] | None = None


def starting() -> None:
    """The program starts: no collection until `settled()`, or until 200,000 allocations
    (then start-up is over anyway: a command that never says so, `console serve` or
    `audit tail -f`, gets the usual thresholds back after that first collection)."""
    global _defaults
    if _defaults is None:
        threshold = gc.get_threshold()
        _defaults = (threshold[0], threshold[1], threshold[2])
        gc.set_threshold(_STARTING_THRESHOLD, threshold[1], threshold[2])
        gc.callbacks.append(_after_first_collection)


def settled() -> None:
    """Start-up is over: what it built lives as long as the process and is never collected;
    the collector's thresholds are back to what they were."""
    global _defaults
    if _defaults is not None:
        gc.freeze()
        _restore()


def _restore() -> None:
    global _defaults
    if _defaults is not None:
        gc.set_threshold(*_defaults)
        _defaults = None
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(_after_first_collection)


def _after_first_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "stop":
        _restore()


def exit_now(code: int) -> NoReturn:
    """End the program with `code`, skipping the interpreter's teardown (see the module)."""
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    watched = sys.getprofile() is not None or sys.gettrace() is not None
    if watched or any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)  # a profiler or debugger reports at the ordinary exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A terminal or pipe that went away: nothing more can reach it.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
