"""The library: likes, saves, follows with added_at and paging; contains; playlists only if visible."""

from __future__ import annotations

from conftest import register, unique
from test_playlists import create, songs

from app.web import keys


async def test_like_save_follow_and_contains(client, member, admin, audio_dir):
    a, b, c = await songs(client, admin, audio_dir, 3)
    song = await (await client.get(f"/api/song/{a}", headers=member.headers)).json()
    for sid in (a, b):
        assert (await client.put(f"/api/library/songs/{sid}", headers=member.headers)).status == 204
    assert (await client.put(f"/api/library/songs/{a}", headers=member.headers)).status == 204  # twice: harmless
    page = await (await client.get("/api/library/songs?limit=1", headers=member.headers)).json()
    assert page["total"] == 2 and page["limit"] == 1 and len(page["items"]) == 1
    assert page["items"][0]["song"]["id"] == b and page["items"][0]["added_at"].endswith("Z")
    resp = await client.get(f"/api/library/songs/contains?ids={a},{c},{b}", headers=member.headers)
    assert await resp.json() == [True, False, True]
    assert (await client.delete(f"/api/library/songs/{a}", headers=member.headers)).status == 204
    assert await (await client.get(f"/api/library/songs/contains?ids={a}", headers=member.headers)).json() == [False]
    # another listener's library is their own
    other = await register(client)
    assert await (await client.get(f"/api/library/songs/contains?ids={b}", headers=other.headers)).json() == [False]
    # albums and artists
    album_id, artist_id = song["album_id"], song["artist_id"]
    if album_id:
        assert (await client.put(f"/api/library/albums/{album_id}", headers=member.headers)).status == 204
        albums = await (await client.get("/api/library/albums", headers=member.headers)).json()
        assert albums["items"][0]["album"]["id"] == album_id
    assert (await client.put(f"/api/library/artists/{artist_id}", headers=member.headers)).status == 204
    artists = await (await client.get("/api/library/artists", headers=member.headers)).json()
    assert artists["items"][0]["artist"]["id"] == artist_id
    # unknown ids
    for kind in ("songs", "albums", "artists", "playlists"):
        assert (await client.put(f"/api/library/{kind}/{10**15}", headers=member.headers)).status == 404


async def test_contains_bad_ids_are_422(client, member):
    for q in ("", "ids=", "ids=a", "ids=1,,2", "ids=-1", "ids=0", "ids=1;DROP", "ids=" + ",".join(["1"] * 51),
              "ids=99999999999999999999"):
        resp = await client.get(f"/api/library/songs/contains?{q}", headers=member.headers)
        assert resp.status == 422, q
        assert (await resp.json())["error"]["code"] == "invalid_input"


async def test_follow_only_visible_playlists(client, member):
    other = await register(client)
    pub = await create(client, other, is_public=True)
    priv = await create(client, other)
    assert (await client.put(f"/api/library/playlists/{priv['id']}", headers=member.headers)).status == 404
    assert (await client.put(f"/api/library/playlists/{pub['id']}", headers=member.headers)).status == 204
    page = await (await client.get("/api/library/playlists", headers=member.headers)).json()
    assert [i["playlist"]["id"] for i in page["items"]] == [pub["id"]]
    # made private since: gone from every answer
    await client.put(f"/api/playlist/{pub['id']}", headers=other.headers, json={"is_public": False})
    page = await (await client.get("/api/library/playlists", headers=member.headers)).json()
    assert page["items"] == [] and page["total"] == 0
    assert await (await client.get(f"/api/library/playlists/contains?ids={pub['id']}",
                                   headers=member.headers)).json() == [False]


async def test_library_needs_a_session(client):
    for path in ("/api/library/songs", "/api/library/albums/contains?ids=1", "/api/playlist",
                 "/api/playlist/public"):
        resp = await client.get(path)
        assert resp.status == 401 and "WWW-Authenticate" in resp.headers
    assert (await client.put("/api/library/songs/1")).status == 401
    assert (await client.post("/api/playlist", json={"name": unique()})).status == 401
    _ = keys
