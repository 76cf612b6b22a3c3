"""The themes: loaded from the shipped TOML files, registered, chosen, readable without colour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.color import ColorSystem
from textual.app import App, ComposeResult
from textual.color import Color
from textual.theme import BUILTIN_THEMES
from textual.widgets import Static

from console.config import Config
from console.errors import ConsoleError, UsageError
from console.ui.themes import (
    ThemeError,
    initial_theme,
    load_theme_file,
    load_themes,
    next_theme,
    register_themes,
    themes_dir,
)

REPO = Path(__file__).resolve().parents[2]
NAMES = ["dark", "light", "high-contrast", "monochrome"]


def test_the_four_themes_load_in_cycle_order() -> None:
    themes = load_themes()
    assert [t.name for t in themes] == NAMES
    assert [t.dark for t in themes] == [True, False, True, True]


def test_one_copy_of_the_files_shipped_as_package_data() -> None:
    assert themes_dir() == REPO / "console" / "data" / "themes"
    assert (REPO / "themes").resolve() == themes_dir().resolve()
    assert sorted(p.stem for p in themes_dir().glob("*.toml")) == sorted(NAMES)


class ThemedApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("✓ succeeded   ✗ failed (exit 2)   ◆ awaiting approval 1/2")


async def test_registering_leaves_textuals_builtin_themes_alone() -> None:
    builtin_before = dict(BUILTIN_THEMES)
    app = ThemedApp()
    names = register_themes(app)
    assert names == NAMES
    assert builtin_before == BUILTIN_THEMES
    assert not set(NAMES) & set(BUILTIN_THEMES)
    async with app.run_test(size=(80, 24)) as pilot:
        for name in NAMES:
            app.theme = name
            await pilot.pause()
            assert app.current_theme.name == name


async def test_next_theme_cycles() -> None:
    assert [next_theme(n, NAMES) for n in NAMES] == NAMES[1:] + NAMES[:1]
    assert next_theme("textual-dark", NAMES) == "dark"


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('name = "bad"\nprimary = \n', "not valid TOML"),
        ('name = "bad"\nprimary = "#12345z"\n', "'primary'"),
        ('name = "bad"\nprimary = "#ffffff"\nsparkle = true\n', "unknown key 'sparkle'"),
        ('name = "bad"\n', "missing key 'primary'"),
        ('name = "other"\nprimary = "#ffffff"\n', "differs from the file name"),
        ('name = "bad"\nprimary = "#ffffff"\ndark = "yes"\n', "'dark'"),
        ('name = "bad"\nprimary = "#ffffff"\n[variables]\nborder = 3\n', "variables.border"),
    ],
)
def test_a_bad_theme_file_is_named_in_a_clear_message(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = _write(tmp_path, "bad", body)
    with pytest.raises(ThemeError) as info:
        load_theme_file(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_an_empty_theme_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ThemeError, match="no theme files"):
        load_themes(tmp_path)


def test_no_color_selects_monochrome() -> None:
    assert initial_theme(None, Config(), {"NO_COLOR": "1"}) == "monochrome"
    assert initial_theme(None, Config(theme="light"), {"NO_COLOR": "1"}) == "monochrome"


def test_theme_precedence() -> None:
    assert initial_theme(None, Config(), {}) == "dark"
    assert initial_theme(None, Config(), {"NO_COLOR": ""}) == "dark"
    assert initial_theme(None, Config(theme="light"), {}) == "light"
    assert initial_theme("high-contrast", Config(theme="light"), {"NO_COLOR": "1"}) == (
        "high-contrast"
    )


def test_unknown_theme_names_are_errors_listing_the_choices(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--theme neon: no such theme.*monochrome"):
        initial_theme("neon", Config(), {})
    source = tmp_path / "config.toml"
    with pytest.raises(ConsoleError, match=r"config\.toml: theme = 'neon'"):
        initial_theme(None, Config(theme="neon", source=source), {})


def _sixteen(colour: str) -> Any:
    return Color.parse(colour).rich_color.downgrade(ColorSystem.STANDARD).number


@pytest.mark.parametrize("name", ["high-contrast", "monochrome"])
def test_readable_at_sixteen_colours(name: str) -> None:
    """Text, status colours and the cursor stay distinct from the background at 16 colours."""
    theme = next(t for t in load_themes() if t.name == name)
    colours = theme.to_color_system().generate()
    background = _sixteen(colours["background"])
    for key in ("foreground", "primary", "success", "warning", "error"):
        assert _sixteen(colours[key]) != background, key
    assert _sixteen(colours["block-cursor-background"]) != _sixteen(
        colours["block-cursor-foreground"]
    )


def test_monochrome_has_no_hue() -> None:
    theme = next(t for t in load_themes() if t.name == "monochrome")
    colours = theme.to_color_system().generate()
    for key in ("foreground", "background", "primary", "success", "warning", "error", "panel"):
        r, g, b = Color.parse(colours[key]).rgb
        assert r == g == b, key


async def test_app_with_no_color_renders_in_monochrome(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = ThemedApp()
    register_themes(app)
    app.theme = initial_theme(None, Config(), {"NO_COLOR": "1"})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.no_color
        assert app.current_theme.name == "monochrome"
        text = app.query_one(Static).render()
        assert "awaiting approval 1/2" in str(text)
