"""Key-value store port: Redis, or an in-process equivalent for a single process.

Used for login rate limits, cached authentication state and (later) the read cache. Every key is
prefixed with the namespace. When Redis fails, operations raise `KVUnavailable` at once for a short
cool-down instead of stalling each request on a timeout, and deletions that could not be sent are
retried as soon as Redis answers again, so a stale entry cannot outlive an invalidation.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.config import Config

log = logging.getLogger(__name__)


class KVUnavailable(Exception):
    """The key-value store cannot be reached right now."""


class KeyValue(Protocol):
    """What Sonora asks of a key-value store."""

    name: str

    async def get(self, key: str) -> bytes | None: ...
    async def mget(self, keys: list[str]) -> list[bytes | None]: ...
    async def set(self, key: str, value: bytes, ttl: float) -> None: ...
    async def add(self, key: str, value: bytes, ttl: float) -> bool: ...
    async def get_or_add(self, key: str, lock: str, value: bytes, ttl: float
                         ) -> tuple[bytes | None, bool]: ...
    async def set_if_held(self, key: str, value: bytes, ttl: float, lock: str, token: bytes
                          ) -> bool: ...
    async def delete(self, *keys: str) -> None: ...
    async def incr(self, key: str, ttl: float) -> tuple[int, float]: ...
    async def delete_and_incr(self, deletes: Sequence[str], incrs: Sequence[str], ttl: float
                              ) -> None: ...
    async def ttl(self, key: str) -> float: ...
    async def hash_put(self, key: str, field: str, value: bytes, ttl: float) -> None: ...
    async def hash_all(self, key: str) -> dict[str, bytes]: ...
    async def hash_drop(self, key: str, *fields: str) -> None: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...
    async def publish(self, message: bytes) -> None: ...
    def listen(self, callback: Listener) -> None: ...
    @property
    def listening(self) -> bool: ...


# Called with each broadcast message, or with None when messages may have been missed.
Listener = Callable[[bytes | None], None]


class MemoryKV:
    """In-process store with expiry; the same contract as RedisKV, for one process."""

    name = "memory"

    def __init__(self, namespace: str = "sonora") -> None:
        self.prefix = namespace + ":"
        self._data: dict[str, tuple[bytes, float]] = {}
        self._expiry: list[tuple[float, str]] = []
        self._lock = asyncio.Lock()
        self._listeners: list[Listener] = []
        self._hashes: dict[str, tuple[dict[str, bytes], float]] = {}

    def _now(self) -> float:
        return time.monotonic()

    def _live(self, key: str) -> tuple[bytes, float] | None:
        item = self._data.get(self.prefix + key)
        if item is None:
            return None
        if item[1] <= self._now():
            del self._data[self.prefix + key]
            return None
        return item

    def _sweep(self) -> None:
        now = self._now()
        while self._expiry and self._expiry[0][0] <= now:
            _, full = heapq.heappop(self._expiry)
            item = self._data.get(full)
            if item is not None and item[1] <= now:
                del self._data[full]

    def _put(self, key: str, value: bytes, ttl: float) -> None:
        expires = self._now() + ttl
        self._data[self.prefix + key] = (value, expires)
        heapq.heappush(self._expiry, (expires, self.prefix + key))
        self._sweep()

    async def get(self, key: str) -> bytes | None:
        item = self._live(key)
        return item[0] if item else None

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        return [await self.get(k) for k in keys]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._put(key, value, ttl)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        self._put(key, value, ttl)
        return True

    async def get_or_add(self, key: str, lock: str, value: bytes, ttl: float
                         ) -> tuple[bytes | None, bool]:
        """`key`'s value, or (None, whether `lock` was added): a cache miss taking its loader's
        lock in the same step."""
        found = await self.get(key)
        if found is not None:
            return found, False
        return None, await self.add(lock, value, ttl)

    async def set_if_held(self, key: str, value: bytes, ttl: float, lock: str, token: bytes
                          ) -> bool:
        """Set `key` and release `lock` only while `lock` still holds `token` (a cache fill
        whose entry was not invalidated meanwhile: an invalidation drops the lock too)."""
        held = self._live(lock)
        if held is None or held[0] != token:
            return False
        self._put(key, value, ttl)
        await self.delete(lock)
        return True

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(self.prefix + key, None)

    async def incr(self, key: str, ttl: float) -> tuple[int, float]:
        item = self._live(key)
        if item is None:
            self._put(key, b"1", ttl)
            return 1, ttl
        value = int(item[0]) + 1
        self._data[self.prefix + key] = (str(value).encode(), item[1])
        return value, max(0.0, item[1] - self._now())

    async def delete_and_incr(self, deletes: Sequence[str], incrs: Sequence[str], ttl: float
                              ) -> None:
        """Delete some keys and count others up (as `incr`), at once."""
        await self.delete(*deletes)
        for key in incrs:
            await self.incr(key, ttl)

    async def ttl(self, key: str) -> float:
        item = self._live(key)
        return max(0.0, item[1] - self._now()) if item else 0.0

    async def hash_put(self, key: str, field: str, value: bytes, ttl: float) -> None:
        """Set one field of a hash; the whole hash expires `ttl` after its last write."""
        live = self._hash(key)
        live[field] = value
        self._hashes[self.prefix + key] = (live, self._now() + ttl)

    async def hash_all(self, key: str) -> dict[str, bytes]:
        return dict(self._hash(key))

    async def hash_drop(self, key: str, *fields: str) -> None:
        live = self._hash(key)
        for field in fields:
            live.pop(field, None)

    def _hash(self, key: str) -> dict[str, bytes]:
        item = self._hashes.get(self.prefix + key)
        if item is None or item[1] <= self._now():
            self._hashes.pop(self.prefix + key, None)
            return {}
        return item[0]

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()
        self._hashes.clear()

    async def publish(self, message: bytes) -> None:
        """One process: tell this process's listeners."""
        for callback in list(self._listeners):
            callback(message)

    def listen(self, callback: Listener) -> None:
        """One process: every change is made here, so nothing can be missed."""
        self._listeners.append(callback)

    @property
    def listening(self) -> bool:
        return True


