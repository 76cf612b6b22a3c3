"""A command builds only its own subparser, and parses exactly as the whole parser does."""

from __future__ import annotations

import pytest

from console.cli import _command_in, build_parser

COMMAND_LINES = [
    ["run", "wf.toml", "-p", "version=1.2.3", "--no-tui", "--grace", "2", "--fsync-always"],
    ["--audit", "a.jsonl", "run", "wf.toml", "--detach"],
    ["--theme=light", "run", "wf.toml"],
    ["validate", "a.toml", "b.toml"],
    ["plan", "wf.toml", "--as", "bob"],
    ["graph", "wf.toml", "--compact"],
    ["approve", "r1", "deploy"],
    ["deny", "r1", "deploy", "--reason", "no"],
    ["override", "r1", "deploy", "--reason", "yes"],
    ["cancel", "r1"],
    ["attach"],
    ["status", "r1", "--json"],
    ["audit", "verify", "--head", "3:abc"],
    ["audit", "tail", "-f", "-n", "5"],
    ["schema"],
    ["_host", "--spec-fd", "3", "--ready-fd", "4"],
    ["serve", "--install-unit"],
    ["init"],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda a: " ".join(a))
def test_the_commands_parser_alone_parses_as_the_whole_one(argv: list[str]) -> None:
    only = _command_in(argv)
    assert only is not None
    assert vars(build_parser(only=only).parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [[], ["--help"], ["--version"], ["frobnicate"], ["-x", "run"],
                                  ["--audit"]])
def test_anything_else_gets_the_whole_parser(argv: list[str]) -> None:
    assert _command_in(argv) is None
