"""The key-value contract, run on both RedisKV (real Redis, a namespace of its own) and MemoryKV;
then RedisKV's behaviour when Redis goes away behind a cut proxy."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from conftest import REDIS_URL
from tcpproxy import TcpProxy

from app.adapters.kv import KeyValue, KVUnavailable, MemoryKV, RedisKV


def _ns() -> str:
    return f"kvtest_{secrets.token_hex(4)}"


@pytest.fixture(params=["redis", "memory"])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[KeyValue]:
    store: KeyValue = RedisKV(REDIS_URL, _ns()) if request.param == "redis" else MemoryKV(_ns())
    yield store
    await store.close()


async def test_get_set_and_expiry(kv: KeyValue) -> None:
    assert await kv.get("a") is None
    await kv.set("a", b"one", 0.3)
    assert await kv.get("a") == b"one"
    assert 0 < await kv.ttl("a") <= 0.3
    await kv.set("a", b"two", 10)
    assert await kv.get("a") == b"two"
    await kv.set("short", b"x", 0.1)
    await asyncio.sleep(0.25)
    assert await kv.get("short") is None
    assert await kv.ttl("short") == 0.0
    assert await kv.ttl("never-set") == 0.0


async def test_add_only_when_absent(kv: KeyValue) -> None:
    assert await kv.add("lock", b"first", 10) is True
    assert await kv.add("lock", b"second", 10) is False
    assert await kv.get("lock") == b"first"
    await kv.set("brief", b"x", 0.1)
    await asyncio.sleep(0.25)
    assert await kv.add("brief", b"again", 10) is True  # an expired key counts as absent
    assert await kv.get("brief") == b"again"


async def test_get_or_add_reads_a_value_or_takes_the_lock(kv: KeyValue) -> None:
    """A present key answers its value and leaves the lock alone; an absent one takes the lock
    once (a second asker is refused it), and nothing else is written."""
    await kv.set("goa:key", b"value", 30)
    assert await kv.get_or_add("goa:key", "goa:lock", b"1", 5) == (b"value", False)
    assert await kv.get("goa:lock") is None
    assert await kv.get_or_add("goa:gone", "goa:lock", b"1", 5) == (None, True)
    assert await kv.get("goa:lock") == b"1" and 0 < await kv.ttl("goa:lock") <= 5
    assert await kv.get_or_add("goa:gone", "goa:lock", b"1", 5) == (None, False)
    assert await kv.get("goa:gone") is None
    await kv.set("goa:empty", b"", 30)  # an empty value is a value, not a miss
    assert await kv.get_or_add("goa:empty", "goa:lock2", b"1", 5) == (b"", False)


async def test_incr_counts_within_a_fixed_window(kv: KeyValue) -> None:
    count, remaining = await kv.incr("hits", 0.4)
    assert count == 1 and 0 < remaining <= 0.4
    count, remaining = await kv.incr("hits", 100)  # the window is not extended by later hits
    assert count == 2 and remaining <= 0.4
    assert (await kv.incr("hits", 100))[0] == 3
    assert await kv.get("hits") == b"3"
    await asyncio.sleep(0.5)
    count, remaining = await kv.incr("hits", 5)
    assert count == 1 and 4 < remaining <= 5


async def test_mget_and_delete(kv: KeyValue) -> None:
    await kv.set("k1", b"1", 10)
    await kv.set("k3", b"3", 10)
    assert await kv.mget(["k1", "k2", "k3"]) == [b"1", None, b"3"]
    await kv.delete("k1", "k2", "k3")
    assert await kv.mget(["k1", "k2", "k3"]) == [None, None, None]
    await kv.delete("nothing-here")  # deleting a missing key is fine
    assert await kv.ping() is True


async def test_namespaces_are_isolated(kv: KeyValue) -> None:
    other: KeyValue = RedisKV(REDIS_URL, _ns()) if isinstance(kv, RedisKV) else MemoryKV(_ns())
    try:
        await kv.set("shared", b"mine", 10)
        assert await other.get("shared") is None
        await other.set("shared", b"theirs", 10)
        await other.delete("shared")
        assert await kv.get("shared") == b"mine"
        assert (await other.incr("shared", 10))[0] == 1
        assert await kv.get("shared") == b"mine"
    finally:
        await other.close()


def _redis_target() -> tuple[str, int]:
    parts = urlsplit(REDIS_URL)
    return parts.hostname or "127.0.0.1", parts.port or 6379


async def test_redis_cut_fails_fast_then_cools_down() -> None:
    async with TcpProxy(*_redis_target()) as proxy:
        kv = RedisKV(proxy.url("redis", path="/0"), _ns())
        try:
            await kv.set("k", b"v", 30)
            proxy.cut("blackhole")  # the worst case: packets vanish, only timeouts fire
            started = time.monotonic()
            with pytest.raises(KVUnavailable):
                await kv.get("k")
            assert time.monotonic() - started < 2.0
            started = time.monotonic()
            for call in (kv.get("k"), kv.set("k", b"w", 1), kv.incr("n", 1), kv.mget(["k"])):
                with pytest.raises(KVUnavailable):
                    await call
            assert time.monotonic() - started < 0.1  # the cool-down answers without waiting
            assert await kv.ping() is False
        finally:
            proxy.restore()
            await kv.close()


async def test_redis_keeps_deletes_made_while_down_and_sends_them_after() -> None:
    async with TcpProxy(*_redis_target()) as proxy:
        ns = _ns()
        kv = RedisKV(proxy.url("redis", path="/0"), ns)
        direct = RedisKV(REDIS_URL, ns)  # sees Redis itself, not through the proxy
        try:
            await kv.set("stale", b"old", 30)
            await kv.set("stale3", b"old", 30)
            proxy.cut()
            with pytest.raises(KVUnavailable):
                await kv.delete("stale")
            with pytest.raises(KVUnavailable):
                await kv.delete("stale2")  # during the cool-down: kept too
            with pytest.raises(KVUnavailable):
                await kv.delete_and_incr(["stale3"], ["gen"], 30)  # a write's invalidation too
            assert await direct.get("stale") == b"old"  # not sent yet
            proxy.restore()
            await asyncio.sleep(RedisKV.COOL_DOWN + 0.1)
            # The first read after the outage sends the kept deletion before answering.
            assert await kv.get("stale") is None
            assert await direct.get("stale") is None and await direct.get("stale3") is None
            assert kv._pending_deletes == set()
        finally:
            await kv.close()
            await direct.close()


async def test_redis_ping_recovers_and_flushes() -> None:
    async with TcpProxy(*_redis_target()) as proxy:
        ns = _ns()
        kv = RedisKV(proxy.url("redis", path="/0"), ns)
        direct = RedisKV(REDIS_URL, ns)
        try:
            await kv.set("x", b"1", 30)
            proxy.cut()
            with pytest.raises(KVUnavailable):
                await kv.delete("x")
            proxy.restore()
            assert await kv.ping() is True  # health checks end the cool-down at once
            assert await direct.get("x") is None
            assert await kv.get("x") is None
        finally:
            await kv.close()
            await direct.close()


async def test_delete_and_incr_does_both_at_once(kv: KeyValue) -> None:
    """A write's cache invalidation: entries dropped and list generations counted up (each as
    `incr` counts, its window opened by the first), in one call."""
    await kv.set("entry-a", b"x", 10)
    await kv.set("entry-b", b"y", 10)
    await kv.set("kept", b"z", 10)
    await kv.delete_and_incr(["entry-a", "entry-b"], ["gen-1", "gen-2"], 0.5)
    assert await kv.mget(["entry-a", "entry-b", "kept"]) == [None, None, b"z"]
    assert [await kv.get("gen-1"), await kv.get("gen-2")] == [b"1", b"1"]
    await kv.delete_and_incr([], ["gen-1"], 100)  # the window is not extended
    assert await kv.get("gen-1") == b"2" and 0 < await kv.ttl("gen-1") <= 0.5
    await kv.delete_and_incr(["kept"], [], 10)
    assert await kv.get("kept") is None


async def test_set_if_held_stores_only_while_the_fill_holds_its_lock(kv: KeyValue) -> None:
    """A cache fill: the value stored with its expiry and the fill's lock released, in one call,
    while the lock holds the fill's token; once an invalidation dropped the lock (or another
    fill holds it), nothing is stored and another fill's lock is left alone."""
    assert await kv.get_or_add("entry", "lock:entry", b"token-1", 10) == (None, True)
    await kv.set("other", b"o", 10)
    assert await kv.set_if_held("entry", b"value", 0.5, "lock:entry", b"token-1")
    assert await kv.mget(["entry", "lock:entry", "other"]) == [b"value", None, b"o"]
    assert 0 < await kv.ttl("entry") <= 0.5
    await kv.delete("entry")
    assert await kv.get_or_add("entry", "lock:entry", b"token-2", 10) == (None, True)
    await kv.delete_and_incr(["entry", "lock:entry"], [], 10)  # a write's invalidation
    assert not await kv.set_if_held("entry", b"stale", 10, "lock:entry", b"token-2")
    assert await kv.get("entry") is None
    assert await kv.add("lock:entry", b"token-3", 10)  # another fill's
    assert not await kv.set_if_held("entry", b"stale", 10, "lock:entry", b"token-2")
    assert await kv.mget(["entry", "lock:entry"]) == [None, b"token-3"]