# {1, KEYS[1]'s value}, or {0, whether KEYS[2] was set (NX, PX ARGV[2]) to ARGV[1]}.
GET_OR_ADD = """
local found = redis.call('GET', KEYS[1])
if found then return {1, found} end
if redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX') then return {0, 1} end
return {0, 0}
"""

# While KEYS[1] holds ARGV[1]: KEYS[2] set to ARGV[2] (PX ARGV[3]) and KEYS[1] deleted; 1 if done.
SET_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class RedisKV:
    """Redis through redis.asyncio, with short timeouts and a cool-down after a failure."""

    name = "redis"
    COOL_DOWN = 1.0

    def __init__(self, url: str, namespace: str = "sonora", timeout: float = 0.5) -> None:
        self.prefix = namespace + ":"
        # One quick retry and half-second timeouts: the defaults stall for seconds when Redis is gone.
        # A bounded pool that makes a burst wait briefly for a connection, rather than failing
        # past redis-py's default limit of 100 (which would put the store on cool-down).
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=timeout * 4,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=15,
        )
        self.client = aioredis.Redis.from_pool(pool)  # the client owns (and closes) the pool
        self._get_or_add = self.client.register_script(GET_OR_ADD)
        self._set_if_held = self.client.register_script(SET_IF_HELD)
        self._down_until = 0.0
        self._pending_deletes: set[str] = set()
        self.channel = namespace + ":broadcast"
        self._listener: asyncio.Task[None] | None = None
        self._listening = False

    def _check(self) -> None:
        if time.monotonic() < self._down_until:
            raise KVUnavailable("redis is cooling down after a failure")

    def _failed(self, exc: BaseException) -> KVUnavailable:
        if self._down_until < time.monotonic():
            log.warning("redis unavailable: %s", exc)
        self._down_until = time.monotonic() + self.COOL_DOWN
        return KVUnavailable(str(exc))

    @contextlib.asynccontextmanager
    async def _command(self, flush: bool = True) -> AsyncIterator[None]:
        """Around one command: refused at once while cooling down, pending deletions sent first
        (`flush`), and a Redis failure turned into `KVUnavailable` (starting the cool-down)."""
        self._check()
        try:
            if flush:
                await self._flush_pending()
            yield
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc

    async def _flush_pending(self) -> None:
        if self._pending_deletes:
            keys = list(self._pending_deletes)
            await self.client.delete(*keys)
            self._pending_deletes.difference_update(keys)

    async def get(self, key: str) -> bytes | None:
        async with self._command():
            value = await self.client.get(self.prefix + key)
            return value.encode() if isinstance(value, str) else value

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        async with self._command():
            values = await self.client.mget([self.prefix + k for k in keys])
            return [v if v is None or isinstance(v, bytes) else v.encode() for v in values]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        async with self._command():
            await self.client.set(self.prefix + key, value, px=max(1, int(ttl * 1000)))

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        async with self._command():
            done = await self.client.set(
                self.prefix + key, value, px=max(1, int(ttl * 1000)), nx=True
            )
            return bool(done)

    async def get_or_add(self, key: str, lock: str, value: bytes, ttl: float
                         ) -> tuple[bytes | None, bool]:
        """`key`'s value, or (None, whether `lock` was added): a cache miss takes its loader's
        lock in the same round trip (a script: the lock is taken only when the key is absent)."""
        async with self._command():
            hit, answer = await self._get_or_add(
                keys=[self.prefix + key, self.prefix + lock],
                args=[value, max(1, int(ttl * 1000))])
            return (bytes(answer), False) if hit else (None, bool(answer))

    async def set_if_held(self, key: str, value: bytes, ttl: float, lock: str, token: bytes
                          ) -> bool:
        """Set `key` and release `lock` only while `lock` still holds `token`, in one round
        trip (a script): a cache fill whose entry was invalidated meanwhile (an invalidation
        drops the lock too) stores nothing."""
        async with self._command():
            done = await self._set_if_held(keys=[self.prefix + lock, self.prefix + key],
                                           args=[token, value, max(1, int(ttl * 1000))])
            return bool(done)

    async def delete(self, *keys: str) -> None:
        """Delete keys; when Redis is down the deletion is kept and sent once it answers again."""
        full = [self.prefix + k for k in keys]
        if time.monotonic() < self._down_until:
            self._pending_deletes.update(full)
            raise KVUnavailable("redis is cooling down after a failure")
        try:
            await self.client.delete(*full)
            await self._flush_pending()
        except (RedisError, OSError) as exc:
            self._pending_deletes.update(full)
            raise self._failed(exc) from exc

    async def incr(self, key: str, ttl: float) -> tuple[int, float]:
        full = self.prefix + key
        async with self._command():
            # SET NX PX opens the window; INCR keeps its expiry. (PEXPIRE NX needs Redis 7.)
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(full, 0, px=max(1, int(ttl * 1000)), nx=True)
                pipe.incr(full)
                pipe.pttl(full)
                _, value, remaining = await pipe.execute()
            return int(value), max(0.0, remaining / 1000)

    async def delete_and_incr(self, deletes: Sequence[str], incrs: Sequence[str], ttl: float
                              ) -> None:
        """Delete some keys and count others up (as `incr`) in one round trip, as a write's
        cache invalidation does; when Redis is down the deletions are kept as `delete` keeps
        them (the counts are the caller's to retry)."""
        full = [self.prefix + k for k in deletes]
        if time.monotonic() < self._down_until:
            self._pending_deletes.update(full)
            raise KVUnavailable("redis is cooling down after a failure")
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                if full:
                    pipe.delete(*full)
                for key in incrs:
                    pipe.set(self.prefix + key, 0, px=max(1, int(ttl * 1000)), nx=True)
                    pipe.incr(self.prefix + key)
                await pipe.execute()
            await self._flush_pending()
        except (RedisError, OSError) as exc:
            self._pending_deletes.update(full)
            raise self._failed(exc) from exc

    async def ttl(self, key: str) -> float:
        async with self._command(flush=False):
            remaining = await self.client.pttl(self.prefix + key)
            return max(0.0, remaining / 1000)

    async def hash_put(self, key: str, field: str, value: bytes, ttl: float) -> None:
        """Set one field of a hash; the whole hash expires `ttl` after its last write (fields
        carry no expiry of their own before Redis 7.4: callers keep theirs in the value)."""
        full = self.prefix + key
        async with self._command(), self.client.pipeline(transaction=True) as pipe:
            pipe.hset(full, field, value)
            pipe.pexpire(full, max(1, int(ttl * 1000)))
            await pipe.execute()

    async def hash_all(self, key: str) -> dict[str, bytes]:
        async with self._command():
            found = await self.client.hgetall(self.prefix + key)
            return {(k.decode() if isinstance(k, bytes) else str(k)):
                    (v if isinstance(v, bytes) else str(v).encode()) for k, v in found.items()}

    async def hash_drop(self, key: str, *fields: str) -> None:
        if not fields:
            return
        async with self._command():
            await self.client.hdel(self.prefix + key, *fields)

    async def ping(self) -> bool:
        try:
            await self.client.ping()
            self._down_until = 0.0
            await self._flush_pending()
            return True
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return False

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            # Bounded: closing a subscription over a dead connection must not hold up shutdown.
            await asyncio.wait([self._listener], timeout=2.0)
            self._listener = None
        closing = asyncio.ensure_future(self.client.aclose())
        done, _ = await asyncio.wait([closing], timeout=2.0)
        if not done:
            closing.cancel()

    async def publish(self, message: bytes) -> None:
        """Broadcast to every process listening on this namespace (pub/sub, fire and forget)."""
        async with self._command(flush=False):
            await self.client.publish(self.channel, message)

    @property
    def listening(self) -> bool:
        """Whether broadcasts reach this process right now (the subscription is up)."""
        return self._listening

    def listen(self, callback: Listener) -> None:
        """Deliver every broadcast to `callback`; while the subscription is down (and once when it
        comes back) `callback(None)` says messages may have been missed."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(callback), name="redis-broadcast")

    async def _listen(self, callback: Listener) -> None:
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                callback(None)  # whatever was broadcast before this point was missed
                self._listening = True
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None and isinstance(message.get("data"), bytes):
                        callback(message["data"])
            except (RedisError, OSError):
                if self._listening:
                    log.warning("redis broadcast subscription lost; local cache off until it is back")
            finally:
                self._listening = False
                callback(None)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)
            await asyncio.sleep(1.0)


def make_kv(url: str, namespace: str) -> KeyValue:
    """The configured store: Redis when a URL is set, otherwise the in-process one."""
    return RedisKV(url, namespace) if url else MemoryKV(namespace)


@contextlib.asynccontextmanager
async def kv_context(config: Config, *, warn_if_down: bool = False) -> AsyncIterator[KeyValue]:
    """The configured store for the block, closed after it. `warn_if_down` says at once when
    Redis is not answering (the store runs degraded until it does)."""
    kv = make_kv(config.redis_url, config.namespace)
    try:
        if warn_if_down and not await kv.ping():
            log.warning("Redis at SONORA_REDIS_URL is not answering; running degraded until it does")
        yield kv
    finally:
        await kv.close()
