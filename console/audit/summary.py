"""Audit records as one line for people: time, run, actor, type, step, what the data says."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

SUMMARY_WIDTH = 120
SHORT_PART = 32


def summarise_data(data: Mapping[str, Any], width: int = SUMMARY_WIDTH) -> str:
    """`key=value` for each member that has a value, short ones first, cut to `width`."""
    parts = [f"{key}={_value(value)}" for key, value in data.items() if value not in (None, "")]
    # Outcomes, codes and counts say more than paths and hashes: keep them in view.
    parts.sort(key=lambda part: len(part) > SHORT_PART)
    text = " ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_record(record: Mapping[str, Any], *, with_run: bool = True) -> str:
    ts = str(record.get("ts", ""))
    when = f"{ts[:10]} {ts[11:23]}" if len(ts) >= 23 else ts
    actor = record.get("actor")
    who = f"{actor.get('user')}({actor.get('via')})" if isinstance(actor, Mapping) else "-"
    data = record.get("data")
    columns = [when]
    if with_run:
        columns.append(f"{record.get('run') or '-':<22}")
    columns += [
        f"{who:<16}",
        f"{record.get('type', '?'):<18}",
        f"{record.get('step') or '-':<14}",
        summarise_data(data) if isinstance(data, Mapping) else _value(data),
    ]
    return " ".join(columns).rstrip()


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value and " " not in value else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return ",".join(_value(item) for item in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)
