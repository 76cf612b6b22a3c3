"""The workflow shapes the benchmarks run, written as console TOML and as a Makefile.

wide: N independent steps; layered: L layers of W, each step needing two of the layer
before; chain: N steps, each needing the one before. Every step runs `true`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Graph = dict[str, list[str]]  # step -> its needs, in file order


def wide(count: int = 1000) -> Graph:
    return {f"s{i:04d}": [] for i in range(count)}


def layered(layers: int = 10, width: int = 100) -> Graph:
    graph: Graph = {}
    for layer in range(layers):
        for i in range(width):
            needs = []
            if layer:
                needs = [f"l{layer - 1}-{i:03d}", f"l{layer - 1}-{(i + 1) % width:03d}"]
            graph[f"l{layer}-{i:03d}"] = needs
    return graph


def chain(count: int = 200) -> Graph:
    return {f"c{i:03d}": [f"c{i - 1:03d}"] if i else [] for i in range(count)}


SHAPES: dict[str, Callable[[], Graph]] = {"wide": wide, "layered": layered, "chain": chain}


def workflow_toml(
    name: str,
    graph: Graph,
    concurrency: int,
    argv: tuple[str, ...] = ("true",),
    extra: str = "",
) -> str:
    run = "[" + ", ".join(f'"{arg}"' for arg in argv) + "]"
    out = ["[workflow]", f'name = "{name}"', f"concurrency = {concurrency}", "", extra]
    for step, needs in graph.items():
        out.append(f'[steps."{step}"]')
        out.append(f"run = {run}")
        if needs:
            out.append("needs = [" + ", ".join(f'"{n}"' for n in needs) + "]")
        out.append("")
    return "\n".join(out)


def makefile(graph: Graph) -> str:
    targets = " ".join(graph)
    out = [f".PHONY: all {targets}", f"all: {targets}", ""]
    for step, needs in graph.items():
        out.append(f"{step}: {' '.join(needs)}".rstrip())
        out.append("\ttrue")
    return "\n".join(out) + "\n"


def write_shape(directory: Path, name: str, graph: Graph, concurrency: int) -> tuple[Path, Path]:
    """Write NAME.toml and NAME.mk into directory; return their paths."""
    toml_path = directory / f"{name}.toml"
    make_path = directory / f"{name}.mk"
    toml_path.write_text(workflow_toml(name, graph, concurrency))
    make_path.write_text(makefile(graph))
    return toml_path, make_path
