"""The DAG view: layout, drawing, navigation along layers and edges, list mode, filter,
and a thousand steps."""

from __future__ import annotations

from pathlib import Path

from console.ui.widgets.dag import DagView
from console.ui.widgets.dag_layout import (
    LINE_CHARS,
    LR_BOXED,
    NODE_W,
    PITCH_X,
    Geometry,
    build_layout,
    choose_geometry,
    fits_across,
    order_steps,
    place,
)
from console.workflow.loader import load_workflow
from console.workflow.spec import Step
from tests.ui.conftest import awaiting_story, snapshot_app, write_workflow

REPO = Path(__file__).resolve().parents[2]


def steps(needs: dict[str, list[str]]) -> dict[str, Step]:
    return {sid: Step(run="true", needs=deps) for sid, deps in needs.items()}


def test_layers_go_left_to_right_and_long_edges_get_lanes() -> None:
    layout = build_layout(steps({"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"]}))
    assert [layout.slots[s].layer for s in "abcd"] == [0, 1, 2, 3]
    assert layout.slots["b"].x == PITCH_X
    # a -> d skips two layers: it passes through a lane in each, never through a node.
    assert [lane.layer for lane in layout.lanes] == [1, 2]
    assert all(lane.index != layout.slots["b"].index for lane in layout.lanes[:1])
    assert layout.dependents["a"] == ["b", "d"]


def test_edges_are_box_drawing_and_merge_into_junctions() -> None:
    layout = build_layout(steps({"a": [], "b": ["a"], "c": ["a"]}))
    drawn = {LINE_CHARS[mask] for row in layout.edges.values() for mask in row.values()}
    assert drawn <= set("─│╭╮╰╯┬┴├┤┼")
    assert "┬" in drawn or "├" in drawn  # one source fans out to two targets
    first_gap = NODE_W
    assert layout.edges[layout.slots["a"].y + 1][first_gap] & 4  # leaves a's right side


def test_top_to_bottom_layers_are_rows_and_edges_run_between_them() -> None:
    layout = build_layout(steps({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}),
                          Geometry("tb", 20, 2, 2, 1))
    assert [layout.slots[s].layer for s in "abcd"] == [0, 1, 1, 2]
    assert [layout.slots[s].y for s in "abcd"] == [0, 3, 3, 6]
    assert layout.slots["b"].x < layout.slots["c"].x
    # a sits over the middle of the layer below; the row between them fans out.
    assert layout.slots["b"].x < layout.slots["a"].x < layout.slots["c"].x
    fan = "".join(LINE_CHARS[m] for _, m in sorted(layout.edges[2].items()))
    assert fan.startswith("╭") and fan.endswith("╮") and "┴" in fan
    assert layout.width == 42 and layout.height == 8


def test_the_richest_layout_that_fits_the_window_is_chosen() -> None:
    order = order_steps(steps({"a": [], "b": ["a"], "c": ["b"], "d": ["c"], "e": ["d"],
                               "f": ["e"], "g": ["f"], "h": ["g"]}))
    assert choose_geometry(order, 300, 40, 12) == Geometry("lr", NODE_W, 3, 6, 1)
    assert choose_geometry(order, 80, 22, 12).node_h == 1  # 8 layers of two rows: 23 rows
    assert choose_geometry(order, 80, 23, 12).node_h == 2
    tall = choose_geometry(order, 80, 10, 12)
    assert tall.flow == "tb" and tall.node_h == 1  # scrolls one way only, the least
    # A longer name (a group of instances) widens the cards, up to a limit.
    assert choose_geometry(order, 400, 40, 30).node_w > LR_BOXED.node_w


async def test_navigation_follows_layers_and_edges(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(300, 30)) as pilot:
        dag = app.run_screen.query_one(DagView)
        assert dag.selected == "build" and dag.has_focus
        await pilot.press("l")
        assert dag.selected == "test"
        await pilot.press("j")
        assert dag.selected == "lint"
        await pilot.press("k")
        assert dag.selected == "test"
        await pilot.press("right", "right")
        assert dag.selected == "deploy"
        await pilot.press("h")
        assert dag.selected in ("migrate", "lint")
        await pilot.press("end")
        assert dag.selected == "notify"
        await pilot.press("home", "left")
        assert dag.selected == "build"  # nothing before the first layer


