"""The consumers under volume: hundreds of events in flight per consumer, a connection pool smaller
than the prefetch, on RabbitMQ and on the in-process bus. Nothing deadlocks because no handler
asks the pool for a second connection while it holds one (app.repos.db refuses it), and every effect
lands exactly once. Also: a nested acquire is refused, health reports a blocked consumer as
`degraded`, and a stop drains (or cancels) the handlers in flight."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from backbone_support import (
    audit_rows,
    dead_messages,
    emit_admin,
    processed,
    rabbit_bus,
    tag,
)
from conftest import REDIS_URL, Account, make_admin, make_audio, make_config, register, unique
from support import eventually

from app.adapters.bus import Bus, InProcessBus
from app.adapters.kv import make_kv
from app.adapters.search import make_search
from app.config import Config
from app.events import CatalogChanged, PlayRecorded, emit_many
from app.events.worker import Backbone, consumer_prefetch, start_backbone
from app.main import create_app
from app.repos.db import Database, NestedConnection
from app.web import keys

PER_CONSUMER = 300
POOL = 3
PREFETCH = 48  # per consumer: 16 times the pool


async def _post(client: TestClient, who: Account, path: str, body: dict[str, Any]) -> Any:
    resp = await client.post(path, json=body, headers=who.headers)
    assert resp.status in (200, 201, 202), await resp.text()
    return await resp.json()


async def _catalogue(client: TestClient, audio_dir: Any, artists: int) -> dict[str, Any]:
    """An admin, a member, a song and some artists, made through the API."""
    admin = await make_admin(client, await register(client))
    member = await register(client)
    word = unique("Vol")
    path = make_audio(audio_dir, "mp3", seconds=1.0, title=f"{word} Song", artist=f"{word} Band")
    song = await _post(client, admin, "/api/song",
                       {"file_base64": base64.b64encode(path.read_bytes()).decode()})
    made = await asyncio.gather(*(_post(client, admin, "/api/artist", {"name": f"{word} A{i}"})
                                  for i in range(artists)))
    return {"admin": admin, "member": member, "song": song, "artists": [a["id"] for a in made],
            "word": word}


async def _bulk(db: Database, setup: dict[str, Any], count: int) -> dict[str, list[str]]:
    """`count` events for each consumer, committed to the outbox in batches."""
    t = tag()
    ids = {"audit": await emit_admin(db, t, count, per_tx=25)}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    plays = [PlayRecorded(user_id=setup["member"].id, song_id=setup["song"]["id"],
                          play_id=f"{t}-{i}", played_ms=900, played_at=now) for i in range(count)]
    # Renamed in MySQL first: each artist event then refreshes the artist and its dependents.
    for artist_id in setup["artists"]:
        await db.execute("UPDATE artists SET name = CONCAT(name, ' Renamed') WHERE id = %s",
                         (artist_id,))
    catalog = [CatalogChanged("artist", setup["artists"][i % len(setup["artists"])], "upserted")
               if i % 3 else CatalogChanged("song", setup["song"]["id"], "upserted")
               for i in range(count)]
    ids["play_counts"], ids["search_index"] = [], []
    for start in range(0, count, 50):
        async with db.transaction() as tx:
            ids["play_counts"] += await emit_many(tx, list(plays[start:start + 50]))
            ids["search_index"] += await emit_many(tx, list(catalog[start:start + 50]))
    return ids


async def _published(db: Database, ids: list[str]) -> bool:
    marks = ", ".join(["%s"] * len(ids))
    left = await db.fetchval(
        f"SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND event_id IN ({marks})", ids)
    return int(left) == 0


async def _drain(config: Config, bus: Bus, ids: dict[str, list[str]]) -> dict[str, Any]:
    """Run every consumer over a pool of POOL with PREFETCH each until all `ids` are applied."""
    db = Database(config.database_url, maxsize=POOL)
    await db.connect()
    kv = make_kv(config.redis_url, config.namespace)
    backbone = await start_backbone(config, db, bus, run_consumers=True, kv=kv, prefetch=PREFETCH)
    peak: dict[str, int] = {}
    start = time.monotonic()
    try:
        async def done() -> bool:
            for item in (await backbone.sample())["items"]:
                peak[item["name"]] = max(peak.get(item["name"], 0), item["in_flight"])
            counts = [await processed(db, name, event_ids) for name, event_ids in ids.items()]
            return counts == [len(v) for v in ids.values()]

        await eventually(done, timeout=180, every=0.05)
        seconds = time.monotonic() - start
        # Every effect landed; the last handlers may still be returning (an effect is recorded
        # before its message is acknowledged), and search_index may still be on the events of
        # the set-up's renames: the report is taken once every consumer is idle.
        report: dict[str, Any] = {}

        async def idle() -> bool:
            report.update(await backbone.sample())
            return all(item["status"] == "idle" for item in report["items"])

        await eventually(idle, timeout=60, every=0.05)
    finally:
        await backbone.stop()
        await kv.close()
        await db.close()
    return {"seconds": seconds, "peak": peak, "report": report}


def _throughput(label: str, total: int, result: dict[str, Any]) -> None:
    rate = total / max(result["seconds"], 1e-6)
    print(f"\n[{label}] {total} events, pool {POOL}, prefetch {PREFETCH}/consumer:"
          f" {result['seconds']:.2f} s, {rate:.0f} events/s, peak in flight {result['peak']}")


async def _check_effects(db: Database, setup: dict[str, Any], ids: dict[str, list[str]],
                         config: Config, plays_before: int) -> None:
    assert await audit_rows(db, ids["audit"]) == PER_CONSUMER
    plays = await db.fetchval("SELECT play_count FROM songs WHERE id = %s", (setup["song"]["id"],))
    assert int(plays) - plays_before == PER_CONSUMER
    search = make_search(config)
    await search.start()
    try:
        docs = {d["id"]: d for d in await search.dump()}
    finally:
        await search.close()
    for artist_id in setup["artists"]:
        assert docs[f"artist-{artist_id}"]["name"].endswith(" Renamed")


@pytest.fixture
async def volume_config(database_url: str, tmp_path: Any) -> Config:
    return make_config(database_url, tmp_path)


async def test_every_consumer_with_hundreds_in_flight_over_rabbitmq(
    aiohttp_client: Any, volume_config: Config, audio_dir: Any
) -> None:
    config = volume_config
    client = await aiohttp_client(create_app(config))  # the web process: relay only
    setup = await _catalogue(client, audio_dir, artists=20)
    db = client.app[keys.DB]
    plays_before = int(await db.fetchval("SELECT play_count FROM songs WHERE id = %s",
                                         (setup["song"]["id"],)))
    # 40 concurrent renames of one artist through the API, as in the report.
    first = setup["artists"][0]
    renames = await asyncio.gather(*(
        client.put(f"/api/artist/{first}", json={"name": f"{setup['word']} R{i}"},
                   headers=setup["admin"].headers) for i in range(40)))
    assert {r.status for r in renames} == {200}
    ids = await _bulk(db, setup, PER_CONSUMER)
    every = [i for v in ids.values() for i in v]
    await eventually(lambda: _published(db, every), timeout=60)
    async with rabbit_bus(config.namespace) as bus:
        result = await _drain(config, bus, ids)
        assert await dead_messages(config.namespace) == []  # nothing failed (no nested acquire)
    _throughput("rabbitmq", len(every), result)
    # More deliveries were in flight at once than the pool has connections, for every consumer.
    assert all(result["peak"][name] > POOL for name in ids), result["peak"]
    assert result["report"]["items"] and all(
        item["status"] == "idle" and item["acked"] >= PER_CONSUMER
        for item in result["report"]["items"])
    await _check_effects(db, setup, ids, config, plays_before)


async def test_every_consumer_with_hundreds_in_flight_in_process(
    aiohttp_client: Any, volume_config: Config, audio_dir: Any
) -> None:
    config = volume_config
    client = await aiohttp_client(create_app(config.replace(amqp_url="")))
    setup = await _catalogue(client, audio_dir, artists=20)
    await client.close()  # its in-process consumers and relay are gone; ours take over
    async with contextlib.AsyncExitStack() as stack:
        db = Database(config.database_url, maxsize=4)
        await db.connect()
        stack.push_async_callback(db.close)
        plays_before = int(await db.fetchval("SELECT play_count FROM songs WHERE id = %s",
                                             (setup["song"]["id"],)))
        ids = await _bulk(db, setup, PER_CONSUMER)
        bus = InProcessBus(config.namespace, retry_delay=0.01)
        await bus.start()
        stack.push_async_callback(bus.close)
        result = await _drain(config.replace(amqp_url=""), bus, ids)
        _throughput("in-process", sum(len(v) for v in ids.values()), result)
        assert all(result["peak"][name] > POOL for name in ids), result["peak"]
        assert bus.dead == []
        await _check_effects(db, setup, ids, config, plays_before)


def test_prefetch_is_sized_from_the_pool() -> None:
    # Three consumers on the worker's pool of 10, two connections kept for relay and housekeeping.
    assert consumer_prefetch(10, 3) == 2
    assert 3 * consumer_prefetch(10, 3) < 10
    assert consumer_prefetch(2, 3) == 1  # never zero: the guard, not the sizing, prevents deadlock
    assert 3 * consumer_prefetch(40, 3) < 40


async def test_a_second_connection_inside_a_transaction_is_refused(database_url: str) -> None:
    db = Database(database_url, maxsize=2)
    await db.connect()
    try:
        async with db.transaction() as tx:
            assert await tx.fetchval("SELECT 1") == 1
            with pytest.raises(NestedConnection):
                await db.fetchval("SELECT 1")
            # A task started from inside the transaction counts as the same holder.
            with pytest.raises(NestedConnection):
                await asyncio.create_task(db.fetchval("SELECT 1"))
            with pytest.raises(NestedConnection):
                async with db.transaction():
                    pass
            assert db.holding()
        assert not db.holding()
        assert await db.fetchval("SELECT 1") == 1  # outside it, the pool serves again
        # Concurrent transactions, more than the pool holds, each in its own task: they queue.
        async def one(i: int) -> int:
            async with db.transaction() as tx:
                return int(await tx.fetchval("SELECT %s", (i,)))
        assert await asyncio.gather(*(one(i) for i in range(20))) == list(range(20))
    finally:
        await db.close()


# --- liveness -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _locked_song(database_url: str, song_id: int) -> AsyncIterator[None]:
    """Hold the song's row lock: the play_counts handler (which locks it first) blocks on it."""
    db = Database(database_url, maxsize=1)
    await db.connect()
    try:
        async with db.transaction() as tx:
            await tx.execute("SET SESSION innodb_lock_wait_timeout = 50")
            await tx.fetchone("SELECT id FROM songs WHERE id = %s FOR UPDATE", (song_id,))
            yield
    finally:
        await db.close()


