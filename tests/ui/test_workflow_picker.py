"""`console` in a directory with several workflows offers a picker instead of exit 2."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from console.commands.ui import find_workflow, workflow_candidates
from console.errors import UsageError
from console.ui.workflow_picker import WorkflowPickerApp
from tests.conftest import WORKFLOWS
from tests.engine.cli_runs import wait_for as wait_until
from tests.ui.conftest import wait_for


def _repo(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name in ("demo.toml", "rolling.toml", "hosts.toml"):
        shutil.copy(WORKFLOWS / name, folder / name)
    shutil.copytree(WORKFLOWS / "scripts", folder / "scripts")
    (folder / "broken.toml").write_text('[workflow]\nname = "broken"\n[steps.a]\nrun = 3\n')
    return tmp_path


def test_an_inventory_is_not_offered_as_a_workflow(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert [p.name for p in workflow_candidates(repo)] == ["broken.toml", "demo.toml",
                                                           "rolling.toml"]


async def test_the_picker_lists_each_workflow_and_opens_the_chosen_one(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    app = WorkflowPickerApp(workflow_candidates(repo), repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = "\n".join(str(app.query_one("OptionList").get_option_at_index(i).prompt)
                         for i in range(3))
        assert "workflows/broken.toml" in text and "does not load" in text
        assert "workflows/demo.toml" in text
        assert "workflows/rolling.toml  web-rolling (4 steps)" in text
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: app.return_value is not None)
    assert app.return_value == repo / "workflows" / "rolling.toml"


def test_without_a_terminal_several_workflows_are_still_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="several workflows"):
        find_workflow(_repo(tmp_path))


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_console_in_a_repo_with_several_workflows_opens_the_picker_in_a_terminal(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path)
    tmux = ["tmux", "-L", f"console-pick-{uuid.uuid4().hex[:8]}"]
    command = (f"cd {shlex.quote(str(repo))} && XDG_STATE_HOME={shlex.quote(str(tmp_path))}"
               f" {shlex.quote(sys.executable)} -m console; echo EXIT=$?; sleep 30")
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", command], check=True)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True,
                              text=True).stdout

    try:
        wait_until("the picker", lambda: "3 workflows in" in screen(), 30)
        subprocess.run([*tmux, "send-keys", "Down", "Enter"], check=True)
        # The UI on demo.toml: its header names the workflow, its DAG the first step.
        wait_until("the demo open", lambda: screen().lstrip().startswith("demo")
                   and "checkout" in screen(), 30)
        assert "EXIT=2" not in screen()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
