"""Paging the catalogue lists (issue 12): keyset cursors beside offsets, deep offsets read from the
end of the list, and totals exact or marked as estimates — the same rows whichever way a client
walks."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp.test_utils import TestClient
from conftest import Account, unique
from support import index_songs

from app.repos.catalog import CatalogRepo
from app.services import catalog as catalog_module
from app.services.catalog import Actor
from app.web import keys

SONGS = 45


async def make_artist(client: TestClient, songs: int = SONGS, albums: int = 3) -> dict[str, Any]:
    """An artist with albums and songs, written as the importer writes them (no files), and
    their documents put in the search index (as live indexing does after the importer's events)."""
    db = client.app[keys.DB]
    repo = CatalogRepo(db)
    tag = unique("page")
    song_ids: list[int] = []
    async with db.transaction() as tx:
        artist_id, _ = await repo.find_or_create_artist(tx, f"{tag} artist")
        album_ids = [(await repo.find_or_create_album(tx, f"{tag} album {i}", artist_id, 2000 + i,
                                                      "Paging"))[0] for i in range(albums)]
        for i in range(songs):
            song_ids.append(await repo.insert_song(tx, {
                "title": f"{tag} song {i % 7}", "artist_id": artist_id,
                "album_id": album_ids[i % albums], "duration_ms": 1000 + i, "bitrate": 1,
                "sample_rate": 1, "codec": "mp3", "mime_type": "audio/mpeg", "size": 10 + i,
                "sha256": hashlib.sha256(f"{tag}{i}".encode()).hexdigest(),
                "file_path": f"{tag}/{i}", "track_number": i,
            }))
    await index_songs(client.app, song_ids)
    await client.app[keys.CATALOG].after_write()
    return {"id": artist_id, "tag": tag, "albums": album_ids}


async def get(client: TestClient, who: Account, url: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(url, params=params, headers=who.headers)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def walk(client: TestClient, who: Account, url: str, limit: int, **params: Any) -> list[int]:
    """Every id of a list by its `next` cursors."""
    seen: list[int] = []
    page = await get(client, who, url, limit=limit, **params)
    while True:
        seen += [item["id"] for item in page["items"]]
        if not page["next"]:
            return seen
        page = await get(client, who, url, limit=limit, after=page["next"], **params)


async def test_cursor_and_offset_pages_agree(client: TestClient, member: Account) -> None:
    artist = await make_artist(client)
    for sort in ("newest", "title", "popular"):
        by_offset: list[int] = []
        for offset in range(0, SONGS, 10):  # the later pages are read from the end of the list
            page = await get(client, member, "/api/song", artist_id=artist["id"], sort=sort,
                             limit=10, offset=offset)
            assert page["total"] == SONGS and page["total_is_estimate"] is False
            by_offset += [item["id"] for item in page["items"]]
        by_cursor = await walk(client, member, "/api/song", 10, artist_id=artist["id"], sort=sort)
        assert by_cursor == by_offset and len(set(by_offset)) == SONGS, sort
    # `before` goes back: the page before the third is the second.
    second = await get(client, member, "/api/song", artist_id=artist["id"], limit=10, offset=10)
    third = await get(client, member, "/api/song", artist_id=artist["id"], limit=10,
                      after=second["next"])
    back = await get(client, member, "/api/song", artist_id=artist["id"], limit=10,
                     before=third["prev"])
    assert [i["id"] for i in back["items"]] == [i["id"] for i in second["items"]]


async def test_album_and_artist_lists_page_by_cursor(client: TestClient, member: Account) -> None:
    artist = await make_artist(client, songs=3, albums=7)
    ids = await walk(client, member, "/api/album", 2, q=artist["tag"], sort="title")
    assert sorted(ids) == sorted(artist["albums"]) and len(ids) == 7
    page = await get(client, member, "/api/album", artist_id=artist["id"], limit=3)
    assert (page["total"], page["total_is_estimate"]) == (7, False)
    everyone = await get(client, member, "/api/artist", limit=100)
    assert everyone["total_is_estimate"] is False
    mine = await get(client, member, "/api/artist", q=artist["tag"])
    assert [a["id"] for a in mine["items"]] == [artist["id"]] and mine["total"] == 1
    detail = await get(client, member, f"/api/artist/{artist['id']}")
    assert (detail["album_count"], detail["song_count"]) == (7, 3)


async def test_a_text_scan_total_is_an_estimate(client: TestClient, member: Account) -> None:
    """With the search index down, a text filter over the whole catalogue scans the titles and
    counts no further than the page it reads; bounded by an artist, it counts exactly."""
    artist = await make_artist(client)
    backend = client.app[keys.SEARCH_BACKEND]
    backend.failing = OSError("index gone")  # type: ignore[attr-defined]
    try:
        first = await get(client, member, "/api/song", q=f"{artist['tag']} song 1", limit=3)
        matching = await walk(client, member, "/api/song", 3, q=f"{artist['tag']} song 1")
        exact = await get(client, member, "/api/song", q="song 1", artist_id=artist["id"])
    finally:
        backend.failing = None  # type: ignore[attr-defined]
    assert first["total_is_estimate"] is True
    assert len(first["items"]) == 3 and first["total"] == 4 and first["next"]  # more follow
    assert len(matching) == len([i for i in range(SONGS) if i % 7 == 1])
    assert exact["total_is_estimate"] is False and exact["total"] == len(matching)
    indexed = await get(client, member, "/api/song", q=f"{artist['tag']} song 1", limit=4)
    assert indexed["total_is_estimate"] is False and indexed["total"] == len(matching)


async def test_a_text_filter_is_narrowed_by_the_index_and_still_tests_the_title(
        client: TestClient, member: Account) -> None:
    """`q` takes its candidates from the search index (a million titles cannot be scanned in
    time) and keeps its meaning: the words as typed, in the title. The index's typo-tolerant
    matches and its matches on the artist or album name drop out, cursors still walk the
    matches in the list's order, and with the index down the titles are scanned instead, with
    the same rows."""
    artist = await make_artist(client)
    tag = artist["tag"]
    expected = len([i for i in range(SONGS) if i % 7 == 3])
    walked = await walk(client, member, "/api/song", 2, q=f"{tag} song 3", sort="title")
    assert len(walked) == len(set(walked)) == expected
    first = await get(client, member, "/api/song", q=f"{tag} song 3", limit=50)
    assert first["total"] == expected and first["total_is_estimate"] is False
    assert {s["title"] for s in first["items"]} == {f"{tag} song 3"}
    # "sonh" is one typo from "song": the index finds it, the title test drops it.
    assert (await get(client, member, "/api/song", q=f"{tag} sonh 3"))["items"] == []
    # The artist's and the albums' names hold the tag and "album": not a title match.
    assert (await get(client, member, "/api/song", q=f"{tag} album"))["items"] == []
    assert (await get(client, member, "/api/song", q=f"{tag} artist"))["items"] == []
    backend = client.app[keys.SEARCH_BACKEND]
    backend.failing = OSError("index gone")  # type: ignore[attr-defined]
    try:
        scanned = await walk(client, member, "/api/song", 3, q=f"{tag} song 3", sort="title")
        # The scan finds the text anywhere in the title, the index only from a word's start.
        inside = await get(client, member, "/api/song", q=f"{tag[1:]} song 3", limit=50)
    finally:
        backend.failing = None  # type: ignore[attr-defined]
    assert scanned == walked and len(inside["items"]) == expected


async def test_a_text_filter_with_more_matches_than_it_takes_says_its_total_is_an_estimate(
        client: TestClient, member: Account, monkeypatch: Any) -> None:
    artist = await make_artist(client)
    monkeypatch.setattr(catalog_module, "TEXT_CANDIDATES", 10)
    page = await get(client, member, "/api/song", q=f"{artist['tag']} song", limit=4)
    assert page["total_is_estimate"] is True and page["total"] == SONGS
    taken = await walk(client, member, "/api/song", 4, q=f"{artist['tag']} song")
    assert len(taken) == len(set(taken)) == 10  # the index's best ten, in the list's order


async def test_every_song_is_listed_by_id_a_page_at_a_time(client: TestClient) -> None:
    """CatalogService.all_songs (what a Subsonic client pages the whole catalogue with): every
    song once, in id order, whatever the page size."""
    artist = await make_artist(client, songs=12, albums=2)
    catalog = client.app[keys.CATALOG]
    seen: list[int] = []
    after = 0
    while page := await catalog.all_songs(after, 50):
        assert [s["id"] for s in page] == sorted(s["id"] for s in page) and page[0]["id"] > after
        seen += [s["id"] for s in page if s["artist_id"] == artist["id"]]
        after = page[-1]["id"]
    assert len(seen) == len(set(seen)) == 12 and seen == sorted(seen)


async def test_bad_cursors_are_refused(client: TestClient, member: Account) -> None:
    for params in ({"after": "garbage"}, {"after": "WyJ4Il0"}, {"before": "bnVsbA"},
                   {"after": "WyIyMDI2LTAxLTAxIDAwOjAwOjAwIiwgMV0", "sort": "album"},
                   {"after": "WyJub3QgYSB0aW1lIiwgMV0"}):
        resp = await client.get("/api/song", params=params, headers=member.headers)
        assert resp.status == 422, (params, await resp.text())  # as any bad query parameter


async def test_cursor_parameters_are_documented(client: TestClient) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    for path in ("/api/song", "/api/album", "/api/artist"):
        op = spec["paths"][path]["get"]
        assert {"after", "before", "offset", "limit"} <= {p["name"] for p in op["parameters"]}
        assert "total_is_estimate" in op["summary"]


async def test_every_song_is_listed_by_offset_from_where_the_last_page_ended(
        client: TestClient, admin: Account) -> None:
    """CatalogService.songs_at (search3 with an empty query, which apps page through by offset):
    pages by offset agree with the id order whether the offset is one a page ended at (read by
    key from there) or one never seen (counted from the nearer end), and a write between pages
    moves the positions (a new list generation) without the next page skipping or repeating."""
    await make_artist(client, songs=12, albums=2)
    catalog = client.app[keys.CATALOG]
    db = client.app[keys.DB]
    every = [int(r["id"]) for r in await db.fetchall("SELECT id FROM songs ORDER BY id")]
    by_page: list[int] = []
    offset = 0
    while page := await catalog.songs_at(offset, 7):
        by_page += [s["id"] for s in page]
        offset += 7
    assert by_page == every
    for start in (1, len(every) // 2, len(every) - 3, len(every) - 1):  # offsets no page ended at
        assert [s["id"] for s in await catalog.songs_at(start, 4)] == every[start:start + 4]
    assert await catalog.songs_at(len(every), 5) == [] and await catalog.songs_at(10**9, 5) == []
    assert [s["id"] for s in await catalog.songs_at(0, 5)] == every[:5]  # ended at 5: kept
    doomed = every[2]
    await catalog.delete_song(doomed, Actor(admin.id, admin.username))
    # Positions moved by one: the page at 5 starts one song later than the kept end of page 0.
    assert [s["id"] for s in await catalog.songs_at(5, 5)] == [i for i in every if i != doomed][5:10]


async def test_a_position_is_found_through_the_id_blocks_however_the_ids_spread(
        client: TestClient, admin: Account) -> None:
    """Positions in id order are found by the maintained count of each block of 10,000 ids
    (sql/0012) and a count inside one block: songs far apart in id (other blocks, gaps between),
    added and deleted, are found at exactly their positions, and the counts follow the writes
    (repair-counts finds nothing to fix)."""
    await make_artist(client, songs=6, albums=1)
    db = client.app[keys.DB]
    repo = CatalogRepo(db)
    model = int(await db.fetchval("SELECT MAX(id) FROM songs"))
    top = max(model, 10**8)  # past every other test's songs: blocks of their own
    columns = [str(r["column_name"]) for r in await db.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE()"
        " AND table_name = 'songs' AND extra NOT LIKE '%%GENERATED%%'"
        " AND column_name NOT IN ('id', 'sha256') ORDER BY ordinal_position")]
    far = [top + 7, top + 10_003, top + 10_004, top + 45_000, top + 45_001, top + 123_456]
    for new_id in far:  # copies of a song at chosen ids, as if the ids between had been deleted
        await db.execute(
            f"INSERT INTO songs (id, sha256, {', '.join(columns)}) SELECT %s, %s,"
            f" {', '.join(columns)} FROM songs WHERE id = %s",
            (new_id, hashlib.sha256(f"far {new_id}".encode()).hexdigest(), model))
    try:
        await db.execute("DELETE FROM songs WHERE id = %s", (far[3],))
        every = [int(r["id"]) for r in await db.fetchall("SELECT id FROM songs ORDER BY id")]
        total = await repo.total("songs")
        assert total == len(every)
        for position in [0, len(every) // 2, *range(len(every) - 7, len(every))]:
            assert await repo.song_id_at(position, total) == every[position], position
        assert await repo.song_id_at(len(every), total) == -1
        blocks = {int(r["block"]): int(r["songs"]) for r in await db.fetchall(
            "SELECT block, songs FROM song_id_blocks WHERE block >= %s", (top // 10_000,))}
        assert {b: n for b, n in blocks.items() if n} == {
            far[0] // 10_000: 1, far[1] // 10_000: 2, far[4] // 10_000: 1, far[5] // 10_000: 1}
        fixed = await client.app[keys.CATALOG].repair_counts()
        assert fixed.get("id blocks", 0) == 0
    finally:
        await db.execute(f"DELETE FROM songs WHERE id IN ({', '.join(['%s'] * len(far))})", far)
