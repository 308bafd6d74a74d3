"""Helpers every kind of test uses: waiting for an effect that lands asynchronously."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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
