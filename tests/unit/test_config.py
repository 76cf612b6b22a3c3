"""The person's config file: read with clear errors, theme saved keeping everything else."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from console.config import Config, save_theme
from console.errors import ConsoleError
from console.paths import config_file


def test_missing_file_gives_defaults() -> None:
    config = Config.load()
    assert (config.theme, config.audit_path) == (None, None)
    assert config.source == config_file()


def test_reads_theme_and_audit_path(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('theme = "light"\naudit = "trail/audit.jsonl"\n')
    config = Config.load(path)
    assert config.theme == "light"
    assert config.audit_path == tmp_path / "trail" / "audit.jsonl"


def test_audit_path_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "config.toml"
    path.write_text('audit = "~/audit.jsonl"\n')
    assert Config.load(path).audit_path == tmp_path / "home" / "audit.jsonl"


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("theme = \n")
    with pytest.raises(ConsoleError) as info:
        Config.load(path)
    assert str(path) in str(info.value)
    assert "TOML" in str(info.value)


@pytest.mark.parametrize(("body", "key"), [("theme = 3", "theme"), ("audit = true", "audit")])
def test_wrong_type_names_file_and_key(tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(body + "\n")
    with pytest.raises(ConsoleError) as info:
        Config.load(path)
    assert str(path) in str(info.value)
    assert f"'{key}'" in str(info.value)


def test_save_theme_creates_the_file_and_its_directory() -> None:
    save_theme("high-contrast")
    assert Config.load().theme == "high-contrast"


def test_save_theme_keeps_other_keys_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'theme = "dark"\naudit = "/srv/audit.jsonl"\nextra = [1, 2]\n\n'
        '[editor]\nname = "vim"\nsize = 4\n'
    )
    os.chmod(path, 0o600)
    save_theme("light", path)
    data = tomllib.loads(path.read_text())
    assert data == {
        "theme": "light",
        "audit": "/srv/audit.jsonl",
        "extra": [1, 2],
        "editor": {"name": "vim", "size": 4},
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_save_theme_refuses_to_overwrite_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("not = [valid\n")
    with pytest.raises(ConsoleError, match=r"config\.toml"):
        save_theme("light", path)
    assert path.read_text() == "not = [valid\n"


def test_round_trip() -> None:
    save_theme("monochrome")
    save_theme("light")
    assert Config.load().theme == "light"
