"""Browsing over /rest (SPEC 13): by tags (getArtists, getArtist, getAlbum, getSong, getGenres,
the infos, top and similar songs) and by folders (getIndexes, getMusicDirectory), every `f=json`
answer validated against the OpenSubsonic schemas, XML compared with JSON, ids and cover ids as
shapes.py defines them, stars as the caller's own library, and hostile ids answered with
Subsonic errors."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, register, unique
from subsonic_read_support import catalogue, ids, rest_params
from subsonic_support import call, call_both, call_json, error_code, error_of
from yarl import URL

from app.media import images
from app.web import keys


@pytest.fixture
async def cat(client: TestClient, admin: Account, audio_dir: Any) -> dict[str, Any]:
    return await catalogue(client, admin, audio_dir)


@pytest.fixture
async def auth(client: TestClient, member: Account) -> dict[str, str]:
    return await rest_params(client, member)



def artist_entries(index: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for group in index for a in group.get("artist", [])}


async def test_get_artists_and_indexes_list_every_artist_by_letter(client, cat, auth):
    inner = await call_both(client, "getArtists", auth)
    found = artist_entries(inner["artists"]["index"])
    one, two = (f"ar-{n}" for n in cat["artists"])
    assert {one, two} <= set(found)
    assert found[one]["albumCount"] == 1 and found[one]["name"] == f"{cat['word']} Alpha"
    letters = [g["name"] for g in inner["artists"]["index"]]
    assert letters == sorted(letters, key=lambda n: (n != "#", n))
    group = next(g for g in inner["artists"]["index"] if one in ids(g["artist"]))
    assert group["name"] == cat["word"][0].upper()

    indexes = (await call_both(client, "getIndexes", auth))["indexes"]
    assert indexes["ignoredArticles"] == "" and indexes["lastModified"] > 0
    assert {one, two} <= set(artist_entries(indexes["index"]))


async def test_get_artist_album_and_song(client, cat, auth):
    one = cat["artists"][0]
    artist = (await call_both(client, "getArtist", {**auth, "id": f"ar-{one}"}))["artist"]
    assert artist["id"] == f"ar-{one}" and artist["albumCount"] == 1
    assert ids(artist["album"]) == [f"al-{cat['albums'][0]}"]

    album = (await call_both(client, "getAlbum", {**auth, "id": f"al-{cat['albums'][0]}"}))["album"]
    assert album["songCount"] == 2 and album["year"] == 2001 and album["genre"] == "Ambient"
    assert album["artistId"] == f"ar-{one}" and album["coverArt"].startswith("im-")
    assert [s["track"] for s in album["song"]] == [1, 2]
    first = album["song"][0]
    assert first["id"] == f"tr-{cat['songs'][0]['id']}" and first["parent"] == album["id"]
    assert first["albumId"] == album["id"] and first["isDir"] is False
    assert first["type"] == "music" and first["mediaType"] == "song"
    assert first["suffix"] == "mp3" and first["contentType"] == "audio/mpeg"
    assert first["duration"] == 1 and first["bitRate"] > 0 and first["size"] > 0
    assert first["coverArt"].startswith("im-") and first["path"].endswith(".mp3")
    assert "starred" not in first

    song = (await call_both(client, "getSong", {**auth, "id": first["id"]}))["song"]
    assert song == first
    # The cover id names the image: the one /api/image serves.
    image = int(song["coverArt"].removeprefix("im-"))
    resp = await client.get(f"/api/image/{image}", params={"size": 64})
    assert resp.status == 200


async def test_music_directory_walks_artist_album_song(client, cat, auth):
    one = f"ar-{cat['artists'][0]}"
    top = (await call_both(client, "getMusicDirectory", {**auth, "id": one}))["directory"]
    assert top["id"] == one and top["name"] == f"{cat['word']} Alpha"
    [album] = top["child"]
    assert album["isDir"] is True and album["parent"] == one and album["id"] == f"al-{cat['albums'][0]}"
    below = (await call_both(client, "getMusicDirectory", {**auth, "id": album["id"]}))["directory"]
    assert below["parent"] == one and below["name"] == album["title"]
    assert [c["isDir"] for c in below["child"]] == [False, False]
    assert ids(below["child"]) == [f"tr-{s['id']}" for s in cat["songs"][:2]]


async def test_genres_count_songs_and_albums(client, cat, auth):
    genres = (await call_both(client, "getGenres", auth))["genres"]["genre"]
    by_name = {g["value"]: g for g in genres}
    assert by_name["Ambient"]["songCount"] >= 2 and by_name["Ambient"]["albumCount"] >= 1
    assert by_name["Jazz"]["songCount"] >= 1


async def test_infos_top_and_similar_songs(client, cat, auth):
    one = f"ar-{cat['artists'][0]}"
    for method, key in (("getArtistInfo", "artistInfo"), ("getArtistInfo2", "artistInfo2")):
        for some_id in (one, f"al-{cat['albums'][0]}", f"tr-{cat['songs'][0]['id']}"):
            info = (await call_both(client, method, {**auth, "id": some_id}))[key]
            assert info.get("similarArtist", []) == []
    for method in ("getAlbumInfo", "getAlbumInfo2"):
        info = (await call_both(client, method, {**auth, "id": f"al-{cat['albums'][0]}"}))["albumInfo"]
        for name, size in (("smallImageUrl", 64), ("mediumImageUrl", 300), ("largeImageUrl", 640)):
            assert info[name].startswith("http://") and info[name].endswith(f"size={size}")
        resp = await client.get(URL(info["smallImageUrl"]).path_qs)
        assert resp.status == 200

    name = f"{cat['word']} Alpha"
    top = (await call_both(client, "getTopSongs", {**auth, "artist": name.upper()}))["topSongs"]
    assert sorted(ids(top["song"])) == sorted(f"tr-{s['id']}" for s in cat["songs"][:2])
    by_id = (await call_json(client, "getTopSongs", {**auth, "id": one, "count": "1"}))["topSongs"]
    assert len(by_id["song"]) == 1
    nobody = (await call_json(client, "getTopSongs", {**auth, "artist": "no such artist anywhere"}))
    assert nobody["topSongs"].get("song", []) == []

    first = f"tr-{cat['songs'][0]['id']}"
    similar = (await call_both(client, "getSimilarSongs", {**auth, "id": first}))["similarSongs"]
    assert ids(similar["song"]) == [f"tr-{cat['songs'][1]['id']}"]
    similar2 = (await call_both(client, "getSimilarSongs2", {**auth, "id": one}))["similarSongs2"]
    assert len(similar2["song"]) == 2


async def test_starred_shows_the_callers_own_library_only(client, cat, member, auth):
    song, album, artist = cat["songs"][0]["id"], cat["albums"][0], cat["artists"][0]
    for kind, item in (("songs", song), ("albums", album), ("artists", artist)):
        resp = await client.put(f"/api/library/{kind}/{item}", headers=member.headers)
        assert resp.status in (200, 204), await resp.text()
    mine = (await call_json(client, "getAlbum", {**auth, "id": f"al-{album}"}))["album"]
    assert mine["starred"].endswith("Z") and mine["song"][0]["starred"]
    assert "starred" not in mine["song"][1]
    other = await rest_params(client, await register(client))
    theirs = (await call_json(client, "getAlbum", {**other, "id": f"al-{album}"}))["album"]
    assert "starred" not in theirs and all("starred" not in s for s in theirs["song"])
    artists = artist_entries((await call_json(client, "getArtists", auth))["artists"]["index"])
    assert artists[f"ar-{artist}"]["starred"]
    artists = artist_entries((await call_json(client, "getArtists", other))["artists"]["index"])
    assert "starred" not in artists[f"ar-{artist}"]


@pytest.mark.parametrize("method", ["getArtist", "getAlbum", "getSong", "getMusicDirectory",
                                    "getArtistInfo", "getArtistInfo2", "getAlbumInfo",
                                    "getAlbumInfo2", "getSimilarSongs", "getSimilarSongs2"])
async def test_hostile_ids_are_subsonic_errors(client, auth, method):
    assert await error_code(client, method, auth) == 10  # no id
    for bad in ("999999999", "ar-999999999", "al-999999999", "tr-999999999", "al-", "al-x",
                "al--1", "al-99999999999999999999999", "x" * 5000, "al-1; DROP TABLE songs",
                "im-1", "ar-0"):
        assert await error_code(client, method, {**auth, "id": bad}) == 70, bad
    status, _, text = await call(client, method, {**auth, "id": "al-999999999"}, fmt=None)
    assert status == 200 and 'code="70"' in text


async def test_a_song_id_is_not_an_album_id(client, cat, auth):
    song = f"tr-{cat['songs'][0]['id']}"
    assert await error_code(client, "getAlbum", {**auth, "id": song}) == 70
    assert await error_code(client, "getArtist", {**auth, "id": f"al-{cat['albums'][0]}"}) == 70
    assert await error_code(client, "getMusicDirectory", {**auth, "id": song}) == 70
    assert await error_code(client, "getTopSongs", auth) == 10
    assert await error_code(client, "getTopSongs", {**auth, "artist": "x", "count": "many"}) == 10
    huge = await call_json(client, "getTopSongs", {**auth, "id": f"ar-{cat['artists'][0]}",
                                                   "count": "9" * 40})
    assert len(huge["topSongs"]["song"]) == 2


async def test_every_method_needs_credentials(client):
    for method in ("getArtists", "getIndexes", "getAlbum", "getGenres"):
        inner = await call_json(client, method, {"v": "1.16.1", "c": "t", "id": "al-1"})
        assert error_of(inner)[0] == 10
    assert client.app[keys.SUBSONIC].find("getArtistInfo2") is not None


async def test_the_artist_index_files_every_name_under_its_letter(client, admin, auth):
    """Leading spaces, digits, accents and a name with no letter at all: each artist under the
    letter an app shows it at ("#" first), in the index's order within the letter."""
    word = unique("idx").lower()
    names = {"spaced": f"   zz{word} Spaced", "digit": f"9 {word} Lives", "accent": f"Éé{word}",
             "symbol": f"!{word}", "first": f"Mm{word} A", "second": f"Mm{word} B"}
    made = {}
    for key, name in names.items():
        resp = await client.post("/api/artist", json={"name": name}, headers=admin.headers)
        assert resp.status == 201, await resp.text()
        made[key] = f"ar-{(await resp.json())['id']}"
    pictured = await client.put(f"/api/artist/{made['first'][3:]}/image",
                                data=images.placeholder_cover(word, 300),
                                headers={**admin.headers, "Content-Type": "image/jpeg"})
    assert pictured.status == 200, await pictured.text()
    picture = (await pictured.json())["image_url"]
    for method, root in (("getArtists", "artists"), ("getIndexes", "indexes")):
        index = (await call_both(client, method, auth))[root]["index"]
        letters = [group["name"] for group in index]
        assert letters == sorted(letters, key=lambda n: (n != "#", n)) and len(set(letters)) == len(letters)
        under = {a["id"]: group["name"] for group in index for a in group["artist"]}
        assert [under[made[k]] for k in ("spaced", "digit", "accent", "symbol", "first")] == \
            ["Z", "#", "É", "#", "M"]
        group_m = next(group["artist"] for group in index if group["name"] == "M")
        order = [a["id"] for a in group_m]
        assert order.index(made["first"]) < order.index(made["second"])
        entry = group_m[order.index(made["first"])]
        # The picture as an app fetches it: absolute, at the address it called, and by cover id.
        assert entry["artistImageUrl"] == str(client.make_url(picture))
        if method == "getArtists":
            assert entry["coverArt"] == f"im-{URL(picture).path.rsplit('/', 1)[1]}"
        fetched = await client.get(URL(entry["artistImageUrl"]).path_qs, headers=admin.headers)
        assert fetched.status == 200 and (await fetched.read())[:2] == b"\xff\xd8"
        assert "artistImageUrl" not in group_m[order.index(made["second"])]
