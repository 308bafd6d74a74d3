"""/api/search over the real app (no broker: `serve` runs the consumers, so it is the index's
writer): live indexing within a second, renames, deletes, shapes, validation, the 503 degrade,
and live indexing equal to a rebuild."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, make_admin, make_audio, make_config, register, unique
from support import eventually

from app import events
from app.adapters.search.port import SearchUnavailable
from app.events import CatalogChanged
from app.main import create_app
from app.repos.db import Database
from app.services.indexer import CONSUMER, Indexer, LiveIndex
from app.web import keys


@pytest.fixture
async def sclient(aiohttp_client: Any, database_url: str, tmp_path: Any) -> TestClient:
    return await aiohttp_client(create_app(make_config(database_url, tmp_path, amqp_url="")))


@pytest.fixture
async def sadmin(sclient: TestClient) -> Account:
    return await make_admin(sclient, await register(sclient))


async def post(client: TestClient, who: Account, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(path, json=body, headers=who.headers)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def upload(client: TestClient, who: Account, audio_dir: Any, **tags: Any) -> dict[str, Any]:
    path = make_audio(audio_dir, "mp3", seconds=1.0, **tags)
    return await post(client, who, "/api/song", {"file_base64": base64.b64encode(path.read_bytes()).decode()})


async def get(client: TestClient, who: Account, path: str, status: int = 200, **params: Any) -> Any:
    resp = await client.get(path, params=params, headers=who.headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def found(client: TestClient, who: Account, kind: str, q: str) -> list[dict[str, Any]]:
    return (await get(client, who, f"/api/search/{kind}", q=q))["items"]  # type: ignore[no-any-return]


async def test_new_and_renamed_entities_are_found_within_a_second(sclient, sadmin, audio_dir):
    word = unique("Zephyrine")
    start = time.monotonic()
    created = await post(sclient, sadmin, "/api/artist", {"name": f"{word} Orchestra"})

    async def artist_found() -> bool:
        return [a["id"] for a in await found(sclient, sadmin, "artists", word.lower())] == [created["id"]]
    await eventually(artist_found, timeout=5)
    assert time.monotonic() - start < 1.0

    song = await upload(sclient, sadmin, audio_dir, title=f"{word} Waltz", artist=f"{word} Orchestra",
                        album=f"{word} Album")

    async def song_found() -> bool:
        return [s["id"] for s in await found(sclient, sadmin, "songs", f"{word} waltz")] == [song["id"]]
    await eventually(song_found, timeout=5)

    # Renaming the artist refreshes the song's document, which embeds the artist's name.
    other = unique("Quillfeather")
    resp = await sclient.put(f"/api/artist/{song['artist_id']}", json={"name": other}, headers=sadmin.headers)
    assert resp.status == 200

    async def renamed() -> bool:
        return ([s["id"] for s in await found(sclient, sadmin, "songs", other)] == [song["id"]]
                and await found(sclient, sadmin, "songs", f"{word} orchestra") == [])
    took = await eventually(renamed, timeout=5)
    assert took < 1.0

    # Deleting the song removes it.
    assert (await sclient.delete(f"/api/song/{song['id']}", headers=sadmin.headers)).status == 204

    async def gone() -> bool:
        return await found(sclient, sadmin, "songs", f"{word} waltz") == []
    await eventually(gone, timeout=5)


async def test_combined_answer_shapes_and_top_result(sclient, sadmin, audio_dir):
    word = unique("Marimbaq")
    song = await upload(sclient, sadmin, audio_dir, title=f"{word}", artist=unique("Artist"), genre="Jazz",
                        year=2011)

    async def ready() -> bool:
        return bool(await found(sclient, sadmin, "songs", word))
    await eventually(ready, timeout=5)
    body = await get(sclient, sadmin, "/api/search", q=word, limit=5)
    assert set(body) == {"songs", "artists", "albums", "playlists", "top_result"}
    for key in ("songs", "artists", "albums", "playlists"):
        assert set(body[key]) == {"items", "total", "limit", "offset"} and body[key]["limit"] == 5
    assert body["top_result"] == {"type": "song", "item": body["songs"]["items"][0]}
    # Items are the shapes of the rest of the API.
    assert body["songs"]["items"][0] == await get(sclient, sadmin, f"/api/song/{song['id']}")
    empty = await get(sclient, sadmin, "/api/search", q="")
    assert empty["top_result"] is None and empty["songs"]["items"] == []
    # Filters of GET /api/song on the typed endpoint.
    assert await get(sclient, sadmin, "/api/search/songs", q=word, year=2011, genre="jazz") | {"items": []} != {}
    assert len((await get(sclient, sadmin, "/api/search/songs", q=word, year=2011, genre="JAZZ"))["items"]) == 1
    assert (await get(sclient, sadmin, "/api/search/songs", q=word, year=2012))["items"] == []
    suggestions = (await get(sclient, sadmin, "/api/search/suggest", q=word[:-2]))["suggestions"]
    assert {"type": "song", "id": song["id"], "text": word} in [
        {k: s[k] for k in ("type", "id", "text")} for s in suggestions]


@pytest.mark.parametrize("params", [
    {"q": "x", "limit": "0"}, {"q": "x", "limit": "101"}, {"q": "x", "offset": "-1"},
    {"q": "x", "year": "abc"}, {"q": "x", "artist_id": "1 OR 1=1"},
])
async def test_bad_parameters_are_422(sclient, sadmin, params):
    for path in ("/api/search", "/api/search/songs"):
        resp = await sclient.get(path, params=params, headers=sadmin.headers)
        if path == "/api/search" and set(params) - {"q", "limit", "offset"}:
            assert resp.status == 200  # unknown parameters are ignored
            continue
        assert resp.status == 422, (path, params)
        assert (await resp.json())["error"]["code"] == "invalid_input"


async def test_search_needs_a_session(sclient):
    for path in ("/api/search", "/api/search/songs", "/api/search/suggest"):
        resp = await sclient.get(path, params={"q": "a"})
        assert resp.status == 401


async def test_backend_down_is_503_and_the_index_catches_up(sclient, sadmin):
    backend = sclient.app[keys.SEARCH_BACKEND]
    live = next(s for s in sclient.app[keys.BACKBONE].specs if s.name == "search_index")
    word = unique("Outagex")
    outage = RuntimeError("simulated outage")
    backend.failing = outage  # type: ignore[attr-defined]
    try:
        for path in ("/api/search", "/api/search/artists", "/api/search/suggest"):
            resp = await sclient.get(path, params={"q": "a"}, headers=sadmin.headers)
            assert resp.status == 503
            assert (await resp.json())["error"]["code"] == "unavailable"
        page = await sclient.get("/search", params={"q": "a"}, headers=sadmin.headers)
        assert page.status == 503 and "unavailable" in await page.text()
        # The writer fails too: the event waits (retried), the rest of the site keeps working.
        writer = await _live_backend(sclient, sadmin, live)
        writer.failing = outage
        created = await post(sclient, sadmin, "/api/artist", {"name": word})
        assert (await sclient.get(f"/api/artist/{created['id']}", headers=sadmin.headers)).status == 200
        assert (await sclient.get("/api/song", headers=sadmin.headers)).status == 200
    finally:
        backend.failing = None  # type: ignore[attr-defined]
        writer.failing = None

    async def caught_up() -> bool:
        return bool(await found(sclient, sadmin, "artists", word))
    await eventually(caught_up, timeout=10)


async def _live_backend(client: TestClient, who: Account, spec: Any) -> Any:
    """The consumer's own backend (opened on its first event)."""
    await post(client, who, "/api/artist", {"name": unique("Warmup")})
    live = spec.handler.__self__  # the consumer's handler is LiveIndex.handle
    assert type(live).__name__ == "LiveIndex"

    async def opened() -> bool:
        return live.backend is not None
    await eventually(opened, timeout=5)
    return live.backend


