"""The console's themes: `themes/*.toml` files turned into Textual `Theme` objects.

The files live once, in `console/data/themes/` (shipped as package data, so an installed
copy finds them); `themes/` at the top of the repository is a symlink to that directory.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from textual.app import App
from textual.color import Color, ColorParseError
from textual.theme import Theme

from console.config import Config
from console.errors import ConsoleError, UsageError

DEFAULT_THEME = "dark"
NO_COLOR_THEME = "monochrome"
# The order `t` cycles through; themes not named here follow, alphabetically.
CYCLE_ORDER: tuple[str, ...] = ("dark", "light", "high-contrast", "monochrome")

_COLOUR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "success",
    "warning",
    "error",
    "boost",
)
_BOOL_FIELDS = ("dark", "ansi")
_FLOAT_FIELDS = ("luminosity_spread", "text_alpha")
_KNOWN_FIELDS = frozenset(f.name for f in dataclasses.fields(Theme))


class ThemeError(ConsoleError):
    """A theme file cannot be read or does not describe a valid theme."""


def themes_dir() -> Path:
    """The directory holding the shipped themes: package data first, the repository second.

    The package data sits beside the package's modules (console is never imported from a
    zip: its run hosts start as `python -m console`), so no importlib.resources (~3 ms of
    start-up) to find it."""
    packaged = Path(__file__).resolve().parents[1] / "data" / "themes"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "themes"


def load_themes(directory: Path | None = None) -> list[Theme]:
    """Every `*.toml` theme in `directory` (default: the shipped ones), in cycle order."""
    folder = directory if directory is not None else themes_dir()
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise ThemeError(
            f"{folder}: no theme files (*.toml) found — reinstall console, or check that "
            "the themes directory was shipped with the package"
        )
    themes = [load_theme_file(path) for path in files]
    return sorted(themes, key=lambda theme: _cycle_key(theme.name))


def load_theme_file(path: Path) -> Theme:
    """One theme file; any problem is a ThemeError naming the file and the key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeError(f"{path}: cannot read theme file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ThemeError(f"{path}: theme file is not UTF-8 text ({exc.reason})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ThemeError(f"{path}: not valid TOML: {exc}") from exc
    return theme_from_mapping(raw, source=path)


def theme_from_mapping(raw: Mapping[str, Any], source: Path) -> Theme:
    unknown = sorted(set(raw) - _KNOWN_FIELDS)
    if unknown:
        allowed = ", ".join(sorted(_KNOWN_FIELDS))
        raise ThemeError(f"{source}: unknown key {unknown[0]!r} — a theme takes: {allowed}")
    for required in ("name", "primary"):
        if required not in raw:
            raise ThemeError(f"{source}: missing key {required!r} — every theme needs one")
    name = raw["name"]
    if not isinstance(name, str) or not name:
        raise ThemeError(f"{source}: key 'name' must be a non-empty string")
    if name != source.stem:
        raise ThemeError(
            f"{source}: name {name!r} differs from the file name — rename the file "
            f"to {name}.toml or set name = {source.stem!r}"
        )
    fields: dict[str, Any] = {"name": name}
    for key in _COLOUR_FIELDS:
        if key in raw:
            fields[key] = _colour(raw[key], source, key)
    for key in _BOOL_FIELDS:
        if key in raw:
            if not isinstance(raw[key], bool):
                raise ThemeError(f"{source}: key {key!r} must be true or false")
            fields[key] = raw[key]
    for key in _FLOAT_FIELDS:
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ThemeError(f"{source}: key {key!r} must be a number")
            fields[key] = float(value)
    fields["variables"] = _variables(raw.get("variables", {}), source)
    theme = Theme(**fields)
    try:
        theme.to_color_system().generate()
    except (ColorParseError, ValueError) as exc:
        raise ThemeError(f"{source}: the colours do not combine into a theme: {exc}") from exc
    return theme


def _colour(value: Any, source: Path, key: str) -> str:
    if not isinstance(value, str):
        raise ThemeError(f"{source}: key {key!r} must be a colour string such as \"#1c1c1c\"")
    try:
        Color.parse(value)
    except ColorParseError as exc:
        raise ThemeError(
            f"{source}: key {key!r}: {value!r} is not a colour — use \"#rrggbb\" or a "
            "colour name"
        ) from exc
    return value


def _variables(value: Any, source: Path) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ThemeError(f"{source}: [variables] must be a table of name = \"value\" strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise ThemeError(f"{source}: variables.{key} must be a string")
        out[str(key)] = item
    return out


def _cycle_key(name: str) -> tuple[int, str]:
    if name in CYCLE_ORDER:
        return CYCLE_ORDER.index(name), name
    return len(CYCLE_ORDER), name


def register_themes(app: App[Any], themes: Iterable[Theme] | None = None) -> list[str]:
    """Register the console's themes with `app` (never touching Textual's built-ins)."""
    names: list[str] = []
    for theme in themes if themes is not None else load_themes():
        app.register_theme(theme)
        names.append(theme.name)
    return names


def next_theme(current: str, names: Sequence[str]) -> str:
    """The theme after `current` in `names`, wrapping around (what `t` switches to)."""
    if not names:
        return current
    if current not in names:
        return names[0]
    return names[(names.index(current) + 1) % len(names)]


def initial_theme(
    cli_theme: str | None,
    config: Config,
    environ: Mapping[str, str],
    available: Sequence[str] | None = None,
) -> str:
    """Which theme the app opens with.

    `--theme` wins; then a non-empty NO_COLOR selects monochrome (it outranks the config
    file because the file's theme is merely the last one picked with `t`); then the config
    file's `theme`; then the default. An unknown name from the flag or the file is an error
    that lists the themes there are.
    """
    names = list(available) if available is not None else [t.name for t in load_themes()]
    if cli_theme is not None:
        if cli_theme not in names:
            raise UsageError(
                f"--theme {cli_theme}: no such theme — choose one of: {', '.join(names)}"
            )
        return cli_theme
    if environ.get("NO_COLOR"):
        return NO_COLOR_THEME if NO_COLOR_THEME in names else names[0]
    if config.theme is not None:
        if config.theme not in names:
            where = f"{config.source}: " if config.source is not None else ""
            raise ConsoleError(
                f"{where}theme = {config.theme!r} is not a theme — set it to one of: "
                f"{', '.join(names)}"
            )
        return config.theme
    return DEFAULT_THEME if DEFAULT_THEME in names else names[0]
