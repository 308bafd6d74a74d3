"""Lists over /rest (SPEC 13): getAlbumList and getAlbumList2 of every `type`, getRandomSongs,
getSongsByGenre, getStarred and getStarred2 (the caller's own library, never another's) and
getNowPlaying — every `f=json` answer validated against the OpenSubsonic schemas, XML compared
with JSON, and hostile parameters answered with Subsonic errors."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, register, unique
from subsonic_read_support import bulk_songs, ids, rest_params
from subsonic_support import call_both, call_json, error_code

TYPES = ["random", "newest", "highest", "frequent", "recent", "alphabeticalByName",
         "alphabeticalByArtist", "starred", "byYear", "byGenre"]


@pytest.fixture
async def auth(client: TestClient, member: Account) -> dict[str, str]:
    return await rest_params(client, member)


def extra(kind: str, bulk: dict[str, Any]) -> dict[str, str]:
    if kind == "byYear":
        return {"fromYear": "1961", "toYear": "1964"}
    if kind == "byGenre":
        return {"genre": str(bulk["genre"])}
    return {}



@pytest.fixture
async def genre_bulk(client: TestClient) -> dict[str, Any]:
    genre = unique("Genre")
    made = await bulk_songs(client, 12, albums=4, genre=genre, first_year=1961)
    return {**made, "genre": genre}


@pytest.mark.parametrize("method", ["getAlbumList2", "getAlbumList"])
@pytest.mark.parametrize("kind", TYPES)
async def test_every_type_answers_valid_lists(client, auth, genre_bulk, method, kind):
    key = "albumList2" if method == "getAlbumList2" else "albumList"
    params = {**auth, "type": kind, "size": "500", **extra(kind, genre_bulk)}
    # A random list differs from call to call: its XML cannot be compared with its JSON.
    ask = call_json if kind == "random" else call_both
    albums = (await ask(client, method, params))[key].get("album", [])
    assert len(albums) <= 500
    mine = [f"al-{n}" for n in genre_bulk["albums"]]
    if kind == "byGenre":  # by title within the genre
        assert ids(albums) == mine
    if method == "getAlbumList":
        assert all(a["isDir"] is True for a in albums)


async def test_orders_of_the_album_lists(client, auth, genre_bulk):
    async def names(kind: str, **more: str) -> list[dict[str, Any]]:
        inner = await call_json(client, "getAlbumList2", {**auth, "type": kind, "size": "500", **more})
        return list(inner["albumList2"].get("album", []))

    newest = await names("newest")
    assert ids(newest)[:4] == [f"al-{n}" for n in reversed(genre_bulk["albums"])]
    by_name = [a["name"].lower() for a in await names("alphabeticalByName")]
    assert by_name == sorted(by_name)
    by_artist = [a["artist"].lower() for a in await names("alphabeticalByArtist")]
    assert by_artist == sorted(by_artist)
    up = await names("byYear", fromYear="1961", toYear="1964")
    down = await names("byYear", fromYear="1964", toYear="1961")
    assert [a["year"] for a in up] == sorted(a["year"] for a in up)
    assert [a["year"] for a in down] == sorted((a["year"] for a in down), reverse=True)
    assert set(ids(up)) == set(ids(down)) >= {f"al-{n}" for n in genre_bulk["albums"]}
    assert all(1961 <= a["year"] <= 1964 for a in up)
    random = await names("random", size="3")
    assert len(random) == 3 and len(set(ids(random))) == 3


async def test_paging_and_clamping(client, auth, genre_bulk):
    base = {**auth, "type": "byGenre", "genre": genre_bulk["genre"]}
    pages = []
    for offset in range(0, 6, 2):
        inner = await call_json(client, "getAlbumList2", {**base, "size": "2", "offset": str(offset)})
        pages += ids(inner["albumList2"].get("album", []))
    assert pages == [f"al-{n}" for n in genre_bulk["albums"]]
    default = await call_json(client, "getAlbumList2", {**auth, "type": "newest"})
    assert len(default["albumList2"]["album"]) <= 10
    for huge in ("100000", "9" * 40):
        inner = await call_json(client, "getAlbumList2", {**base, "size": huge})
        assert len(inner["albumList2"]["album"]) == 4
    assert await error_code(client, "getAlbumList2", {**base, "offset": "-1"}) == 10
    assert await error_code(client, "getAlbumList2", {**base, "size": "ten"}) == 10
    assert await error_code(client, "getAlbumList2", auth) == 10  # no type
    assert await error_code(client, "getAlbumList2", {**auth, "type": "bestOfAllTime"}) == 10
    assert await error_code(client, "getAlbumList2", {**auth, "type": "byYear"}) == 10
    assert await error_code(client, "getAlbumList2", {**auth, "type": "byYear", "fromYear": "x",
                                                "toYear": "1"}) == 10
    assert await error_code(client, "getAlbumList", {**auth, "type": "byGenre"}) == 10


async def test_random_songs_and_songs_by_genre(client, auth, genre_bulk):
    songs = (await call_json(client, "getRandomSongs", {**auth, "size": "5"}))["randomSongs"]["song"]
    assert len(songs) == 5 and len(set(ids(songs))) == 5
    genre = genre_bulk["genre"]
    picked = (await call_json(client, "getRandomSongs", {**auth, "size": "500", "genre": genre}))
    assert sorted(ids(picked["randomSongs"]["song"])) == sorted(f"tr-{n}" for n in genre_bulk["songs"])
    years = (await call_json(client, "getRandomSongs", {**auth, "size": "500", "genre": genre,
                                                        "fromYear": "1962", "toYear": "1963"}))
    assert {s["year"] for s in years["randomSongs"]["song"]} == {1962, 1963}
    none = await call_json(client, "getRandomSongs", {**auth, "genre": unique("Nothing")})
    assert none["randomSongs"].get("song", []) == []
    assert await error_code(client, "getRandomSongs", {**auth, "fromYear": "soon"}) == 10

    walked: list[str] = []
    for offset in range(0, 14, 5):
        inner = await call_both(client, "getSongsByGenre", {**auth, "genre": genre, "count": "5",
                                                            "offset": str(offset)})
        walked += ids(inner["songsByGenre"].get("song", []))
    assert sorted(walked) == sorted(f"tr-{n}" for n in genre_bulk["songs"]) and len(walked) == 12
    assert await error_code(client, "getSongsByGenre", auth) == 10
    assert await error_code(client, "getSongsByGenre", {**auth, "genre": genre, "offset": "-5"}) == 10


async def test_starred_is_the_callers_library_only(client, member, auth, genre_bulk):
    song, album, artist = genre_bulk["songs"][0], genre_bulk["albums"][1], genre_bulk["artist"]
    for kind, item in (("songs", song), ("albums", album), ("artists", artist)):
        resp = await client.put(f"/api/library/{kind}/{item}", headers=member.headers)
        assert resp.status in (200, 204), await resp.text()
    starred2 = (await call_both(client, "getStarred2", auth))["starred2"]
    assert ids(starred2["song"]) == [f"tr-{song}"] and ids(starred2["album"]) == [f"al-{album}"]
    assert ids(starred2["artist"]) == [f"ar-{artist}"]
    assert all(item["starred"] for kind in ("song", "album", "artist") for item in starred2[kind])
    starred = (await call_both(client, "getStarred", auth))["starred"]
    assert ids(starred["song"]) == [f"tr-{song}"] and starred["album"][0]["isDir"] is True
    saved = await call_json(client, "getAlbumList2", {**auth, "type": "starred"})
    assert ids(saved["albumList2"]["album"]) == [f"al-{album}"]

    other: Account = await register(client)
    theirs = await rest_params(client, other)
    for method, key in (("getStarred2", "starred2"), ("getStarred", "starred")):
        inner = await call_both(client, method, theirs)
        assert all(not inner[key].get(kind) for kind in ("song", "album", "artist"))
    saved = await call_json(client, "getAlbumList2", {**theirs, "type": "starred"})
    assert saved["albumList2"].get("album", []) == []


async def test_now_playing_is_empty_and_valid(client, auth):
    inner = await call_both(client, "getNowPlaying", auth)
    assert inner["nowPlaying"] == {"entry": []}
