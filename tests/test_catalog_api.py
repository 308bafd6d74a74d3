"""The catalogue API: uploads of real files, bad files, admin-only writes, fresh reads."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, make_audio, make_config, register, unique

from app.main import create_app
from app.media import images
from app.web import keys

COVER = images.placeholder_cover("catalog tests", 300)
TAGS = {"title": "Harbour Lights", "album_artist": None, "track": 3, "track_total": 12, "disc": 1,
        "year": 2019, "genre": "Folk"}
FORMATS = ["mp3", "flac", "ogg", "opus", "m4a", "wav"]


async def upload(client: TestClient, admin: Account, path: Path, **fields: Any) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, str(value))
    form.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name,
                   content_type="application/octet-stream")
    return await client.post("/api/song", data=form, headers=admin.headers)


async def song_count(client: TestClient) -> int:
    return int(await client.app[keys.DB].fetchval("SELECT COUNT(*) FROM songs"))


def stored_files(client: TestClient) -> set[str]:
    root = client.app[keys.CONFIG].media_path
    return {str(p) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("fmt", FORMATS)
async def test_upload_fills_fields_from_tags(client, admin, audio_dir, fmt):
    artist, album = unique("Artist "), unique("Album ")
    path = make_audio(audio_dir, fmt, seconds=2.0, artist=artist, album=album,
                      cover=COVER if fmt != "wav" else None, **TAGS)
    resp = await upload(client, admin, path)
    assert resp.status == 201, await resp.text()
    song = await resp.json()
    assert song["title"] == "Harbour Lights"
    assert song["artist"]["name"] == artist
    assert song["album"]["title"] == album
    assert (song["track_number"], song["disc_number"], song["year"], song["genre"]) == (3, 1, 2019, "Folk")
    assert abs(song["duration_ms"] - 2000) < 150
    assert song["bitrate"] > 0 and song["sample_rate"] in (44100, 48000)
    assert song["size"] == path.stat().st_size
    assert song["mime_type"].startswith("audio/")
    if fmt != "wav":
        assert song["cover_url"], "the embedded cover becomes the album cover"
        img = await client.get(song["cover_url"], headers=admin.headers)
        assert img.status == 200 and (await img.read())[:2] == b"\xff\xd8"
    # The stored file is byte for byte the upload.
    stored = await client.app[keys.DB].fetchone("SELECT file_path FROM songs WHERE id = %s", (song["id"],))
    assert client.app[keys.MEDIA].path(stored["file_path"]).read_bytes() == path.read_bytes()
    again = await client.get(f"/api/song/{song['id']}", headers=admin.headers)
    assert (await again.json())["title"] == "Harbour Lights"


async def test_same_file_twice_is_409_with_existing_id(client, admin, audio_dir):
    path = make_audio(audio_dir, "mp3", artist=unique("A"), title="Twice")
    first = await (await upload(client, admin, path)).json()
    resp = await upload(client, admin, path)
    assert resp.status == 409
    body = await resp.json()
    assert body["error"]["code"] == "conflict"
    assert body["error"]["details"]["existing_id"] == first["id"]


@pytest.mark.parametrize(("name", "content", "status"), [
    ("notes.mp3", b"this is a text file, not audio\n" * 40, 415),
    ("random.flac", os.urandom(4096), 415),
])
async def test_non_audio_is_415_and_stores_nothing(client, admin, tmp_path, name, content, status):
    path = tmp_path / name
    path.write_bytes(content)
    before_count, before_files = await song_count(client), stored_files(client)
    resp = await upload(client, admin, path)
    assert resp.status == status
    assert (await resp.json())["error"]["code"] == "unsupported_media_type"
    assert await song_count(client) == before_count
    assert stored_files(client) == before_files


async def test_empty_and_truncated_audio_are_422(client, admin, audio_dir, tmp_path):
    before_count, before_files = await song_count(client), stored_files(client)
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    resp = await upload(client, admin, empty)
    assert resp.status == 422
    flac = make_audio(audio_dir, "flac", seconds=3.0, title="Cut short")
    truncated = tmp_path / "cut.flac"
    truncated.write_bytes(flac.read_bytes()[: flac.stat().st_size * 4 // 10])
    resp = await upload(client, admin, truncated)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["code"] == "invalid_input"
    assert await song_count(client) == before_count
    assert stored_files(client) == before_files


async def test_upload_over_the_cap_is_413_and_leaves_no_temp_file(aiohttp_client, database_url, tmp_path):
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path, max_upload_mb=1)))
    admin = await register(client)
    await client.app[keys.DB].execute("UPDATE users SET role = 'admin' WHERE id = %s", (admin.id,))
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + os.urandom(2 * 1024 * 1024))
    resp = await upload(client, admin, big)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_large"
    assert stored_files(client) == set()


async def test_json_upload_with_base64(client, admin, audio_dir):
    import base64

    path = make_audio(audio_dir, "mp3", seconds=1.0, title="From JSON", artist=unique("J"))
    resp = await client.post("/api/song", headers=admin.headers, json={
        "file_base64": base64.b64encode(path.read_bytes()).decode(), "genre": "Jazz",
        "id": 999999, "play_count": 1000,
    })
    assert resp.status == 201, await resp.text()
    song = await resp.json()
    assert song["title"] == "From JSON" and song["genre"] == "Jazz"
    assert song["play_count"] == 0 and song["id"] != 999999


async def test_member_gets_403_on_every_catalogue_write(client, admin, member, audio_dir):
    path = make_audio(audio_dir, "mp3", artist=unique("M"), album=unique("Al"))
    song = await (await upload(client, admin, path)).json()
    h = member.headers
    checks = [
        await upload(client, member, make_audio(audio_dir, "mp3")),
        await client.put(f"/api/song/{song['id']}", json={"title": "x"}, headers=h),
        await client.delete(f"/api/song/{song['id']}", headers=h),
        await client.post("/api/artist", json={"name": unique("N")}, headers=h),
        await client.put(f"/api/artist/{song['artist_id']}", json={"name": "x"}, headers=h),
        await client.delete(f"/api/artist/{song['artist_id']}", headers=h),
        await client.put(f"/api/artist/{song['artist_id']}/image", data=COVER,
                         headers={**h, "Content-Type": "image/jpeg"}),
        await client.post("/api/album", json={"title": "x", "artist_id": song["artist_id"]}, headers=h),
        await client.put(f"/api/album/{song['album_id']}", json={"title": "x"}, headers=h),
        await client.delete(f"/api/album/{song['album_id']}", headers=h),
        await client.put(f"/api/album/{song['album_id']}/cover", data=COVER,
                         headers={**h, "Content-Type": "image/jpeg"}),
    ]
    assert [r.status for r in checks] == [403] * len(checks)
    fresh = await (await client.get(f"/api/song/{song['id']}", headers=h)).json()
    assert fresh["title"] == song["title"]


async def test_anonymous_reads_are_401(client):
    for path in ("/api/song", "/api/song/1", "/api/artist", "/api/album", "/api/album/1"):
        resp = await client.get(path)
        assert resp.status == 401, path


async def test_artist_and_album_crud_and_lists(client, admin, audio_dir):
    h = admin.headers
    name = unique("Band ")
    resp = await client.post("/api/artist", json={"name": name, "bio": "From the harbour"}, headers=h)
    assert resp.status == 201
    artist = await resp.json()
    dup = await client.post("/api/artist", json={"name": name.upper()}, headers=h)
    assert dup.status == 409 and (await dup.json())["error"]["details"]["existing_id"] == artist["id"]
    resp = await client.post("/api/album", json={"title": "First Light", "artist_id": artist["id"],
                                                 "album_type": "ep", "year": 2021}, headers=h)
    assert resp.status == 201, await resp.text()
    album = await resp.json()
    assert album["album_type"] == "ep" and album["artist"]["name"] == name
    bad = await client.post("/api/album", json={"title": "x", "artist_id": 10**12}, headers=h)
    assert bad.status == 422
    path = make_audio(audio_dir, "mp3", title="Track One")
    song = await (await upload(client, admin, path, artist_id=artist["id"], album_id=album["id"],
                               track_number=1)).json()
    assert song["artist_id"] == artist["id"] and song["album_id"] == album["id"]
    full = await (await client.get(f"/api/album/{album['id']}", headers=h)).json()
    assert [s["id"] for s in full["songs"]] == [song["id"]]
    albums = await (await client.get(f"/api/artist/{artist['id']}/albums", headers=h)).json()
    assert albums["total"] == 1 and albums["items"][0]["id"] == album["id"]
    top = await (await client.get(f"/api/artist/{artist['id']}/top-songs", headers=h)).json()
    assert [s["id"] for s in top["items"]] == [song["id"]]
    listed = await (await client.get(f"/api/song?artist_id={artist['id']}", headers=h)).json()
    assert listed["total"] == 1 and listed["limit"] == 20 and listed["offset"] == 0
    by_q = await (await client.get(f"/api/artist?q={name[-6:]}", headers=h)).json()
    assert [a["id"] for a in by_q["items"]] == [artist["id"]]
    # An artist with songs cannot be deleted; the album can (its songs stay).
    assert (await client.delete(f"/api/artist/{artist['id']}", headers=h)).status == 409
    assert (await client.delete(f"/api/album/{album['id']}", headers=h)).status == 204
    orphan = await (await client.get(f"/api/song/{song['id']}", headers=h)).json()
    assert orphan["album_id"] is None
    assert (await client.delete(f"/api/song/{song['id']}", headers=h)).status == 204
    assert (await client.get(f"/api/song/{song['id']}", headers=h)).status == 404
    assert (await client.delete(f"/api/artist/{artist['id']}", headers=h)).status == 204
    assert (await client.get(f"/api/artist/{artist['id']}", headers=h)).status == 404


async def test_read_after_write_is_never_stale_from_any_process(client, admin, audio_dir, aiohttp_client):
    # A second app on the same database and Redis namespace stands in for a second process.
    other = await aiohttp_client(create_app(client.app[keys.CONFIG]))
    path = make_audio(audio_dir, "mp3", title="Before", artist=unique("S"))
    song = await (await upload(client, admin, path)).json()
    for c in (client, other):  # both now have it cached
        assert (await (await c.get(f"/api/song/{song['id']}", headers=admin.headers)).json())["title"] == "Before"
        listed = await (await c.get(f"/api/song?artist_id={song['artist_id']}", headers=admin.headers)).json()
        assert listed["items"][0]["title"] == "Before"
    resp = await client.put(f"/api/song/{song['id']}", json={"title": "After"}, headers=admin.headers)
    assert resp.status == 200
    for c in (client, other):
        assert (await (await c.get(f"/api/song/{song['id']}", headers=admin.headers)).json())["title"] == "After"
        listed = await (await c.get(f"/api/song?artist_id={song['artist_id']}", headers=admin.headers)).json()
        assert listed["items"][0]["title"] == "After"
    renamed = await other.put(f"/api/artist/{song['artist_id']}", json={"name": unique("Renamed ")},
                              headers=admin.headers)
    new_name = (await renamed.json())["name"]
    for c in (client, other):
        fresh = await (await c.get(f"/api/song/{song['id']}", headers=admin.headers)).json()
        assert fresh["artist"]["name"] == new_name


async def test_images_have_fixed_sizes_and_long_cache(client, admin):
    resp = await client.post("/api/artist", json={"name": unique("Pic ")}, headers=admin.headers)
    artist = await resp.json()
    resp = await client.put(f"/api/artist/{artist['id']}/image", data=COVER,
                            headers={**admin.headers, "Content-Type": "image/jpeg"})
    assert resp.status == 200, await resp.text()
    url = (await resp.json())["image_url"]
    image_id = url.split("/")[-1].split("?")[0]
    for size in (64, 300, 640):
        img = await client.get(f"/api/image/{image_id}?size={size}")
        assert img.status == 200
        assert "immutable" in img.headers["Cache-Control"]
        from io import BytesIO

        from PIL import Image

        assert Image.open(BytesIO(await img.read())).size == (size, size) or size == 640
    assert (await client.get(f"/api/image/{image_id}?size=65")).status == 422
    assert (await client.get("/api/image/999999999?size=64")).status == 404
    text = await client.put(f"/api/artist/{artist['id']}/image", data=b"not an image",
                            headers={**admin.headers, "Content-Type": "image/png"})
    assert text.status == 415


async def test_bad_ids_and_filters(client, admin):
    h = admin.headers
    assert (await client.get("/api/song/99999999999999999999999", headers=h)).status == 400
    assert (await client.get("/api/song/abc", headers=h)).status == 404
    assert (await client.get("/api/song?year=abc", headers=h)).status == 422
    assert (await client.get("/api/song?artist_id=-1", headers=h)).status == 422
    resp = await client.get("/api/song?q=%27%3B%20DROP%20TABLE%20songs%3B--&nonsense=1", headers=h)
    assert resp.status == 200
    assert (await client.put("/api/song/1", json={"year": "soon"}, headers=h)).status in (404, 422)


async def test_an_albums_songs_carry_their_featured_artists_in_credit_order(client, admin, audio_dir):
    """The album answer reads its songs and their featured artists in one statement: the same
    credits, in the same order, as each song read alone."""
    word = unique("Feat")
    album = f"{word} Album"
    guests = [f"{word} Zed", f"{word} Amy"]  # credit order, not name order
    plain = make_audio(audio_dir, "mp3", seconds=1.0, title=f"{word} One", artist=f"{word} Main",
                       album=album, track=1)
    credited = make_audio(audio_dir, "mp3", seconds=1.0, title=f"{word} Two",
                          artist=f"{word} Main; {guests[0]}; {guests[1]}", album=album, track=2)
    made = []
    for path in (plain, credited):
        resp = await upload(client, admin, path)
        assert resp.status == 201, await resp.text()
        made.append(await resp.json())
    listed = await (await client.get(f"/api/album/{made[0]['album_id']}", headers=admin.headers)).json()
    assert [s["id"] for s in listed["songs"]] == [made[0]["id"], made[1]["id"]]
    assert listed["songs"][0]["featured_artists"] == []
    assert [a["name"] for a in listed["songs"][1]["featured_artists"]] == guests
    alone = await (await client.get(f"/api/song/{made[1]['id']}", headers=admin.headers)).json()
    assert listed["songs"][1]["featured_artists"] == alone["featured_artists"]


async def test_an_albums_songs_read_as_one_json_value_equal_each_song_read_alone(
        client, admin, audio_dir, monkeypatch):
    """The album's songs come from the database as one JSON value: every field of every song,
    titles with quotes, backslashes, control characters and emoji included, is what the song
    answers alone; and a value cut short (past group_concat_max_len) is read again as rows."""
    word = unique("Json")
    album = f"{word} Album"
    titles = ['Say "Hi" \\ back', "Tab\there ☕ 🎸 ünïcode", "Plain"]
    made = []
    for track, title in enumerate(titles, 1):
        path = make_audio(audio_dir, "mp3", seconds=1.0, title=f"{word} {title}",
                          artist=f"{word} Main; {word} Guest" if track == 2 else f"{word} Main",
                          album=album, track=track)
        resp = await upload(client, admin, path)
        assert resp.status == 201, await resp.text()
        made.append(await resp.json())
    album_id = made[0]["album_id"]
    listed = await (await client.get(f"/api/album/{album_id}", headers=admin.headers)).json()
    alone = [await (await client.get(f"/api/song/{m['id']}", headers=admin.headers)).json()
             for m in made]
    assert listed["songs"] == alone
    assert [s["title"] for s in listed["songs"]] == [f"{word} {t}" for t in titles]

    catalog = client.app[keys.CATALOG]
    real = catalog.repo.album_with_songs

    async def cut(album_id: int, limit: int) -> Any:
        value = await real(album_id, limit)
        return value[: len(value) // 2]
    monkeypatch.setattr(catalog.repo, "album_with_songs", cut)
    await catalog.cache.invalidate(f"album:{album_id}")
    again = await (await client.get(f"/api/album/{album_id}", headers=admin.headers)).json()
    assert again == listed

    # Cut between two songs, MariaDB still closes the array: valid JSON, a song short. The
    # album's maintained song count tells, and the album is read as rows.
    async def one_song_short(album_id: int, limit: int) -> Any:
        fields = orjson.loads(await real(album_id, limit))
        return orjson.dumps([*fields[:-1], fields[-1][:-1]]).decode()
    monkeypatch.setattr(catalog.repo, "album_with_songs", one_song_short)
    await catalog.cache.invalidate(f"album:{album_id}")
    again = await (await client.get(f"/api/album/{album_id}", headers=admin.headers)).json()
    assert again == listed
