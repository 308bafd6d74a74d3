"""Playlists over /rest (SPEC 13, 5): the same playlists and rules as /api/playlist — another
user's private playlist is 70 for every method that takes an id, someone else's public one can
be read but not changed (50), collaborators change the songs of a collaborative one; createPlaylist
with playlistId replaces the songs; updatePlaylist's indexes refer to the list before the call."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, register
from subsonic_read_support import catalogue, rest_params
from subsonic_support import call_both, call_json, error_code
from subsonic_write_support import sid


@pytest.fixture
async def cat(client: TestClient, admin: Account, audio_dir: Any) -> dict[str, Any]:
    return await catalogue(client, admin, audio_dir)


@pytest.fixture
async def auth(client: TestClient, member: Account) -> dict[str, str]:
    return await rest_params(client, member)



def entries(playlist: dict[str, Any]) -> list[str]:
    return [e["id"] for e in playlist.get("entry", [])]


async def api_songs(client: TestClient, account: Account, playlist: str) -> list[int]:
    resp = await client.get(f"/api/playlist/{playlist.removeprefix('pl-')}?limit=100",
                            headers=account.headers)
    assert resp.status == 200, await resp.text()
    return [e["song"]["id"] for e in (await resp.json())["songs"]["items"]]


async def test_create_get_update_delete(client, cat, auth, member):
    a, b, c = (sid(s) for s in cat["songs"])
    created = (await call_json(client, "createPlaylist", [*auth.items(), ("name", "Road trip"),
                                                          ("songId", a), ("songId", b),
                                                          ("songId", a)]))["playlist"]
    pid = created["id"]
    assert pid.startswith("pl-") and created["name"] == "Road trip"
    assert entries(created) == [a, b, a] and created["songCount"] == 3
    assert created["owner"] == member.username and created["public"] is False
    assert created["duration"] == 3
    # The same playlist in the JSON API.
    ids = [s["id"] for s in cat["songs"]]
    assert await api_songs(client, member, pid) == [ids[0], ids[1], ids[0]]

    got = (await call_both(client, "getPlaylist", {**auth, "id": pid}))["playlist"]
    assert entries(got) == [a, b, a]
    listed = (await call_both(client, "getPlaylists", auth))["playlists"]["playlist"]
    assert pid in [p["id"] for p in listed]

    # Indexes refer to the list before the call: removing 0 and 2 leaves b; c is appended.
    params = [*auth.items(), ("playlistId", pid), ("name", "Renamed"), ("comment", "for the car"),
              ("public", "true"), ("songIndexToRemove", "0"), ("songIndexToRemove", "2"),
              ("songIdToAdd", c), ("songIdToAdd", a)]
    assert (await call_json(client, "updatePlaylist", params))["status"] == "ok"
    got = (await call_json(client, "getPlaylist", {**auth, "id": pid}))["playlist"]
    assert entries(got) == [b, c, a]
    assert got["name"] == "Renamed" and got["comment"] == "for the car" and got["public"] is True

    # createPlaylist with playlistId replaces the songs.
    replaced = (await call_json(client, "createPlaylist", [*auth.items(), ("playlistId", pid),
                                                           ("songId", c)]))["playlist"]
    assert replaced["id"] == pid and entries(replaced) == [c] and replaced["name"] == "Renamed"
    assert await api_songs(client, member, pid) == [ids[2]]

    assert (await call_json(client, "deletePlaylist", {**auth, "id": pid}))["status"] == "ok"
    assert await error_code(client, "getPlaylist", {**auth, "id": pid}) == 70


async def test_privacy_and_roles_for_every_method_with_an_id(client, cat, auth, member):
    owner = await register(client)
    owner_auth = await rest_params(client, owner)
    song = sid(cat["songs"][0])
    private = (await call_json(client, "createPlaylist", {**owner_auth, "name": "Mine only",
                                                          "songId": song}))["playlist"]["id"]
    public = (await call_json(client, "createPlaylist", {**owner_auth, "name": "Everyone's",
                                                         "songId": song}))["playlist"]["id"]
    await call_json(client, "updatePlaylist", {**owner_auth, "playlistId": public, "public": "1"})

    # Another user's private playlist is not found, whatever the method.
    assert await error_code(client, "getPlaylist", {**auth, "id": private}) == 70
    assert await error_code(client, "updatePlaylist", {**auth, "playlistId": private, "name": "x"}) == 70
    assert await error_code(client, "updatePlaylist", {**auth, "playlistId": private,
                                                 "songIdToAdd": song}) == 70
    assert await error_code(client, "createPlaylist", {**auth, "playlistId": private,
                                                 "songId": song}) == 70
    assert await error_code(client, "deletePlaylist", {**auth, "id": private}) == 70
    listed = (await call_json(client, "getPlaylists", auth))["playlists"].get("playlist", [])
    assert private not in [p["id"] for p in listed] and public in [p["id"] for p in listed]

    # Someone else's public one: readable, never changeable.
    got = (await call_json(client, "getPlaylist", {**auth, "id": public}))["playlist"]
    assert entries(got) == [song] and got["owner"] == owner.username
    assert await error_code(client, "updatePlaylist", {**auth, "playlistId": public, "name": "x"}) == 50
    assert await error_code(client, "updatePlaylist", {**auth, "playlistId": public,
                                                 "songIndexToRemove": "0"}) == 50
    assert await error_code(client, "updatePlaylist", {**auth, "playlistId": public,
                                                 "songIdToAdd": song}) == 50
    assert await error_code(client, "createPlaylist", {**auth, "playlistId": public,
                                                 "songId": song}) == 50
    assert await error_code(client, "deletePlaylist", {**auth, "id": public}) == 50
    # Nothing changed.
    got = (await call_json(client, "getPlaylist", {**owner_auth, "id": public}))["playlist"]
    assert got["name"] == "Everyone's" and entries(got) == [song]
    got = (await call_json(client, "getPlaylist", {**owner_auth, "id": private}))["playlist"]
    assert got["name"] == "Mine only" and entries(got) == [song]

    # A collaborator changes the songs of a collaborative playlist, not its name.
    resp = await client.post(f"/api/playlist/{private.removeprefix('pl-')}/collaborators",
                             json={"username": member.username}, headers=owner.headers)
    assert resp.status == 201
    assert (await call_json(client, "updatePlaylist", {**auth, "playlistId": private,
                                                       "songIdToAdd": song}))["status"] == "ok"
    assert await error_code(client, "updatePlaylist", {**auth, "playlistId": private, "name": "x"}) == 50
    assert await error_code(client, "deletePlaylist", {**auth, "id": private}) == 50
    listed = (await call_json(client, "getPlaylists", auth))["playlists"]["playlist"]
    assert private in [p["id"] for p in listed]


async def test_get_playlists_of_another_user_is_for_admins(client, cat, auth, member, admin):
    owner = await register(client)
    owner_auth = await rest_params(client, owner)
    private = (await call_json(client, "createPlaylist", {**owner_auth, "name": "Hidden"}))[
        "playlist"]["id"]
    assert await error_code(client, "getPlaylists", {**auth, "username": owner.username}) == 50
    mine = (await call_json(client, "getPlaylists", {**auth, "username": member.username}))
    assert mine["status"] == "ok"
    admin_auth = await rest_params(client, admin)
    theirs = (await call_both(client, "getPlaylists", {**admin_auth, "username": owner.username}
                              ))["playlists"]["playlist"]
    assert [p["id"] for p in theirs] == [private]
    assert await error_code(client, "getPlaylists", {**admin_auth, "username": "nobody-at-all"}) == 70


async def test_hostile_playlist_input(client, cat, auth):
    song = sid(cat["songs"][0])
    pid = (await call_json(client, "createPlaylist", {**auth, "name": "Target",
                                                      "songId": song}))["playlist"]["id"]
    assert await error_code(client, "createPlaylist", auth) == 10
    assert await error_code(client, "createPlaylist", {**auth, "name": "x" * 300}) == 10
    assert await error_code(client, "createPlaylist", {**auth, "name": "Bad", "songId": "tr-999999999"}) == 70
    assert await error_code(client, "createPlaylist", {**auth, "name": "Bad", "songId": "al-1"}) == 70
    for bad in ("1", "pl-", "pl-abc", "tr-1", "pl-" + "9" * 40, "pl-999999999"):
        assert await error_code(client, "getPlaylist", {**auth, "id": bad}) == 70, bad
        assert await error_code(client, "deletePlaylist", {**auth, "id": bad}) == 70, bad
        assert await error_code(client, "updatePlaylist", {**auth, "playlistId": bad}) == 70, bad
    for index in ("5", "-1", "x", "99999999999999"):
        assert await error_code(client, "updatePlaylist", {**auth, "playlistId": pid,
                                                     "songIndexToRemove": index}) == 10, index
    assert await error_code(client, "updatePlaylist", {**auth, "playlistId": pid,
                                                 "songIdToAdd": "tr-999999999"}) == 70
    assert await error_code(client, "updatePlaylist", {**auth, "playlistId": pid, "public": "perhaps"}) == 10
    assert await error_code(client, "getPlaylist", auth) == 10
    assert await error_code(client, "deletePlaylist", auth) == 10
    # A bad part of an update changes none of it.
    params = [*auth.items(), ("playlistId", pid), ("name", "Changed"), ("songIndexToRemove", "0"),
              ("songIndexToRemove", "9")]
    assert await error_code(client, "updatePlaylist", params) == 10
    got = (await call_json(client, "getPlaylist", {**auth, "id": pid}))["playlist"]
    assert got["name"] == "Target" and entries(got) == [song]
