"""Read-through cache over the key-value store (Redis, or in-process).

- TTLs carry jitter, so entries loaded together do not expire together.
- One loader per key on a miss: concurrent misses in this process wait for the first loader, and
  other processes wait briefly on a short `lock:` key before loading themselves.
- Writes invalidate after commit by deleting keys; lists are grouped under a generation counter
  that a write increments, so no key is ever enumerated (no `KEYS`).
- When the store is down the loader runs directly: slower, never wrong.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from app.adapters.kv import KeyValue, KVUnavailable

log = logging.getLogger(__name__)
Loader = Callable[[], Awaitable[Any]]
MISSING = b"\x00none"


class Cache:
    def __init__(self, kv: KeyValue, jitter: float = 0.1, lock_ttl: float = 5.0) -> None:
        self.kv = kv
        self.jitter = jitter
        self.lock_ttl = lock_ttl
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._pending_bumps: set[str] = set()

    def _ttl(self, ttl: float) -> float:
        return ttl * (1 + random.uniform(-self.jitter, self.jitter))

    async def get_or_load(self, key: str, loader: Loader, ttl: float = 300.0) -> Any:
        """The cached JSON value of `key`, or the loader's result (stored for next time).
        A loader returning None is cached as a miss too (briefly), so unknown ids stay cheap."""
        try:
            raw = await self.kv.get("c:" + key)
        except KVUnavailable:
            return await loader()
        if raw is not None:
            return None if raw == MISSING else json.loads(raw)
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await self._load(key, loader, ttl)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved here, so an unawaited future never warns
            raise
        else:
            future.set_result(value)
            return value
        finally:
            self._inflight.pop(key, None)

    async def _load(self, key: str, loader: Loader, ttl: float) -> Any:
        lock = "lock:" + key
        try:
            got_lock = await self.kv.add(lock, b"1", self.lock_ttl)
            if not got_lock:
                # Another process is loading: wait a little for its value rather than pile on.
                for _ in range(20):
                    await asyncio.sleep(0.01)
                    raw = await self.kv.get("c:" + key)
                    if raw is not None:
                        return None if raw == MISSING else json.loads(raw)
        except KVUnavailable:
            return await loader()
        value = await loader()
        try:
            payload = MISSING if value is None else json.dumps(value, separators=(",", ":")).encode()
            await self.kv.set("c:" + key, payload, self._ttl(ttl if value is not None else min(ttl, 30)))
            if got_lock:
                await self.kv.delete(lock)
        except KVUnavailable:
            pass
        return value

    async def invalidate(self, *keys: str) -> None:
        """Drop entries after a commit; when the store is down the deletion is sent on recovery."""
        if not keys:
            return
        try:
            await self.kv.delete(*("c:" + k for k in keys))
        except KVUnavailable:
            log.info("cache invalidation of %d key(s) deferred until the store answers", len(keys))

    async def generation(self, group: str) -> int:
        """The current generation of a group of list entries (part of their keys)."""
        try:
            if self._pending_bumps:
                for pending in list(self._pending_bumps):
                    await self.kv.incr("gen:" + pending, 30 * 24 * 3600)
                    self._pending_bumps.discard(pending)
            raw = await self.kv.get("gen:" + group)
        except KVUnavailable:
            return -1
        return int(raw) if raw is not None else 0

    async def bump(self, *groups: str) -> None:
        """Start a new generation: every list entry of the group is missed from now on."""
        for group in groups:
            try:
                await self.kv.incr("gen:" + group, 30 * 24 * 3600)
            except KVUnavailable:
                # Sent before the next generation read; meanwhile lists are read uncached.
                self._pending_bumps.add(group)

    async def list_key(self, group: str, *parts: Any) -> str | None:
        """A key for a list entry in the current generation; None when the store is down."""
        gen = await self.generation(group)
        if gen < 0:
            return None
        return f"{group}:{gen}:" + ":".join(str(p) for p in parts)
