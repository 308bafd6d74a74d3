"""Read-through cache over the key-value store (Redis, or in-process).

- TTLs carry jitter, so entries loaded together do not expire together.
- One loader per key on a miss: concurrent misses in this process wait for the first loader, and
  other processes wait briefly on a short `lock:` key before loading themselves. A miss reads and
  takes that lock in one round trip; the loaded value is stored (and the lock released) in the
  background, after it is answered, and only while the lock is still its own: an invalidation
  drops an entry's lock with it, so a value read before a write is never stored after it.
- Writes invalidate after commit by deleting keys; lists are grouped under a generation counter
  that a write increments, so no key is ever enumerated (no `KEYS`).
- When the store is down the loader runs directly: slower, never wrong.
- A small in-process copy (L1) of what was read lately answers the hottest reads without a round
  trip. It is used only while this process hears the store's broadcasts: every invalidation and
  generation bump is broadcast before the write's answer is sent, and a process that may have
  missed one (subscription down) drops its whole L1 and reads through until it listens again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from app.adapters.kv import KeyValue, KVUnavailable

log = logging.getLogger(__name__)
Loader = Callable[[], Awaitable[Any]]
MISSING = b"\x00none"


LOCAL_TTL = 10.0
GEN_TTL = 30 * 24 * 3600  # a list group's generation counter outlives any entry made under it
LOCAL_MAX = 20_000


def _encode(value: Any) -> bytes:
    # orjson: several times json's speed, the same JSON (keys that are not strings become
    # strings, as json.dumps makes them; non-ASCII text is written as UTF-8, not escaped).
    return MISSING if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def _decode(raw: bytes) -> Any:
    return None if raw == MISSING else orjson.loads(raw)


class Cache:
    def __init__(self, kv: KeyValue, jitter: float = 0.1, lock_ttl: float = 5.0,
                 local: bool = True) -> None:
        self.kv = kv
        self.jitter = jitter
        self.lock_ttl = lock_ttl
        self.local = local
        self._inflight: dict[str, asyncio.Future[bytes]] = {}
        self._stores: set[asyncio.Task[None]] = set()
        self._dropped: set[str] = set()  # loading here while invalidated: not to be kept
        self._pending_bumps: set[str] = set()
        self._l1: dict[str, tuple[float, bytes]] = {}
        self._gens: dict[str, int] = {}
        self._started = False

    def start(self) -> None:
        """Listen to the store's broadcasts so the L1 copy can be used (needs a running loop)."""
        if self.local:
            self.kv.listen(self._on_broadcast)
            self._started = True

    def _on_broadcast(self, message: bytes | None) -> None:
        if message is None:
            self._l1.clear()
            self._gens.clear()
            return
        try:
            keys = json.loads(message)
        except ValueError:
            self._l1.clear()
            self._gens.clear()
            return
        for key in keys:
            if key.startswith("gen:"):
                self._gens.pop(key[4:], None)
            else:
                self._l1.pop(key, None)
                if key in self._inflight:
                    self._dropped.add(key)

    def _l1_usable(self) -> bool:
        return self._started and self.kv.listening

    def _remember(self, key: str, raw: bytes) -> None:
        if self._l1_usable():
            if len(self._l1) >= LOCAL_MAX:
                self._l1.clear()
            self._l1[key] = (time.monotonic() + LOCAL_TTL, raw)

    def _ttl(self, ttl: float) -> float:
        return ttl * (1 + random.uniform(-self.jitter, self.jitter))

    async def get_or_load(self, key: str, loader: Loader, ttl: float = 300.0) -> Any:
        """The cached JSON value of `key`, or the loader's result (stored for next time).
        A loader returning None is cached as a miss too (briefly), so unknown ids stay cheap."""
        return _decode(await self.get_raw(key, loader, ttl))

    async def get_raw(self, key: str, loader: Loader, ttl: float = 300.0) -> bytes:
        """Like get_or_load, as the JSON bytes (a handler can send them as they are)."""
        if self._l1_usable():
            hit = self._l1.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:  # this process is reading it already: one read for all
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await self._fetch(key, loader, ttl)
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

    async def _fetch(self, key: str, loader: Loader, ttl: float) -> bytes:
        """The stored value, or the loader's: a miss takes the key's lock in the same round trip
        as the read, and the value is stored (and the lock released) after it is answered."""
        lock = "lock:" + key
        token = secrets.token_bytes(8)
        try:
            raw, got_lock = await self.kv.get_or_add("c:" + key, lock, token, self.lock_ttl)
            if raw is not None:
                self._remember(key, raw)
                return raw
            if not got_lock:
                # Another process is loading: wait a little for its value rather than pile on.
                for _ in range(20):
                    await asyncio.sleep(0.01)
                    raw = await self.kv.get("c:" + key)
                    if raw is not None:
                        return raw
        except KVUnavailable:
            return _encode(await loader())
        self._dropped.discard(key)
        value = await loader()
        payload = _encode(value)
        if key in self._dropped:  # invalidated while loading: answered, not kept anywhere
            self._dropped.discard(key)
            return payload
        keep = self._ttl(ttl if value is not None else min(ttl, 30))
        self._remember(key, payload)
        task = asyncio.create_task(self._store(key, payload, keep, token if got_lock else None))
        self._stores.add(task)
        task.add_done_callback(self._stores.discard)
        return payload

    async def _store(self, key: str, payload: bytes, keep: float, token: bytes | None) -> None:
        """Keep a loaded value and release its lock (one round trip), off the answer's path,
        only while the lock is still this load's: an invalidation since (in any process)
        dropped the lock, and then the value, read before the write, is not kept."""
        try:
            if token is not None:
                await self.kv.set_if_held("c:" + key, payload, keep, "lock:" + key, token)
            else:
                await self.kv.set("c:" + key, payload, keep)
        except KVUnavailable:
            pass  # not kept: the next read loads again (the lock expires by itself)

    async def settle(self) -> None:
        """Wait for the values being stored (tests; a shutdown that wants them kept)."""
        while self._stores:
            await asyncio.gather(*list(self._stores), return_exceptions=True)

    async def invalidate(self, *keys: str) -> None:
        """Drop entries after a commit; when the store is down the deletion is sent on recovery."""
        await self.changed(keys, ())

    async def generation(self, group: str) -> int:
        """The current generation of a group of list entries (part of their keys)."""
        if self._l1_usable() and not self._pending_bumps and group in self._gens:
            return self._gens[group]
        try:
            if self._pending_bumps:
                for pending in list(self._pending_bumps):
                    await self.kv.incr("gen:" + pending, GEN_TTL)
                    self._pending_bumps.discard(pending)
            raw = await self.kv.get("gen:" + group)
        except KVUnavailable:
            return -1
        gen = int(raw) if raw is not None else 0
        if self._l1_usable():
            self._gens[group] = gen
        return gen

    async def bump(self, *groups: str) -> None:
        """Start a new generation: every list entry of the group is missed from now on."""
        await self.changed((), groups)

    async def peek(self, key: str) -> bytes | None:
        """A value kept with `keep` (None when absent or the store is down): for figures that
        are worth remembering but cannot be loaded on demand."""
        try:
            return await self.kv.get("c:" + key)
        except KVUnavailable:
            return None

    async def keep(self, key: str, value: bytes, ttl: float) -> None:
        """Remember `value` under `key` for `ttl` seconds (nothing when the store is down)."""
        try:
            await self.kv.set("c:" + key, value, self._ttl(ttl))
        except KVUnavailable:
            pass

    async def changed(self, keys: Sequence[str], groups: Sequence[str]) -> None:
        """After a commit: drop the entries `keys` and start a new generation of each list
        group, in one round trip to the store and one broadcast (`invalidate` and `bump` are
        its halves)."""
        if not keys and not groups:
            return
        for key in keys:
            self._l1.pop(key, None)
            if key in self._inflight:
                self._dropped.add(key)
        for group in groups:
            self._gens.pop(group, None)
        try:
            # A fill's lock goes with its entry: a value read before this write is not stored.
            await self.kv.delete_and_incr(
                [*("c:" + k for k in keys), *("lock:" + k for k in keys)],
                ["gen:" + g for g in groups], GEN_TTL)
        except KVUnavailable:
            # The store keeps the deletions; the bumps are sent before the next generation read.
            self._pending_bumps.update(groups)
            log.info("cache invalidation of %d key(s) deferred until the store answers", len(keys))
            return
        try:
            await self.kv.publish(json.dumps([*keys, *("gen:" + g for g in groups)]).encode())
        except KVUnavailable:
            pass

    async def list_key(self, group: str, *parts: Any) -> str | None:
        """A key for a list entry in the current generation; None when the store is down."""
        gen = await self.generation(group)
        if gen < 0:
            return None
        return f"{group}:{gen}:" + ":".join(str(p) for p in parts)
