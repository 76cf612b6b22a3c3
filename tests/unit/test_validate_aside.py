"""New bytes validated in a child while the caller imports (console/workflow/validate_aside.py):
the same workflow, the same errors, the plan kept, and in-process validation whenever the
child cannot give an answer."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from console.errors import WorkflowError
from console.workflow import validate_aside
from console.workflow.loader import load_workflow
from console.workflow.plan_cache import kept_plan, load_for_run, plans_dir
from tests.unit.test_plan_cache import (
    comparable,
    count_validations,
    only_plan,
    write_workflow_files,
)


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    return write_workflow_files(tmp_path)


@pytest.fixture
def here(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each validation done in this process (the child's are its own)."""
    return count_validations(monkeypatch)


class Meanwhile:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the children forked (this process has others: not os.waitpid(-1))."""
    forked: list[int] = []
    real = os.fork

    def recording() -> int:
        pid = real()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recording)
    return forked


def reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_new_bytes_are_validated_aside_and_kept(
    workflow: Path, here: list[str], forks: list[int]
) -> None:
    meanwhile = Meanwhile()
    loaded = load_for_run(workflow, meanwhile=meanwhile)
    assert here == [] and meanwhile.calls == 1
    assert comparable(loaded) == comparable(load_workflow(workflow))
    assert only_plan().stat().st_mode & 0o777 == 0o600
    kept = kept_plan(workflow)
    assert kept is not None and comparable(kept) == comparable(loaded)
    assert len(forks) == 1 and reaped(forks[0])


def test_a_kept_plan_needs_no_child(workflow: Path, here: list[str], forks: list[int]) -> None:
    load_for_run(workflow)
    meanwhile = Meanwhile()
    load_for_run(workflow, meanwhile=meanwhile)
    assert here == [str(workflow)] and meanwhile.calls == 0 and forks == []


def test_an_invalid_workflow_raises_what_validation_raises(
    workflow: Path, here: list[str]
) -> None:
    workflow.write_text(workflow.read_text().replace('timeout = "1h30m"', 'timeout = "soon"')
                        .replace('needs = ["build"]', 'needs = ["biuld"]'))
    with pytest.raises(WorkflowError) as expected:
        load_workflow(workflow)
    with pytest.raises(WorkflowError) as aside:
        load_for_run(workflow, meanwhile=Meanwhile())
    assert aside.value.problems == expected.value.problems
    assert len(aside.value.problems) == 2
    assert here == [str(workflow)]  # the one above: the run's was the child's
    assert list(plans_dir().glob("*")) == []


def test_a_state_dir_that_cannot_keep_plans_costs_no_second_validation(
    workflow: Path, here: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked))
    assert load_for_run(workflow, meanwhile=Meanwhile()).name == "deploy"
    assert here == []


@pytest.mark.parametrize("said", [
    pytest.param(RuntimeError("a bug"), id="the child fails"),
    pytest.param(b"P{not a plan", id="a body that is no plan"),
    pytest.param(b"E[]", id="no problems"),
    pytest.param(b"", id="nothing"),
])
def test_no_answer_from_the_child_means_validating_here(
    workflow: Path, here: list[str], monkeypatch: pytest.MonkeyPatch, said: object,
    forks: list[int],
) -> None:
    def child_validates(path: str | Path) -> bytes:
        if isinstance(said, Exception):
            raise said
        assert isinstance(said, bytes)
        return said

    monkeypatch.setattr(validate_aside, "_validate", child_validates)
    meanwhile = Meanwhile()
    assert load_for_run(workflow, meanwhile=meanwhile).name == "deploy"
    assert here == [str(workflow)] and meanwhile.calls == 1
    assert len(forks) == 1 and reaped(forks[0])


def test_a_plan_that_no_longer_holds_is_validated_here(
    workflow: Path, here: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workflow changed between the run's look for a kept plan and the child's reading
    it: the plan the child sends is not for the bytes the run saw, so the run validates
    what is there now."""
    real = validate_aside._validate

    def changed_first(path: str | Path) -> bytes:
        Path(path).write_text(Path(path).read_text().replace('"make"', '"gmake"'))
        return real(path)

    monkeypatch.setattr(validate_aside, "_validate", changed_first)
    loaded = load_for_run(workflow, meanwhile=Meanwhile())
    assert here == [str(workflow)]
    assert loaded.steps["build"].run[0] == "gmake"


def test_what_stops_the_caller_stops_the_child(
    workflow: Path, here: list[str], forks: list[int]
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_for_run(workflow, meanwhile=interrupted)
    assert len(forks) == 1 and reaped(forks[0])


def test_a_threaded_process_validates_in_process(
    workflow: Path, here: list[str], forks: list[int]
) -> None:
    done = threading.Event()
    thread = threading.Thread(target=done.wait)
    thread.start()
    try:
        meanwhile = Meanwhile()
        assert load_for_run(workflow, meanwhile=meanwhile).name == "deploy"
    finally:
        done.set()
        thread.join()
    assert here == [str(workflow)] and meanwhile.calls == 0 and forks == []
