"""Issue 12, item 7: the params form says what each field wants, in full, and its problems
go as soon as the value is right."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Label, Switch

from console.ui.screens.params import ParamsScreen, field_problem, placeholder_for
from console.workflow.loader import load_workflow
from tests.ui.conftest import ScriptedExecutor, snapshot_app, wait_for
from tests.ui.test_snapshots_80x24 import version_field_focused

MIGRATION = Path(__file__).resolve().parents[2] / "workflows" / "db-migration.toml"


def text_of(form: ParamsScreen, selector: str) -> str:
    return str(form.query_one(selector).render())


async def test_the_form_for_db_migration_at_80x24(tmp_path: Path) -> None:
    loaded = load_workflow(MIGRATION)
    app = snapshot_app(loaded, tmp_path, executor=ScriptedExecutor(), start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: version_field_focused(app))
        form = app.screen
        assert isinstance(form, ParamsScreen)
        label = form.query(".param-label").first(Label)
        assert "the schema version to migrate to" in str(label.render())
        field = form.query_one("#param-version", Input)
        assert field.placeholder == r"required: text matching ^\d+\.\d+\.\d+$"
        await pilot.press(*"1.2", "enter")
        problem = text_of(form, "#problem-version")
        assert problem == r"1.2 does not match the pattern ^\d+\.\d+\.\d+$"
        await pilot.press(*".3")
        assert text_of(form, "#problem-version") == ""
        await pilot.press("backspace")  # no nagging while typing; checked again on enter
        assert text_of(form, "#problem-version") == ""
        await pilot.press("enter")
        assert "does not match" in text_of(form, "#problem-version")
        await pilot.press("3")
        assert text_of(form, "#problem-version") == ""
        assert str(form.query_one("#state-dry_run", Label).render()) == "off (false)"
        form.query_one("#param-dry_run", Switch).toggle()
        await pilot.pause()
        assert str(form.query_one("#state-dry_run", Label).render()) == "on (true)"


def test_placeholders_and_problems_in_words() -> None:
    params = load_workflow(MIGRATION).model.params
    assert placeholder_for(params["batch_size"]) == "optional: a whole number, e.g. 3"
    assert field_problem(params["batch_size"], "many").startswith("'many' is not an int")
    assert field_problem(params["version"], "2.0.0") == ""
