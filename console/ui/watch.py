"""Watching the workflow (and its shared policy files) for changes on disk.

Editors save by writing a new file and renaming it over the old one, so the directories are
watched and changes filtered by path, rather than watching the files themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from watchfiles import Change, awatch


async def watch_files(
    files: Iterable[Path],
    on_change: Callable[[set[Path]], Awaitable[None] | None],
    *,
    stop: asyncio.Event | None = None,
    debounce_ms: int = 200,
) -> None:
    """Call `on_change(changed_files)` whenever one of `files` is written, replaced or removed."""
    wanted = {Path(f).resolve() for f in files}
    directories = sorted({str(f.parent) for f in wanted if f.parent.is_dir()})
    if not directories:
        return

    def relevant(change: Change, path: str) -> bool:
        return Path(path).resolve() in wanted

    async for changes in awatch(
        *directories,
        watch_filter=relevant,
        debounce=debounce_ms,
        step=50,
        stop_event=stop,
        recursive=False,
    ):
        changed = {Path(path).resolve() for _, path in changes}
        result = on_change(changed)
        if result is not None:
            await result
