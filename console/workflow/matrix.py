"""A step's matrix: the combinations it runs over, each an instance `deploy[region=eu]`.

Several keys give their product, in the order written; `exclude` drops every combination
that has all of an entry's values; `include` adds combinations (one that is already there
is not added twice). Values are text from here on: ints in decimal, bools true/false.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from console.workflow.templating import render_value

SPECIAL = ("exclude", "include")


def combinations(matrix: Mapping[str, Sequence[Any]]) -> list[dict[str, str]]:
    axes = [(key, [render_value(v) for v in values])
            for key, values in matrix.items() if key not in SPECIAL]
    keys = [key for key, _ in axes]
    out = [dict(zip(keys, values, strict=True))
           for values in itertools.product(*(values for _, values in axes))] if axes else []
    for entry in matrix.get("exclude", ()):
        wanted = {k: render_value(v) for k, v in entry.items()}
        out = [c for c in out if any(c.get(k) != v for k, v in wanted.items())]
    for entry in matrix.get("include", ()):
        extra = {k: render_value(v) for k, v in entry.items()}
        if extra not in out:
            out.append(extra)
    return out


def combination_key(values: Mapping[str, str]) -> str:
    """`region=eu-west,tier=web`: the instance key, and the part of its id in brackets."""
    return ",".join(f"{key}={value}" for key, value in values.items())


def parse_key(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split(",") if "=" in part)


def matrix_env(values: Mapping[str, str]) -> dict[str, str]:
    """`region` -> MATRIX_REGION."""
    return {f"MATRIX_{key.upper()}": value for key, value in values.items()}


def matrix_values(matrices: Mapping[str, object], unit: str) -> dict[str, str] | None:
    """An instance of a matrix step (`deploy[region=eu]`) -> its values; else None."""
    step, bracket, key = unit.partition("[")
    if not bracket or step not in matrices:
        return None
    return parse_key(key.removesuffix("]"))