async def _health(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/api/health")
    assert resp.status == 200
    return await resp.json()  # type: ignore[no-any-return]


async def _play(client: TestClient, who: Account, song_id: int) -> None:
    await _post(client, who, "/api/stream/play",
                {"song_id": song_id, "played_ms": 900, "play_id": unique("p")})


async def test_health_reports_a_blocked_consumer_in_process(
    aiohttp_client: Any, database_url: str, tmp_path: Any, audio_dir: Any
) -> None:
    config = make_config(database_url, tmp_path, amqp_url="", consumer_stall_seconds=0.5)
    client = await aiohttp_client(create_app(config))
    setup = await _catalogue(client, audio_dir, artists=1)
    body = await _health(client)
    assert body["consumers"]["source"] == "in-process"
    assert {i["name"] for i in body["consumers"]["items"]} == {"audit", "play_counts",
                                                                "search_index"}
    await eventually(lambda: _status(client, "ok"), timeout=10)
    async with _locked_song(database_url, setup["song"]["id"]):
        for _ in range(3):
            await _play(client, setup["member"], setup["song"]["id"])
        await eventually(lambda: _status(client, "degraded"), timeout=10)
        body = await _health(client)
        stalled = {i["name"]: i for i in body["consumers"]["items"] if i["status"] == "stalled"}
        assert "play_counts" in stalled  # others may look stalled for a moment on a loaded machine
        assert stalled["play_counts"]["oldest_unacked_seconds"] > 0
        assert stalled["play_counts"]["acked"] == 0
        assert stalled["play_counts"]["in_flight"] + (stalled["play_counts"]["queue_depth"] or 0) >= 3
        assert body["dependencies"]["database"]["status"] == "up"
        page = await client.get("/admin", headers=setup["admin"].headers)
        assert page.status == 200
        html = await page.text()
        assert 'data-consumers-status="stalled"' in html
        assert 'data-consumer="play_counts" data-state="stalled"' in html
    # The lock is gone: the plays are counted and health recovers.
    await eventually(lambda: _status(client, "ok"), timeout=15)


async def test_health_reports_a_blocked_worker_consumer_over_rabbitmq(
    aiohttp_client: Any, database_url: str, tmp_path: Any, audio_dir: Any
) -> None:
    config = make_config(database_url, tmp_path, consumer_stall_seconds=0.5,
                         redis_url=REDIS_URL)
    client = await aiohttp_client(create_app(config))
    setup = await _catalogue(client, audio_dir, artists=1)
    assert (await _health(client))["consumers"]["status"] == "unknown"  # no worker yet
    async with rabbit_bus(config.namespace) as bus:
        db = Database(config.database_url, maxsize=POOL)
        await db.connect()
        kv = make_kv(config.redis_url, config.namespace)
        backbone: Backbone | None = await start_backbone(config, db, bus, run_consumers=True,
                                                         kv=kv)
        try:
            await eventually(lambda: _status(client, "ok", "worker"), timeout=15)
            async with _locked_song(database_url, setup["song"]["id"]):
                await _play(client, setup["member"], setup["song"]["id"])
                await eventually(lambda: _status(client, "degraded", "worker"), timeout=15)
                body = await _health(client)
                names = [i["name"] for i in body["consumers"]["items"] if i["status"] == "stalled"]
                assert names == ["play_counts"]
                # Stopping while the handler is blocked: it is cancelled at the drain bound and
                # its message goes back to the queue (redelivered to the next worker).
                assert backbone is not None
                stopping, backbone = backbone, None
                await asyncio.wait_for(stopping.stop(), 15)
        finally:
            if backbone is not None:
                await backbone.stop()
            await kv.close()
            await db.close()
        # No worker now, and the message is back in its queue: health reads the broker's depth and
        # reports the queue left waiting longer than the stall bound.
        async def unattended() -> bool:
            body = await _health(client)
            items = {i["name"]: i for i in body["consumers"]["items"]}
            return (body["status"] == "degraded" and items["play_counts"]["status"] == "stalled"
                    and items["play_counts"]["queue_depth"] == 1
                    and items["audit"]["status"] == "idle")
        await eventually(unattended, timeout=15, every=0.2)
        page = await client.get("/admin", headers=setup["admin"].headers)
        assert page.status == 200
        html = await page.text()
        assert 'data-consumers-status="stalled"' in html and "No worker is reporting" in html
        assert 'data-consumer="play_counts" data-state="stalled"' in html
        # A new worker takes the message back from the broker and counts the play once.
        db = Database(config.database_url, maxsize=POOL)
        await db.connect()
        kv = make_kv(config.redis_url, config.namespace)
        backbone = await start_backbone(config, db, bus, run_consumers=True, kv=kv)
        assert backbone is not None
        try:
            async def counted() -> bool:
                value = await db.fetchval("SELECT play_count FROM songs WHERE id = %s",
                                          (setup["song"]["id"],))
                return int(value) == 1
            await eventually(counted, timeout=20)
            await eventually(lambda: _status(client, "ok", "worker"), timeout=15)
        finally:
            await backbone.stop()
            await kv.close()
            await db.close()


async def _status(client: TestClient, expected: str, source: str | None = None) -> bool:
    body = await _health(client)
    if source is not None and body["consumers"]["source"] != source:
        return False
    if expected == "ok" and source is not None and body["consumers"]["status"] == "unknown":
        return False
    return bool(body["status"] == expected)


async def test_forty_concurrent_renames_on_a_running_instance_without_a_broker(
    aiohttp_client: Any, database_url: str, tmp_path: Any, audio_dir: Any
) -> None:
    """The report's second lock-up: `serve` without a broker runs the consumers on its own pool."""
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path, amqp_url="")))
    setup = await _catalogue(client, audio_dir, artists=1)
    artist_id = setup["song"]["artist_id"]
    renames = await asyncio.gather(*(
        client.put(f"/api/artist/{artist_id}", json={"name": f"{setup['word']} R{i}"},
                   headers=setup["admin"].headers) for i in range(40)),
        *(_play(client, setup["member"], setup["song"]["id"]) for _ in range(40)))
    assert {r.status for r in renames[:40]} == {200}
    db = client.app[keys.DB]
    backend = client.app[keys.SEARCH_BACKEND]

    async def converged() -> bool:
        name = await db.fetchval("SELECT name FROM artists WHERE id = %s", (artist_id,))
        plays = await db.fetchval("SELECT play_count FROM songs WHERE id = %s",
                                  (setup["song"]["id"],))
        docs = {d["id"]: d for d in await backend.dump()}
        song = docs.get(f"song-{setup['song']['id']}") or {}
        return (docs.get(f"artist-{artist_id}", {}).get("name") == name
                and song.get("artist_name") == name and int(plays) == 40)
    await eventually(converged, timeout=30, every=0.1)
    assert await _status(client, "ok")
