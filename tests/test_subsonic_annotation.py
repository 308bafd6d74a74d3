"""Annotation over /rest (SPEC 13, 5, 7): star/unstar are the library of SPEC 5 (seen in
getStarred2 and /api/library), setRating validates and keeps nothing yet, scrobble counts a play
exactly once per user, song and time through the play events (hundreds in flight, retries
included), and submission=false is "now playing" in getNowPlaying, in Redis and in process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import REDIS_URL, Account, make_admin, make_config, register
from subsonic_read_support import catalogue, rest_params, upload
from subsonic_support import call_both, call_json, error_code
from subsonic_write_support import play_count, plays_of, sid
from support import eventually

from app.adapters.kv import MemoryKV, RedisKV
from app.main import create_app
from app.web import keys


@pytest.fixture
async def cat(client: TestClient, admin: Account, audio_dir: Any) -> dict[str, Any]:
    return await catalogue(client, admin, audio_dir)


@pytest.fixture
async def auth(client: TestClient, member: Account) -> dict[str, str]:
    return await rest_params(client, member)



async def library_ids(client: TestClient, account: Account, kind: str) -> set[int]:
    resp = await client.get(f"/api/library/{kind}?limit=100", headers=account.headers)
    assert resp.status == 200
    key = {"songs": "song", "albums": "album", "artists": "artist"}[kind]
    return {item[key]["id"] for item in (await resp.json())["items"]}


async def test_star_and_unstar_are_the_library(client, cat, auth, member):
    song, album, artist = cat["songs"][0], cat["albums"][0], cat["artists"][1]
    params = [*auth.items(), ("id", sid(song)), ("id", f"al-{cat['albums'][1]}"),
              ("albumId", f"al-{album}"), ("artistId", f"ar-{artist}"), ("id", sid(song))]
    inner = await call_both(client, "star", params)
    assert inner["status"] == "ok"
    assert await library_ids(client, member, "songs") == {song["id"]}
    assert await library_ids(client, member, "albums") == {album, cat["albums"][1]}
    assert await library_ids(client, member, "artists") == {artist}
    starred = (await call_both(client, "getStarred2", auth))["starred2"]
    assert [s["id"] for s in starred["song"]] == [sid(song)]
    assert {a["id"] for a in starred["album"]} == {f"al-{album}", f"al-{cat['albums'][1]}"}
    assert [a["id"] for a in starred["artist"]] == [f"ar-{artist}"]
    assert starred["song"][0]["starred"]

    # What the pages' API adds shows here too, and unstar takes it all away.
    resp = await client.put(f"/api/library/songs/{cat['songs'][1]['id']}", headers=member.headers)
    assert resp.status in (200, 201, 204)
    starred = (await call_json(client, "getStarred2", auth))["starred2"]
    assert {s["id"] for s in starred["song"]} == {sid(song), sid(cat["songs"][1])}
    await call_both(client, "unstar", [*auth.items(), ("id", sid(song)), ("id", sid(cat["songs"][1])),
                                       ("albumId", f"al-{album}"), ("artistId", f"ar-{artist}"),
                                       ("id", f"al-{cat['albums'][1]}")])
    for kind in ("songs", "albums", "artists"):
        assert await library_ids(client, member, kind) == set()
    # Unstarring what is not starred is harmless.
    assert (await call_json(client, "unstar", {**auth, "id": sid(song)}))["status"] == "ok"


async def test_star_refuses_bad_ids_and_changes_nothing(client, cat, auth, member):
    good = ("id", sid(cat["songs"][0]))
    for bad in (("id", "tr-999999999"), ("albumId", "tr-1"), ("artistId", f"al-{cat['albums'][0]}"),
                ("id", "pl-1"), ("id", "im-1"), ("id", "nonsense"), ("albumId", "al-"),
                ("id", "tr-" + "9" * 40)):
        assert await error_code(client, "star", [*auth.items(), good, bad]) == 70, bad
    assert await library_ids(client, member, "songs") == set()
    assert await error_code(client, "star", auth) == 10
    assert await error_code(client, "unstar", auth) == 10
    many = [*auth.items(), *[("id", sid(cat["songs"][0]))] * 501]
    assert await error_code(client, "star", many) == 10


async def test_set_rating_validates_and_answers_ok(client, cat, auth):
    for rating in ("0", "1", "5"):
        for item in (sid(cat["songs"][0]), f"al-{cat['albums'][0]}", f"ar-{cat['artists'][0]}"):
            inner = await call_both(client, "setRating", {**auth, "id": item, "rating": rating})
            assert inner["status"] == "ok"
    for bad in ("6", "-1", "three", "99999999999999999999999"):
        assert await error_code(client, "setRating", {**auth, "id": sid(cat["songs"][0]),
                                                "rating": bad}) == 10, bad
    assert await error_code(client, "setRating", {**auth, "id": sid(cat["songs"][0])}) == 10
    assert await error_code(client, "setRating", {**auth, "id": "tr-999999999", "rating": "3"}) == 70
    assert await error_code(client, "setRating", {**auth, "rating": "3"}) == 10


@pytest.fixture
async def local(aiohttp_client, database_url, tmp_path) -> TestClient:
    """An app with no broker: its consumers run in process (SPEC 2), as in test_listening."""
    client: TestClient = await aiohttp_client(create_app(make_config(database_url, tmp_path,
                                                                     amqp_url="")))
    return client


async def test_scrobble_counts_once_per_user_song_and_time(local, audio_dir):
    client = local
    admin = await make_admin(client, await register(client))
    listeners = [await register(client) for _ in range(3)]
    auths = [await rest_params(client, a) for a in listeners]
    song = await upload(client, admin, audio_dir, title="Scrobbled")
    base = 1_700_000_000_000

    # 3 listeners × 60 distinct times, every scrobble sent twice at once (a retry), and a
    # third time as a POST: 540 requests in flight for 180 plays.
    requests = []
    for auth in auths:
        for i in range(60):
            params = {**auth, "id": sid(song), "time": str(base + i * 1000)}
            requests += [call_json(client, "scrobble", params), call_json(client, "scrobble", params),
                         call_json(client, "scrobble", params, post=True)]
    answers = await asyncio.gather(*requests)
    assert all(a["status"] == "ok" for a in answers)

    async def settled() -> bool:
        return await play_count(client, song["id"]) >= 180

    await eventually(settled, timeout=30)
    await asyncio.sleep(0.5)
    assert await play_count(client, song["id"]) == 180
    for listener in listeners:
        assert await plays_of(client, listener.id, song["id"]) == 60
    # The play keeps the time the app gave.
    history = await (await client.get("/api/stream/history?limit=1",
                                      headers=listeners[0].headers)).json()
    assert history["total"] == 60 and history["items"][0]["played_at"].startswith("2023-11-14T22:14")

    # Several ids (and times) at once; an id past the last time is played now.
    other = await upload(client, admin, audio_dir, title="Scrobbled too")
    params = [*auths[0].items(), ("id", sid(song)), ("id", sid(other)), ("id", sid(other)),
              ("time", str(base + 999_000)), ("time", str(base + 999_000))]
    assert (await call_json(client, "scrobble", params))["status"] == "ok"

    async def both() -> bool:
        return await play_count(client, other["id"]) == 2 and await play_count(
            client, song["id"]) == 181

    await eventually(both, timeout=20)


async def test_scrobble_refuses_bad_input_and_counts_nothing(local, audio_dir):
    client = local
    admin = await make_admin(client, await register(client))
    listener = await register(client)
    auth = await rest_params(client, listener)
    song = await upload(client, admin, audio_dir, title="Never counted")
    for params in ([("id", sid(song)), ("id", "tr-999999999")], [("id", "al-1")],
                   [("id", sid(song)), ("time", "yesterday")],
                   [("id", sid(song)), ("time", "1"), ("time", "2")],
                   [("id", sid(song)), ("submission", "maybe")], []):
        assert await error_code(client, "scrobble", [*auth.items(), *params]) in (10, 70), params
    await asyncio.sleep(0.5)
    assert await play_count(client, song["id"]) == 0


async def test_now_playing_is_what_apps_said_they_play(client, cat, member):
    auth = await rest_params(client, member)
    other = await register(client)
    other_auth = await rest_params(client, other)
    empty = (await call_both(client, "getNowPlaying", auth))["nowPlaying"]
    assert empty == {} or empty.get("entry", []) == []

    before = await play_count(client, cat["songs"][0]["id"])
    inner = await call_both(client, "scrobble", {**auth, "id": sid(cat["songs"][0]),
                                                 "submission": "false", "c": "PhoneApp"})
    assert inner["status"] == "ok"
    await call_json(client, "scrobble", {**other_auth, "id": sid(cat["songs"][2]),
                                         "submission": "False"})
    entries = (await call_both(client, "getNowPlaying", auth))["nowPlaying"]["entry"]
    by_user = {e["username"]: e for e in entries}
    assert by_user[member.username]["id"] == sid(cat["songs"][0])
    assert by_user[member.username]["playerName"] == "PhoneApp"
    assert by_user[member.username]["minutesAgo"] == 0
    assert by_user[other.username]["id"] == sid(cat["songs"][2])
    # The same player's next song replaces its entry.
    await call_json(client, "scrobble", {**auth, "id": sid(cat["songs"][1]), "submission": "0",
                                         "c": "PhoneApp"})
    entries = (await call_json(client, "getNowPlaying", other_auth))["nowPlaying"]["entry"]
    mine = [e for e in entries if e["username"] == member.username]
    assert [e["id"] for e in mine] == [sid(cat["songs"][1])]
    # "Now playing" counts nothing.
    await asyncio.sleep(0.3)
    assert await play_count(client, cat["songs"][0]["id"]) == before
    assert await error_code(client, "scrobble", {**auth, "id": "tr-999999999", "submission": "false"}) == 70


@pytest.mark.parametrize("store", ["redis", "memory"])
async def test_now_playing_entries_expire_in_either_store(client, cat, store):
    kv = RedisKV(REDIS_URL, f"np-test-{time.time_ns()}") if store == "redis" else MemoryKV()
    service = type(client.app[keys.NOW_PLAYING])(kv, client.app[keys.CATALOG])
    song = cat["songs"][0]
    try:
        now = time.time()
        await service.playing(1, "someone", 7, "App", song["id"], now=now)
        await service.playing(2, "another", 8, "App", song["id"], now=now + 1)
        entries = await service.entries(now=now + 2)
        assert [e["username"] for e in entries] == ["another", "someone"]
        assert entries[0]["song"]["id"] == song["id"]
        # Past the song's length and the grace, an entry is gone (and dropped from the store).
        later = now + song["duration_ms"] / 1000 + 61.5
        assert [e["username"] for e in await service.entries(now=later)] == []
        assert await kv.hash_all("nowplaying") == {}
    finally:
        await kv.close()
