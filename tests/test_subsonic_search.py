"""Searching over /rest (SPEC 13): search2 and search3 through the search index, and an empty
query paging through the whole catalogue (as apps sync) — every item exactly once, with pages of
any size — every `f=json` answer validated against the OpenSubsonic schemas, XML compared with
JSON, hostile parameters answered with Subsonic errors."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pymysql
import pytest
from aiohttp.test_utils import TestClient
from conftest import MYSQL_URL, RUN_ID, Account, _admin_sql, make_config, register
from subsonic_read_support import bulk_songs, catalogue, ids, rest_params
from subsonic_support import call_both, call_json, error_of

from app.main import create_app

EVERY = {"artist": "artistCount", "album": "albumCount", "song": "songCount"}
OFFSETS = {"artist": "artistOffset", "album": "albumOffset", "song": "songOffset"}


@pytest.fixture
async def auth(client: TestClient, member: Account) -> dict[str, str]:
    return await rest_params(client, member)


@pytest.fixture
async def fresh(aiohttp_client: Any, tmp_path: Any) -> AsyncIterator[TestClient]:
    """An app on a database of its own, so "everything" is a known set."""
    name = f"sonora_sync_{RUN_ID}"
    client = await aiohttp_client(create_app(make_config(f"{MYSQL_URL}/{name}", tmp_path)))
    yield client
    await client.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pymysql.Warning)
        await _admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


async def walk(client: TestClient, method: str, auth: dict[str, str], kind: str, query: str,
               page: int) -> list[str]:
    """Every id of one kind an empty query pages through, `page` at a time."""
    key = "searchResult3" if method == "search3" else "searchResult2"
    seen: list[str] = []
    while True:
        params = {**auth, "query": query, **{count: "0" for count in EVERY.values()},
                  EVERY[kind]: str(page), OFFSETS[kind]: str(len(seen))}
        found = ids((await call_json(client, method, params))[key].get(kind))
        assert len(found) <= page
        seen += found
        if len(found) < page:
            return seen


async def test_an_empty_query_pages_through_everything_exactly_once(fresh: TestClient) -> None:
    member = await register(fresh)
    auth = await rest_params(fresh, member)
    first = await bulk_songs(fresh, 7, albums=3)
    second = await bulk_songs(fresh, 2, albums=1)
    songs = {f"tr-{n}" for n in first["songs"] + second["songs"]}
    albums = {f"al-{n}" for n in first["albums"] + second["albums"]}
    artists = {f"ar-{first['artist']}", f"ar-{second['artist']}"}
    for method in ("search3", "search2"):
        for query in ("", '""'):
            for kind, expected in (("song", songs), ("album", albums), ("artist", artists)):
                seen = await walk(fresh, method, auth, kind, query, 2)
                assert len(seen) == len(set(seen)) and set(seen) == expected, (method, kind)
    # One page of everything, all kinds at once, in both formats.
    inner = await call_both(fresh, "search3", {**auth, "query": "", "songCount": "500",
                                               "albumCount": "500", "artistCount": "500"})
    result = inner["searchResult3"]
    assert set(ids(result["song"])) == songs and set(ids(result["album"])) == albums
    assert {a["albumCount"] for a in result["artist"]} == {3, 1}
    # Songs come by id, so an app's later pages never see an earlier song again.
    assert ids(result["song"]) == sorted(songs, key=lambda i: int(i[3:]))
    assert ids(result["song"])[:1] == [f"tr-{first['songs'][0]}"]


async def test_a_query_finds_artists_albums_and_songs(client, admin, audio_dir, auth):
    cat = await catalogue(client, admin, audio_dir)
    word = cat["word"].lower()
    result = (await call_both(client, "search3", {**auth, "query": word}))["searchResult3"]
    assert set(ids(result["artist"])) == {f"ar-{n}" for n in cat["artists"]}
    assert set(ids(result["album"])) == {f"al-{n}" for n in cat["albums"]}
    assert set(ids(result["song"])) == {f"tr-{s['id']}" for s in cat["songs"]}
    assert all(a["albumCount"] == 1 for a in result["artist"])
    old = (await call_both(client, "search2", {**auth, "query": word}))["searchResult2"]
    assert set(ids(old["song"])) == set(ids(result["song"]))
    assert all(a["isDir"] for a in old["album"])
    only_songs = (await call_json(client, "search3", {**auth, "query": word, "artistCount": "0",
                                                      "albumCount": "0", "songCount": "1",
                                                      "songOffset": "1"}))["searchResult3"]
    assert not only_songs.get("artist") and not only_songs.get("album")
    assert len(only_songs["song"]) == 1
    nothing = (await call_json(client, "search3", {**auth, "query": "zzqqxxnothing"}))
    assert all(not nothing["searchResult3"].get(k) for k in EVERY)


async def test_hostile_search_parameters(client, auth):
    for method in ("search3", "search2"):
        assert error_of(await call_json(client, method, auth))[0] == 10  # no query
        for name in ("songOffset", "albumOffset", "artistOffset"):
            inner = await call_json(client, method, {**auth, "query": "", name: "-1"})
            assert error_of(inner)[0] == 10
        inner = await call_json(client, method, {**auth, "query": "", "songCount": "lots"})
        assert error_of(inner)[0] == 10
        huge = await call_json(client, method, {**auth, "query": "", "songCount": "9" * 30,
                                                "songOffset": "0"})
        assert huge["status"] == "ok"
        deep = await call_json(client, method, {**auth, "query": "", "songOffset": "9" * 18})
        key = "searchResult3" if method == "search3" else "searchResult2"
        assert not deep[key].get("song")
        weird = await call_json(client, method, {**auth, "query": "\" OR 1=1 -- % _ \\ 'x"})
        assert weird["status"] == "ok"


async def test_concurrent_sync_pages_agree(fresh: TestClient) -> None:
    """Apps fire their sync pages at once: pages read together are the pages read one by one."""
    auth = await rest_params(fresh, await register(fresh))
    made = await bulk_songs(fresh, 10, albums=2)

    async def page(offset: int) -> list[str]:
        inner = await call_json(fresh, "search3", {**auth, "query": "", "songCount": "3",
                                                   "songOffset": str(offset), "albumCount": "0",
                                                   "artistCount": "0"})
        return ids(inner["searchResult3"].get("song"))

    pages = await asyncio.gather(*(page(o) for o in range(0, 12, 3)))
    assert [i for p in pages for i in p] == [f"tr-{n}" for n in made["songs"]]