async def test_live_indexing_equals_a_rebuild(sclient, sadmin, audio_dir):
    prefix = unique("Eq")
    a = await post(sclient, sadmin, "/api/artist", {"name": f"{prefix} Artist"})
    al = await post(sclient, sadmin, "/api/album", {"title": f"{prefix} Album", "artist_id": a["id"], "year": 2001})
    s = await upload(sclient, sadmin, audio_dir, title=f"{prefix} Song", artist=f"{prefix} Artist",
                     album=f"{prefix} Album")
    await sclient.put(f"/api/album/{al['id']}", json={"title": f"{prefix} Renamed"}, headers=sadmin.headers)
    member = await register(sclient)
    pl = await post(sclient, member, "/api/playlist", {"name": f"{prefix} Mix", "is_public": False})
    await post(sclient, member, f"/api/playlist/{pl['id']}/songs", {"song_ids": [s["id"]]})
    await post(sclient, member, f"/api/playlist/{pl['id']}/collaborators", {"username": sadmin.username})
    backend = sclient.app[keys.SEARCH_BACKEND]
    db = sclient.app[keys.DB]

    async def settled() -> bool:
        unpublished = await db.fetchval("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        # Many events are applied at once (search_index's prefetch): the dump is taken once none
        # is left in flight, not as soon as the documents looked at here are right.
        items = (await sclient.app[keys.BACKBONE].sample())["items"]
        if any(i["queue_depth"] or i["in_flight"] for i in items if i["name"] == CONSUMER):
            return False
        docs = {d["id"]: d for d in await backend.dump()}
        p = docs.get(f"playlist-{pl['id']}")
        return (unpublished == 0 and p is not None and p["collaborator_ids"] == [sadmin.id]
                and p["song_count"] == 1 and docs[f"song-{s['id']}"]["album_title"] == f"{prefix} Renamed")
    await eventually(settled, timeout=10)
    live = await backend.dump()
    await Indexer(db, backend).reindex()
    rebuilt = await backend.dump()
    # The database is shared by the run: the rebuild also holds other tests' entities, which this
    # app's live index never saw. Every document live indexing made is exactly the rebuilt one.
    ours = {d["id"] for d in live}
    assert {f"artist-{a['id']}", f"album-{al['id']}", f"song-{s['id']}", f"playlist-{pl['id']}"} <= ours
    assert [d for d in rebuilt if d["id"] in ours] == live


async def test_unavailable_is_raised_by_a_failing_backend(sclient, sadmin):
    backend = sclient.app[keys.SEARCH_BACKEND]
    backend.failing = OSError("disk gone")  # type: ignore[attr-defined]
    try:
        with pytest.raises(SearchUnavailable):
            await backend.suggest("a", 1, 5)
    finally:
        backend.failing = None  # type: ignore[attr-defined]


async def _catalog_events(db: Any, count: int) -> list[str]:
    """`count` catalogue events (an artist's upserts) recorded in one transaction, as an import
    leaves them: in the outbox, not yet applied by the search consumer."""
    artist_id = 2_000_000_000 + secrets.randbelow(100_000_000)  # no such artist: its doc goes
    async with db.transaction() as tx:
        return await events.emit_many(tx, [CatalogChanged("artist", artist_id, "upserted")
                                           for _ in range(count)])


async def _applied(db: Any, event_ids: list[str]) -> set[str]:
    rows = await db.fetchall(
        "SELECT event_id FROM processed_events WHERE consumer = %s AND event_id IN ("
        + ", ".join(["%s"] * len(event_ids)) + ")", (CONSUMER, *event_ids))
    return {r["event_id"] for r in rows}


async def test_a_rebuild_records_the_events_it_covers_so_the_consumer_skips_them(client):
    """An import leaves one event per song; after `reindex` the consumer must not redo them all
    (one index commit each: an hour for 100,000 songs). No consumer runs for `client` (a broker
    is configured and no worker started), so only the rebuild can have recorded these."""
    db, backend = client.app[keys.DB], client.app[keys.SEARCH_BACKEND]
    older = await _catalog_events(db, 300)  # before the rebuild: the fill reads their effect
    count = await Indexer(db, backend).reindex()
    assert count > 0
    assert await _applied(db, older) == set(older)
    later = await _catalog_events(db, 5)  # after it: still the consumer's
    assert await _applied(db, later) == set()
    # Delivered now, a covered event is skipped by the consumer; a later one is applied, then
    # recorded.
    live = LiveIndex(db, client.app[keys.CONFIG])
    recorder = _Recorder(db)
    live.backend, live.indexer = recorder, Indexer(db, recorder)  # type: ignore[arg-type]
    await live.handle({"id": older[0], "data": {"entity": "artist", "entity_id": 1}})
    assert recorder.writes == 0
    await live.handle({"id": later[0], "data": {"entity": "artist", "entity_id": 1}})
    assert recorder.writes >= 1 and await _applied(db, later[:1]) == {later[0]}


async def test_a_rebuild_catches_up_only_what_was_committed_after_its_fill_began(
        sclient, sadmin):
    """An import just before a rebuild (its events within the catch-up window): what was
    committed before the fill began is read by the fill and not applied again; a write committed
    while the fill runs (here an artist renamed halfway) is caught up, so the new index finds
    the new name. Both are recorded as covered."""
    db, backend = sclient.app[keys.DB], sclient.app[keys.SEARCH_BACKEND]
    before = await post(sclient, sadmin, "/api/artist", {"name": unique("Prefill")})
    during = await post(sclient, sadmin, "/api/artist", {"name": unique("Midfill")})
    renamed = unique("Renamedmidfill")
    indexer = Indexer(db, backend)
    real_fill, real_sync = indexer.fill, indexer.sync
    caught_up: list[tuple[str, list[int]]] = []
    filling = False

    async def fill(target: Any, progress: Any = None) -> int:
        nonlocal filling
        filling = True
        count = await real_fill(target, progress)
        filling = False
        resp = await sclient.put(f"/api/artist/{during['id']}", json={"name": renamed},
                                 headers=sadmin.headers)
        assert resp.status == 200
        return count

    async def sync(target: Any, entity: str, ids: Any, dependents: bool = True,
                   sql: Any = None) -> None:
        if not filling:
            caught_up.append((entity, list(ids)))
        await real_sync(target, entity, ids, dependents, sql)

    indexer.fill, indexer.sync = fill, sync  # type: ignore[method-assign]
    await indexer.reindex()
    synced = {(entity, i) for entity, ids in caught_up for i in ids}
    assert ("artist", during["id"]) in synced
    assert ("artist", before["id"]) not in synced
    assert [a["id"] for a in await found(sclient, sadmin, "artists", renamed)] == [during["id"]]
    recent = await db.fetchall(
        "SELECT event_id FROM outbox WHERE type = 'catalog.artist.upserted'"
        " AND JSON_VALUE(payload, '$.data.entity_id') IN (%s, %s)", (before["id"], during["id"]))
    assert len(recent) == 3
    assert await _applied(db, [r["event_id"] for r in recent]) == {r["event_id"] for r in recent}


class _Recorder:
    """A search backend that counts its writes and, while `gate` is set, holds them there."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.writes = 0
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()

    async def upsert(self, docs: Any) -> None:
        self.writes += 1
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()

    async def delete(self, doc_ids: Any) -> None:
        return None


async def test_the_consumer_holds_no_connection_while_the_index_writes(client, database_url):
    """search_index takes several times its share of deliveries (its index writes wait for a
    group commit together), which is safe only because a handler holds no connection while its
    write waits: on a pool of one, another statement runs while the write is held."""
    db = Database(f"{database_url}", maxsize=1)
    await db.connect(create=False)
    try:
        [event_id] = await _catalog_events(db, 1)
        artist = await db.fetchval("SELECT MIN(id) FROM artists")
        live = LiveIndex(db, client.app[keys.CONFIG])
        recorder = _Recorder(db)
        recorder.gate = asyncio.Event()
        live.backend, live.indexer = recorder, Indexer(db, recorder)  # type: ignore[arg-type]
        task = asyncio.create_task(live.handle(
            {"id": event_id, "data": {"entity": "artist", "entity_id": int(artist)}}))
        await asyncio.wait_for(recorder.waiting.wait(), 10)
        assert await asyncio.wait_for(db.fetchval("SELECT 1"), 5) == 1  # the one connection is free
        assert await _applied(db, [event_id]) == set()  # not recorded before its write landed
        recorder.gate.set()
        await asyncio.wait_for(task, 10)
        assert await _applied(db, [event_id]) == {event_id}
    finally:
        await db.close()
    consumer = next(s for s in client.app[keys.BACKBONE].specs if s.name == CONSUMER)
    assert consumer.prefetch_factor > 1
    assert type(consumer.handler.__self__) is LiveIndex  # type: ignore[attr-defined]


async def test_a_failed_rebuild_leaves_every_event_to_the_consumer(client):
    db = client.app[keys.DB]
    pending = await _catalog_events(db, 50)

    class Broken:
        async def rebuild(self, fill: Any, catch_up: Any) -> None:
            raise SearchUnavailable("disk full")

    with pytest.raises(SearchUnavailable):
        await Indexer(db, Broken()).reindex()  # type: ignore[arg-type]
    assert await _applied(db, pending) == set()


async def test_a_repeated_search_is_read_from_the_cache_until_the_index_or_catalogue_changes(
        sclient, sadmin, audio_dir):
    """A page of songs, albums or artists is kept under the index's version and the catalogue's
    generation: asked again it is not searched again; a commit to the index or a catalogue write
    makes the next ask search afresh; playlists (viewer-dependent) are never kept."""
    word = unique("Cachetune")
    song = await upload(sclient, sadmin, audio_dir, title=f"{word} One", artist=f"{word} Band")

    async def song_found() -> bool:
        return [s["id"] for s in await found(sclient, sadmin, "songs", word)] == [song["id"]]
    await eventually(song_found, timeout=5)
    backend = sclient.app[keys.SEARCH].backend
    asked: list[str] = []
    real_search = backend.search

    async def counting(queries: Any) -> Any:
        asked.extend(q.type for q in queries)
        return await real_search(queries)
    backend.search = counting
    try:
        for _ in range(3):
            assert [s["id"] for s in await found(sclient, sadmin, "songs", word)] == [song["id"]]
        assert asked == []  # kept since the ask that found it
        await found(sclient, sadmin, "playlists", word)
        await found(sclient, sadmin, "playlists", word)
        assert asked == ["playlist", "playlist"]

        # A commit to the index (here a new playlist's document, a write that leaves the
        # catalogue's generations alone) gives the index a new version.
        before = backend.version()
        await post(sclient, sadmin, "/api/playlist", {"name": unique("Playlist"), "is_public": True})

        async def committed() -> bool:
            return backend.version() != before
        await eventually(committed, timeout=5)
        asked.clear()
        assert [s["id"] for s in await found(sclient, sadmin, "songs", word)] == [song["id"]]
        assert asked == ["song"]

        # A catalogue write (a rename through the API) starts a new generation of the songs'
        # pages: the hydrated title is fresh at once, whatever the index has done yet.
        renamed = f"{word} Renamed"
        resp = await sclient.put(f"/api/song/{song['id']}", json={"title": renamed},
                                 headers=sadmin.headers)
        assert resp.status == 200, await resp.text()
        asked.clear()
        titles = [s["title"] for s in await found(sclient, sadmin, "songs", word)]
        assert asked == ["song"] and titles in ([renamed], [])
    finally:
        backend.search = real_search
