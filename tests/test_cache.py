"""The read-through cache over both stores (real Redis in a namespace of its own, and the
in-process store): one loader per key however many ask at once, in one process or across two
(two Cache objects over one store stand for two web processes), values kept for the next reader,
misses cached, a failing loader failing every waiter, and Redis down meaning the loader answers."""

from __future__ import annotations

import asyncio
import gc
import secrets
from collections.abc import AsyncIterator

import pytest
from conftest import REDIS_URL

from app.adapters.cache import Cache
from app.adapters.kv import KeyValue, MemoryKV, RedisKV


@pytest.fixture(params=["redis", "memory"])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[KeyValue]:
    namespace = f"cachetest_{secrets.token_hex(4)}"
    store: KeyValue = RedisKV(REDIS_URL, namespace) if request.param == "redis" else MemoryKV(namespace)
    yield store
    await store.close()
    gc.collect()


class Loader:
    """Counts its calls; each call waits a little, so many askers overlap it."""

    def __init__(self, value: object, delay: float = 0.05) -> None:
        self.value, self.delay, self.calls = value, delay, 0

    async def __call__(self) -> object:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return self.value


async def test_two_hundred_askers_across_two_processes_load_a_key_once(kv: KeyValue) -> None:
    """200 concurrent misses of one key, half on each of two caches over one store: the first
    loads, its process's other askers share that load, the other process waits on the lock for
    the stored value. Nothing is loaded twice; every asker gets the value."""
    first, second = Cache(kv, local=False), Cache(kv, local=False)
    load = Loader({"title": "Harbour Lights", "ids": [1, 2, 3]})
    got = await asyncio.gather(*[(first if i % 2 else second).get_or_load("song:1", load)
                                 for i in range(200)])
    assert got == [{"title": "Harbour Lights", "ids": [1, 2, 3]}] * 200
    assert load.calls == 1
    await first.settle()
    await second.settle()
    # Kept for the next reader, and the loader's lock released.
    third = Cache(kv, local=False)
    assert await third.get_or_load("song:1", Loader("not this")) == {"title": "Harbour Lights",
                                                                      "ids": [1, 2, 3]}
    assert await kv.get("lock:song:1") is None


async def test_many_keys_at_once_each_load_once_and_are_kept(kv: KeyValue) -> None:
    """300 keys asked three times each, all at once: each loaded exactly once, all kept."""
    cache = Cache(kv, local=False)
    loads = {i: Loader({"id": i}, delay=0.01) for i in range(300)}
    got = await asyncio.gather(*[cache.get_or_load(f"album:{i}", loads[i])
                                 for _ in range(3) for i in range(300)])
    assert got == [{"id": i} for _ in range(3) for i in range(300)]
    assert {load.calls for load in loads.values()} == {1}
    await cache.settle()
    assert await kv.mget([f"c:album:{i}" for i in range(300)]) == [
        b'{"id":%d}' % i for i in range(300)]


async def test_a_miss_is_cached_and_an_invalidation_reloads(kv: KeyValue) -> None:
    cache = Cache(kv, local=False)
    missing = Loader(None)
    assert await cache.get_or_load("song:404", missing) is None
    await cache.settle()
    assert await cache.get_or_load("song:404", missing) is None
    assert missing.calls == 1
    load = Loader({"v": 1})
    await cache.get_or_load("song:5", load)
    await cache.settle()
    await cache.invalidate("song:5")
    load.value = {"v": 2}
    assert await cache.get_or_load("song:5", load) == {"v": 2}
    assert load.calls == 2
    await cache.settle()


async def test_a_failing_loader_fails_every_waiter_and_keeps_nothing(kv: KeyValue) -> None:
    cache = Cache(kv, local=False)

    async def broken() -> object:
        await asyncio.sleep(0.02)
        raise RuntimeError("database gone")

    results = await asyncio.gather(*[cache.get_or_load("song:7", broken) for _ in range(20)],
                                   return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    await cache.settle()
    assert await kv.get("c:song:7") is None
    # The next reader in this process loads again (its own lock is still held: it waits for
    # a value that does not come, then loads itself).
    assert await cache.get_or_load("song:7", Loader({"ok": True}, delay=0)) == {"ok": True}
    await cache.settle()


async def test_a_value_read_before_a_write_is_not_kept_after_it(kv: KeyValue) -> None:
    """A load that read the old row, then a write's invalidation (here from another process,
    and in this process), then the load's store: the old value is answered to its asker but
    never kept, so the next read loads the new one."""
    for invalidator in ("other process", "this process"):
        cache, other = Cache(kv, local=False), Cache(kv, local=False)
        read, release = asyncio.Event(), asyncio.Event()

        async def slow_old(read: asyncio.Event = read, release: asyncio.Event = release) -> object:
            read.set()
            await release.wait()
            return {"title": "old"}

        asking = asyncio.create_task(cache.get_or_load("album:9", slow_old))
        await read.wait()
        await (other if invalidator == "other process" else cache).invalidate("album:9")
        release.set()
        assert await asking == {"title": "old"}
        await cache.settle()
        assert await kv.get("c:album:9") is None, invalidator
        assert await cache.get_or_load("album:9", Loader({"title": "new"}, delay=0)) == {
            "title": "new"}
        await cache.settle()
        assert await Cache(kv, local=False).get_or_load("album:9", Loader("unused")) == {
            "title": "new"}
        await cache.invalidate("album:9")


async def test_redis_down_means_the_loader_answers() -> None:
    down = RedisKV("redis://127.0.0.1:1/0", f"cachetest_{secrets.token_hex(4)}", timeout=0.2)
    try:
        cache = Cache(down, local=False)
        load = Loader({"fresh": True}, delay=0)
        assert await cache.get_or_load("song:1", load) == {"fresh": True}
        assert await cache.get_or_load("song:1", load) == {"fresh": True}
        assert load.calls == 2
        await cache.settle()
    finally:
        await down.close()
