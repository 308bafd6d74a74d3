"""Helpers for the tests of the read-only /rest methods: a small known catalogue (real uploaded
audio with covers, and rows written as the importer writes them), an app password's parameters,
and the ids of an answer."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from aiohttp.test_utils import TestClient
from conftest import Account, make_audio, unique
from subsonic_support import BASE, credentials, new_app_password

from app.adapters.search.documents import build
from app.media.images import placeholder_cover
from app.repos.catalog import CatalogRepo
from app.web import keys


async def rest_params(client: TestClient, account: Account) -> dict[str, str]:
    """The parameters that authenticate `account` on /rest (a new app password, as `u` + `p`)."""
    secret = await new_app_password(client, account)
    return {**BASE, **credentials("p", account.username, secret)}


async def upload(client: TestClient, admin: Account, audio_dir: Any, **tags: Any) -> dict[str, Any]:
    """A real tagged mp3 (with an embedded cover) uploaded through the API: the song's JSON."""
    cover = placeholder_cover(unique("cover"))
    path = make_audio(audio_dir, "mp3", seconds=1.0, cover=cover, **tags)
    resp = await client.post("/api/song", json={
        "file_base64": base64.b64encode(path.read_bytes()).decode()}, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    song: dict[str, Any] = await resp.json()
    return song


async def index(client: TestClient, **ids: list[int]) -> None:
    """Put these entities' documents in the search index now (`song=[..]`, `album=[..]`, …)."""
    backend = client.app[keys.SEARCH_BACKEND]
    db = client.app[keys.DB]
    for entity, numbers in ids.items():
        await backend.upsert(await build(db, entity, numbers))


async def catalogue(client: TestClient, admin: Account, audio_dir: Any) -> dict[str, Any]:
    """A known catalogue: artist one (album one: two songs, 2001, Ambient), artist two (album two:
    one song, 1995, Jazz), all uploaded with covers, and indexed for search."""
    word = unique("Quillon")
    one, two = f"{word} Alpha", f"{word} Beta"
    songs = [
        await upload(client, admin, audio_dir, title=f"{word} First", artist=one,
                     album=f"{word} Dawn", track=1, year=2001, genre="Ambient"),
        await upload(client, admin, audio_dir, title=f"{word} Second", artist=one,
                     album=f"{word} Dawn", track=2, year=2001, genre="Ambient"),
        await upload(client, admin, audio_dir, title=f"{word} Third", artist=two,
                     album=f"{word} Dusk", track=1, year=1995, genre="Jazz"),
    ]
    artists = sorted({s["artist_id"] for s in songs})
    albums = sorted({s["album_id"] for s in songs})
    await index(client, song=[s["id"] for s in songs], album=albums, artist=artists)
    return {"word": word, "songs": songs, "artists": [songs[0]["artist_id"], songs[2]["artist_id"]],
            "albums": [songs[0]["album_id"], songs[2]["album_id"]]}


async def bulk_songs(client: TestClient, count: int, *, albums: int = 3, genre: str = "Bulk",
                     first_year: int = 1980) -> dict[str, Any]:
    """`count` songs of one new artist over `albums` albums (years first_year, +1, …), written as
    the importer writes them (no files): for lists and paging."""
    db = client.app[keys.DB]
    repo = CatalogRepo(db)
    tag = unique("bulk")
    song_ids: list[int] = []
    async with db.transaction() as tx:
        artist_id, _ = await repo.find_or_create_artist(tx, f"{tag} artist")
        album_ids = [(await repo.find_or_create_album(tx, f"{tag} album {i}", artist_id,
                                                      first_year + i, genre))[0]
                     for i in range(albums)]
        for i in range(count):
            song_ids.append(await repo.insert_song(tx, {
                "title": f"{tag} song {i}", "artist_id": artist_id,
                "album_id": album_ids[i % albums], "duration_ms": 61_000 + i, "bitrate": 192_000,
                "sample_rate": 44100, "codec": "mp3", "mime_type": "audio/mpeg", "size": 1000 + i,
                "sha256": hashlib.sha256(f"{tag}{i}".encode()).hexdigest(),
                "file_path": f"{tag}/{i}", "track_number": i + 1, "genre": genre,
                "year": first_year + i % albums,
            }))
    await client.app[keys.CATALOG].after_write()
    return {"tag": tag, "artist": artist_id, "albums": album_ids, "songs": song_ids}


def ids(items: list[dict[str, Any]] | None) -> list[str]:
    return [item["id"] for item in items or []]
