"""Fixed-window counters in the key-value store, with an in-process stand-in when it is down."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from app.adapters.kv import KeyValue, KVUnavailable, MemoryKV
from app.errors import RateLimited


class RateLimiter:
    def __init__(self, kv: KeyValue, namespace: str) -> None:
        self.kv = kv
        # Counts kept here while the shared store is unreachable: limits still hold, per process.
        self.local = MemoryKV(namespace)

    async def _call_get(self, key: str) -> bytes | None:
        try:
            return await self.kv.get(key)
        except KVUnavailable:
            return await self.local.get(key)

    async def ensure_below(self, key: str, limit: int) -> None:
        """Raise RateLimited when `key` has reached `limit` in its window."""
        raw = await self._call_get(key)
        if raw is not None and int(raw) >= limit:
            try:
                retry = await self.kv.ttl(key)
            except KVUnavailable:
                retry = await self.local.ttl(key)
            raise RateLimited(int(retry) + 1)

    async def ensure_all_below(self, limits: Sequence[tuple[str, int]]) -> list[int]:
        """`ensure_below` for several `(key, limit)` pairs read in one round trip (a check made
        on every request, as /rest's is); returns the keys' counts."""
        keys = [key for key, _ in limits]
        try:
            raw = await self.kv.mget(keys)
        except KVUnavailable:
            raw = [await self.local.get(key) for key in keys]
        counts = [int(value) if value is not None else 0 for value in raw]
        for (key, limit), count in zip(limits, counts, strict=True):
            if count >= limit:
                await self.ensure_below(key, limit)  # raises, with the window's time left
        return counts

    async def hit(self, key: str, window: float) -> int:
        """Count one event in `key`'s window; returns the count."""
        try:
            count, _ = await self.kv.incr(key, window)
        except KVUnavailable:
            count, _ = await self.local.incr(key, window)
        return count

    async def reset(self, key: str) -> None:
        with contextlib.suppress(KVUnavailable):
            await self.kv.delete(key)
        await self.local.delete(key)
