"""Helpers every kind of test uses: waiting for an effect that lands asynchronously, and putting
songs in the search index at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0,
                     every: float = 0.02) -> float:
    """Wait until `check()` is true, trying every `every` seconds; returns the seconds it took.
    Fails after `timeout` seconds."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)
    return time.monotonic() - start


async def index_songs(app: Any, ids: Sequence[int]) -> None:
    """Put these songs' documents in the app's search index now, as live indexing does once the
    worker consumes their events (a test's app with a broker has no worker consuming them)."""
    from app.adapters.search.documents import build
    from app.web import keys

    await app[keys.SEARCH_BACKEND].upsert(await build(app[keys.DB], "song", ids))
