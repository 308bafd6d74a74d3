"""Fixed-window counters in the key-value store, with an in-process stand-in when it is down."""

from __future__ import annotations

import contextlib

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
