"""Helpers for engine tests: write a workflow to disk, load it, run it for real."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from console.events import RecordingSink, RunOutcome
from console.host.run_host import RunHost
from console.run.engine import EngineSettings
from console.workflow.loaded import LoadedWorkflow
from console.workflow.loader import load_workflow

PY = sys.executable


def write_workflow(directory: Path, text: str, name: str = "wf.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def settings_in(tmp_path: Path, **overrides: object) -> EngineSettings:
    values: dict[str, object] = {
        "audit_path": tmp_path / "state" / "audit.jsonl",
        "runs_dir": tmp_path / "state" / "runs",
        "runtime_dir": tmp_path / "runtime",
        "grace_s": 1.0,
    }
    values.update(overrides)
    return EngineSettings(**values)  # type: ignore[arg-type]


class Runner:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def load(self, text: str) -> LoadedWorkflow:
        return load_workflow(write_workflow(self.tmp_path, text))

    def engine(
        self,
        text_or_loaded: str | LoadedWorkflow,
        params: Mapping[str, str | int | bool] | None = None,
        **settings: object,
    ) -> tuple[RunHost, RecordingSink]:
        loaded = self.load(text_or_loaded) if isinstance(text_or_loaded, str) else text_or_loaded
        sink = RecordingSink()
        engine = RunHost(loaded, params or {}, [sink], settings_in(self.tmp_path, **settings))
        return engine, sink

    def run(
        self,
        text: str,
        params: Mapping[str, str | int | bool] | None = None,
        during: Callable[[RunHost], object] | None = None,
        **settings: object,
    ) -> tuple[RunOutcome, RunHost, RecordingSink]:
        engine, sink = self.engine(text, params, **settings)

        async def go() -> RunOutcome:
            return await asyncio.wait_for(engine.run(), timeout=60)

        return asyncio.run(go()), engine, sink


async def start_until(
    engine: RunHost, step: str, status: str, timeout: float = 30
) -> asyncio.Task[RunOutcome]:
    """Start the run and return its task once `step` has reached `status`."""
    task: asyncio.Task[RunOutcome] = asyncio.create_task(engine.run())
    async with asyncio.timeout(timeout):
        while engine.state.steps.get(step) is None or engine.state.steps[step].status != status:
            if task.done():
                task.result()
                raise AssertionError(f"the run ended before {step} was {status}")
            await asyncio.sleep(0.01)
    return task


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)
