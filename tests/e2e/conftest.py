"""Every e2e test ends what it started: a run detached, or left at a gate by a failed
assertion, would otherwise wait in its host for the gate's timeout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.tmux_console import stop_runs


@pytest.fixture(autouse=True)
def no_run_left(tmp_path: Path) -> Iterator[None]:
    yield
    stop_runs(tmp_path)
