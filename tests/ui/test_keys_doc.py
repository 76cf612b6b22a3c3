"""docs/keys.md and the screen agree: every key the help screen lists is in keys.md and
every key keys.md lists is on the help screen; every key a footer shows is in keys.md."""

from __future__ import annotations

import re
from pathlib import Path

from textual.binding import Binding, BindingType

from console.ui.app import ConsoleApp, _key_label
from console.ui.picker import PickerApp
from console.ui.screens.approval import ApprovalScreen
from console.ui.screens.confirm import ConfirmScreen
from console.ui.screens.help import HelpScreen
from console.ui.screens.instances import InstancePicker
from console.ui.screens.params import ParamsScreen
from console.ui.screens.run import RunScreen
from console.ui.screens.summary import SummaryScreen
from console.ui.widgets.audit_pane import AuditPane
from console.ui.widgets.log_tail import LogTail
from console.ui.workflow_picker import WorkflowPickerApp
from console.workflow.loader import load_workflow
from tests.ui.conftest import snapshot_app, write_workflow

KEYS_MD = Path(__file__).resolve().parents[2] / "docs" / "keys.md"


def documented() -> set[str]:
    """The keys in the first column of keys.md's tables: `↑ k` / `↓ j` -> ↑, k, ↓, j."""
    keys: set[str] = set()
    for line in KEYS_MD.read_text().splitlines():
        if line.startswith("| `"):
            for span in re.findall(r"`([^`]+)`", line.split("|")[1]):
                keys.update(span.split())
    return keys


def tokens(label: str) -> set[str]:
    """A help row's keys, without what it says where they apply: `f (audit pane)` -> f."""
    return set(re.sub(r"\s*\(.*\)$", "", label).split())


async def test_the_help_screen_and_keys_md_list_the_same_keys(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        on_screen = set().union(*(tokens(key) for key, _ in app.screen.rows))
    docs = documented()
    assert on_screen - docs == set(), "on the help screen, not in docs/keys.md"
    assert docs - on_screen == set(), "in docs/keys.md, not on the help screen"


def test_every_key_a_footer_shows_is_in_keys_md() -> None:
    owners: list[list[BindingType]] = [
        RunScreen.BINDINGS, ConsoleApp.BINDINGS, AuditPane.BINDINGS, LogTail.BINDINGS,
        SummaryScreen.BINDINGS, ConfirmScreen.BINDINGS, ApprovalScreen.BINDINGS,
        ParamsScreen.BINDINGS, InstancePicker.BINDINGS, HelpScreen.BINDINGS,
        PickerApp.BINDINGS, WorkflowPickerApp.BINDINGS,
    ]
    shown = {key for bindings in owners for binding in bindings
             if isinstance(binding, Binding) and binding.show
             for key in _key_label(binding.key).split()}
    assert shown - documented() == set()


def test_the_readme_names_only_keys_that_keys_md_explains() -> None:
    readme = (KEYS_MD.parents[1] / "README.md").read_text()
    section = readme.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    named = {key for span in re.findall(r"`([^`]+)`", section) if not span.endswith(".md")
             for key in re.split(r"[\s/]+", span) if key}
    assert named - documented() == set()