async def test_g_toggles_the_compact_list_and_navigation_follows_it(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        dag = app.run_screen.dag
        await pilot.press("g")
        assert dag.mode == "list"
        await pilot.press("down", "down")
        assert dag.selected == "lint"
        await pilot.press("g")
        assert dag.mode == "graph"


async def test_filter_by_name_tag_and_status(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        screen.apply_events(awaiting_story().events)
        await pilot.press("slash", *"tag:prod")
        assert screen.dag.shown_steps == ["migrate", "deploy"]
        field = screen.query_one("#filter")
        field.value = "awaiting"  # type: ignore[attr-defined]
        await pilot.pause()
        assert screen.dag.shown_steps == ["migrate"]
        field.value = "lin"  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert screen.dag.shown_steps == ["lint"] and screen.dag.has_focus
        await pilot.press("slash", "escape")
        assert len(screen.dag.shown_steps) == 6


def thousand_steps() -> str:
    lines = ['[workflow]\nname = "big"\n']
    for i in range(1000):
        needs = f'needs = ["s{i - 1:04d}", "s{i // 2:04d}"]' if i else ""
        if i == 1:
            needs = 'needs = ["s0000"]'
        lines.append(f'[steps.s{i:04d}]\nrun = "true"\n{needs}\n')
    return "\n".join(lines)


async def test_a_thousand_steps_open_as_a_list_drawing_only_what_is_visible(tmp_path: Path) -> None:
    loaded = load_workflow(write_workflow(tmp_path, thousand_steps()))
    app = snapshot_app(loaded, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        dag = app.run_screen.dag
        assert dag.mode == "list"
        assert dag.virtual_size.height == 1000
        await pilot.press("end")
        assert dag.selected == "s0999"
        assert dag.scroll_offset.y > 900
        drawn = [dag.render_line(y).text for y in range(dag.size.height)]
        assert "s0999" in drawn[-1] or any("s0999" in line for line in drawn)
        await pilot.press("g")
        assert dag.mode == "graph"
        assert dag.virtual_size.height > 1000
        await pilot.press("home", "j", "j")
        assert dag.selected not in (None, "s0000")


async def test_at_80x24_layers_flow_down_and_the_keys_follow_the_screen(tmp_path: Path) -> None:
    app = snapshot_app(load_workflow(write_workflow(tmp_path)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        dag = app.run_screen.dag
        assert dag.layout_data.flow == "tb"
        assert dag.layout_data.height <= dag.size.height
        assert dag.layout_data.width <= dag.size.width
        await pilot.press("j")
        assert dag.selected == "lint"  # the nearest below: build sits over the middle
        await pilot.press("h")
        assert dag.selected == "test"
        await pilot.press("down")
        assert dag.selected == "migrate"
        await pilot.press("k", "k")
        assert dag.selected == "build"


def test_a_crowded_layer_shares_its_room_so_every_name_stays_whole() -> None:
    order = order_steps(steps({"build": [], "unit-tests": ["build"],
                               "integration-tests": ["build"],
                               "deploy": ["unit-tests", "integration-tests"]}))
    geometry = choose_geometry(order, 37, 10, len("integration-tests"))
    layout = place(order, geometry)
    assert layout.flow == "tb" and layout.width <= 37
    # As wide as each other, the two would have 17 columns: integration-tests needs 20.
    assert layout.width_of("integration-tests") >= len("integration-tests") + 3
    assert layout.width_of("unit-tests") >= len("unit-tests") + 3
    unit, integration = layout.slots["unit-tests"], layout.slots["integration-tests"]
    assert unit.x + layout.width_of("unit-tests") < integration.x
    # A card alone on its layer takes the room it has to say more (a gate's deadline).
    assert layout.width_of("deploy") > geometry.node_w
    assert fits_across(order, 37) and not fits_across(order, 18)


async def test_too_narrow_for_both_the_detail_takes_the_dags_place(tmp_path: Path) -> None:
    loaded = load_workflow(REPO / "workflows" / "bluegreen.toml")
    app = snapshot_app(loaded, tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        screen = app.run_screen
        await pilot.press("enter")
        await pilot.pause()
        assert screen.detail.display and not screen.dag.display
        assert screen.detail.size.width > 50
        await pilot.press("escape")
        await pilot.pause()
        assert screen.dag.display and screen.dag.has_focus
    app = snapshot_app(loaded, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen
        await pilot.press("enter")
        await pilot.pause()
        assert screen.detail.display and screen.dag.display  # 80 columns: side by side
