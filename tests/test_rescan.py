"""`import --in-place` re-runs against a running app: songs follow their files through tag edits,
retitles, renames and moves, keep what listeners made with them, and the web process's caches
(Redis and its in-process copy) follow the command line's writes. Covers, disc folders and titles
of untagged files, in place, copied and uploaded."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import mutagen
import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, make_admin, make_audio, make_config, register, unique
from mutagen.id3 import TIT2
from PIL import Image
from support import eventually

from app.adapters import cache as cache_module
from app.cli.context import catalog_context
from app.cli.importer import Importer, Progress, Summary, disc_from_folder
from app.main import create_app
from app.media import images
from app.media.probe import probe
from app.media.store import content_hashes, hash_file
from app.services.ingest import title_from_filename
from app.web import keys

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Web:
    client: TestClient
    config: Any
    admin: Account
    member: Account

    @property
    def db(self) -> Any:
        return self.client.app[keys.DB]


@pytest.fixture
async def web(aiohttp_client: Any, database_url: str, tmp_path: Path) -> Web:
    """A running app (no broker: it counts plays itself) sharing Redis and MySQL with the
    command line's import, which runs with the very same configuration."""
    config = make_config(database_url, tmp_path / "data", amqp_url="")
    client = await aiohttp_client(create_app(config))
    admin = await make_admin(client, await register(client))
    return Web(client, config, admin, await register(client))


async def rescan(config: Any, root: Path, in_place: bool = True) -> Summary:
    """What `python -m app import [--in-place] ROOT` does, in this process."""
    async with catalog_context(config) as ctx:
        return await Importer(ctx.ingest, in_place=in_place, workers=2).run(root, Progress(0, io.StringIO()))


def place(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(src, dest))


def retag(path: Path, **tags: str | None) -> None:
    """What a tag editor does: rewrite tags in the file itself (None removes a tag)."""
    audio: Any = mutagen.File(path, easy=True)
    if audio.tags is None:
        audio.add_tags()
    for key, value in tags.items():
        if value is None:
            if key in audio:
                del audio[key]
        else:
            audio[key] = value
    audio.save()


def picture(fmt: str, label: str) -> bytes:
    buf = io.BytesIO()
    with Image.open(io.BytesIO(images.placeholder_cover(label, 320))) as im:
        im.convert("RGB").save(buf, fmt)
    return buf.getvalue()


async def songs_of(db: Any, artist: str) -> dict[str, int]:
    rows = await db.fetchall(
        "SELECT s.id, s.title FROM songs s JOIN artists a ON a.id = s.artist_id WHERE a.name = %s",
        (artist,),
    )
    return {r["title"]: int(r["id"]) for r in rows}


async def get_json(client: TestClient, url: str, account: Account, status: int = 200) -> Any:
    resp = await client.get(url, headers=account.headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def song_events(db: Any, song_id: int, after: int) -> list[str]:
    rows = await db.fetchall(
        "SELECT type, payload FROM outbox WHERE id > %s AND type LIKE 'catalog.song.%%' ORDER BY id",
        (after,),
    )
    return [r["type"] for r in rows if json.loads(r["payload"])["data"]["entity_id"] == song_id]


async def outbox_mark(db: Any) -> int:
    return int(await db.fetchval("SELECT COALESCE(MAX(id), 0) FROM outbox"))


async def listener_makes(web: Web, song_ids: list[int]) -> int:
    """Like the first song, put them all on a playlist, play the first to the end: the
    playlist's id."""
    c, h = web.client, web.member.headers
    first = song_ids[0]
    assert (await c.put(f"/api/library/songs/{first}", headers=h)).status == 204
    playlist = await (await c.post("/api/playlist", json={"name": unique("Keep ")}, headers=h)).json()
    resp = await c.post(f"/api/playlist/{playlist['id']}/songs", json={"song_ids": song_ids}, headers=h)
    assert resp.status == 201, await resp.text()
    resp = await c.post("/api/stream/play", headers=h,
                        json={"song_id": first, "played_ms": 60_000, "play_id": uuid.uuid4().hex})
    assert await resp.json() == {"counted": True}

    async def counted() -> bool:
        return int(await web.db.fetchval("SELECT play_count FROM songs WHERE id = %s", (first,))) == 1

    await eventually(counted)
    return int(playlist["id"])


async def assert_listener_kept(web: Web, song_ids: list[int], playlist_id: int) -> None:
    first = song_ids[0]
    liked = await get_json(web.client, f"/api/library/songs/contains?ids={first}", web.member)
    assert liked == [True]
    playlist = await get_json(web.client, f"/api/playlist/{playlist_id}", web.member)
    assert [item["song"]["id"] for item in playlist["songs"]["items"]] == song_ids
    history = await get_json(web.client, "/api/stream/history", web.member)
    assert [item["song"]["id"] for item in history["items"]] == [first]
    count = await get_json(web.client, f"/api/song/{first}/play-count", web.member)
    assert count == {"song_id": first, "play_count": 1}


async def test_tag_edits_keep_the_song_its_listeners_and_reach_the_web_caches(
    web: Web, tmp_path: Path, audio_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The web process's own copy must not expire during the test: only the broadcast drops it.
    monkeypatch.setattr(cache_module, "LOCAL_TTL", 3600.0)
    artist = unique("Rescan ")
    root = tmp_path / "music"
    album = root / artist / "Album"
    x = place(make_audio(audio_dir, "mp3", seconds=1.0, title="Xenon", artist=artist,
                         album=f"{artist} LP", track=1, genre="Rock"), album / "01 Xenon.mp3")
    y = place(make_audio(audio_dir, "flac", seconds=1.0, title="Yarrow", artist=artist,
                         album=f"{artist} LP", track=2, genre="Rock"), album / "02 Yarrow.flac")
    first = await rescan(web.config, root)
    assert (first.imported, first.failures) == (2, [])
    ids = await songs_of(web.db, artist)
    xid, yid = ids["Xenon"], ids["Yarrow"]
    playlist_id = await listener_makes(web, [xid, yid])

    # The web process holds the songs and the album: in Redis and in its in-process copy. Proof
    # of the latter: with the Redis entry gone (no broadcast) and the row changed behind its back,
    # it still answers the copy. (Waiting first for the play's own invalidation to land.)
    c, kv = web.client, web.client.app[keys.KV]

    async def settled() -> bool:
        return bool(kv.listening) and (await get_json(c, f"/api/song/{xid}", web.member))["play_count"] == 1

    await eventually(settled)
    song = await get_json(c, f"/api/song/{xid}", web.member)
    album_id = song["album_id"]
    assert song["genre"] == "Rock"
    assert await kv.get(f"c:song:{xid}") is not None
    before_album = await get_json(c, f"/api/album/{album_id}", web.member)
    assert [s["title"] for s in before_album["songs"]] == ["Xenon", "Yarrow"]
    assert (await get_json(c, f"/api/song/{yid}", web.member))["genre"] == "Rock"
    await web.db.execute("UPDATE songs SET genre = 'Behind its back' WHERE id = %s", (yid,))
    await kv.delete(f"c:song:{yid}")
    assert (await get_json(c, f"/api/song/{yid}", web.member))["genre"] == "Rock"

    # A tag editor changes one song's genre and retitles the other; the folder is rescanned.
    retag(x, genre="Jazz")
    retag(y, title="Yarrow (Live)")
    mark = await outbox_mark(web.db)
    second = await rescan(web.config, root)
    assert (second.updated, second.imported, second.moved, second.removed, second.unchanged) == (2, 0, 0, 0, 0)
    assert await songs_of(web.db, artist) == {"Xenon": xid, "Yarrow (Live)": yid}
    row = await web.db.fetchone("SELECT sha256, size, genre FROM songs WHERE id = %s", (xid,))
    assert (row["sha256"], row["size"], row["genre"]) == (hash_file(x)[0], x.stat().st_size, "Jazz")
    for song_id in (xid, yid):
        assert await song_events(web.db, song_id, mark) == ["catalog.song.upserted"]
    assert await kv.get(f"c:song:{xid}") is None, "the command line dropped the Redis entry"

    async def web_sees_new_tags() -> bool:
        x_now = await get_json(c, f"/api/song/{xid}", web.member)
        y_now = await get_json(c, f"/api/song/{yid}", web.member)
        album = await get_json(c, f"/api/album/{album_id}", web.member)
        return (x_now["genre"] == "Jazz" and (y_now["title"], y_now["genre"]) == ("Yarrow (Live)", "Rock")
                and [s["title"] for s in album["songs"]] == ["Xenon", "Yarrow (Live)"])

    await eventually(web_sees_new_tags)
    listed = await get_json(c, f"/api/song?album_id={album_id}&sort=album", web.member)
    assert [s["title"] for s in listed["items"]] == ["Xenon", "Yarrow (Live)"]
    await assert_listener_kept(web, [xid, yid], playlist_id)

    # A third run changes nothing.
    third = await rescan(web.config, root)
    assert (third.unchanged, third.updated, third.imported, third.removed) == (2, 0, 0, 0)


async def test_new_artist_and_album_tags_move_the_song_between_them(
    web: Web, tmp_path: Path, audio_dir: Path
) -> None:
    artist, other = unique("Before "), unique("After ")
    root = tmp_path / "music"
    x = place(make_audio(audio_dir, "mp3", seconds=1.0, title="Wander", artist=artist,
                         album=f"{artist} One", track=1), root / "a" / "Wander.mp3")
    place(make_audio(audio_dir, "mp3", seconds=1.0, title="Stay", artist=artist,
                     album=f"{artist} One", track=2), root / "a" / "Stay.mp3")
    await rescan(web.config, root)
    xid = (await songs_of(web.db, artist))["Wander"]
    old_album = (await get_json(web.client, f"/api/song/{xid}", web.member))["album_id"]
    assert len((await get_json(web.client, f"/api/album/{old_album}", web.member))["songs"]) == 2
    retag(x, artist=f"{other} feat. {artist}", album=f"{other} Two", tracknumber="7")
    summary = await rescan(web.config, root)
    assert (summary.updated, summary.imported, summary.removed) == (1, 0, 0)
    song = await get_json(web.client, f"/api/song/{xid}", web.member)
    assert song["artist"]["name"] == other and song["album"]["title"] == f"{other} Two"
    assert song["track_number"] == 7
    assert [a["name"] for a in song["featured_artists"]] == [artist]
    old = await get_json(web.client, f"/api/album/{old_album}", web.member)
    assert [s["title"] for s in old["songs"]] == ["Stay"]
    new_artist = await get_json(web.client, f"/api/artist/{song['artist_id']}", web.member)
    assert new_artist["song_count"] == 1


async def test_an_album_and_artist_renamed_in_every_tag_keep_their_ids(
    web: Web, tmp_path: Path, audio_dir: Path
) -> None:
    """A typo fixed in the album and artist tags of a whole album: the album and the artist keep
    their ids, so saves and follows stay; no empty album or artist is left behind."""
    typo, fixed = unique("Beatels "), unique("The Beatles ")
    root = tmp_path / "music"
    tracks = [place(make_audio(audio_dir, "mp3", seconds=1.0, title=f"Track {n}", artist=typo,
                               album=f"{typo} Revolvr", track=n), root / "Revolver" / f"{n:02d}.mp3")
              for n in (1, 2, 3)]
    await rescan(web.config, root)
    ids = await songs_of(web.db, typo)
    first = await get_json(web.client, f"/api/song/{ids['Track 1']}", web.member)
    album_id, artist_id = first["album_id"], first["artist_id"]
    c, h = web.client, web.member.headers
    assert (await c.put(f"/api/library/albums/{album_id}", headers=h)).status == 204
    assert (await c.put(f"/api/library/artists/{artist_id}", headers=h)).status == 204
    await get_json(c, f"/api/album/{album_id}", web.member)  # cached
    mark = await outbox_mark(web.db)
    for path in tracks:
        retag(path, artist=fixed, album=f"{fixed} Revolver")
    summary = await rescan(web.config, root)
    assert (summary.updated, summary.imported, summary.removed) == (3, 0, 0)
    assert await songs_of(web.db, fixed) == ids
    album = await get_json(c, f"/api/album/{album_id}", web.member)
    assert (album["title"], album["artist"]["name"]) == (f"{fixed} Revolver", fixed)
    assert [s["id"] for s in album["songs"]] == [ids["Track 1"], ids["Track 2"], ids["Track 3"]]
    artist = await get_json(c, f"/api/artist/{artist_id}", web.member)
    assert (artist["name"], artist["song_count"], artist["album_count"]) == (fixed, 3, 1)
    song = await get_json(c, f"/api/song/{ids['Track 2']}", web.member)
    assert (song["album_id"], song["artist_id"], song["album"]["title"]) == (album_id, artist_id, f"{fixed} Revolver")
    assert await get_json(c, f"/api/library/albums/contains?ids={album_id}", web.member) == [True]
    assert await get_json(c, f"/api/library/artists/contains?ids={artist_id}", web.member) == [True]
    assert await web.db.fetchval("SELECT COUNT(*) FROM artists WHERE name IN (%s, %s)", (typo, fixed)) == 1
    assert await web.db.fetchval("SELECT COUNT(*) FROM albums WHERE title LIKE %s",
                                 (f"%{typo.strip()}%",)) == 0
    assert (await song_events(web.db, ids["Track 1"], mark))[-1:] == ["catalog.song.upserted"]


async def test_moved_and_renamed_files_keep_their_songs(web: Web, tmp_path: Path, audio_dir: Path) -> None:
    artist = unique("Mover ")
    root = tmp_path / "music"
    a = place(make_audio(audio_dir, "mp3", seconds=1.0, title="Alpha", artist=artist), root / "In" / "a.mp3")
    b = place(make_audio(audio_dir, "mp3", seconds=1.0, title="Beta", artist=artist), root / "In" / "b.mp3")
    await rescan(web.config, root)
    ids = await songs_of(web.db, artist)
    alpha, beta = ids["Alpha"], ids["Beta"]
    playlist_id = await listener_makes(web, [alpha, beta])

    async def paths() -> dict[int, str]:
        rows = await web.db.fetchall("SELECT id, file_path FROM songs WHERE id IN (%s, %s)", (alpha, beta))
        return {r["id"]: r["file_path"] for r in rows}

    renamed = a.rename(a.with_name("01 Alpha (renamed).mp3"))
    (root / "Elsewhere" / "Deeper").mkdir(parents=True)
    moved = b.rename(root / "Elsewhere" / "Deeper" / "b.mp3")
    summary = await rescan(web.config, root)
    assert (summary.moved, summary.imported, summary.updated, summary.removed) == (2, 0, 0, 0)
    assert await songs_of(web.db, artist) == ids
    assert await paths() == {alpha: str(renamed), beta: str(moved)}
    resp = await web.client.get(f"/api/stream/{beta}", headers=web.member.headers)
    assert resp.status == 200 and await resp.read() == moved.read_bytes()
    await assert_listener_kept(web, [alpha, beta], playlist_id)

    # Two files swap names: each song follows its content.
    parked = renamed.rename(root / "parked.tmp")
    moved.rename(renamed)
    parked.rename(moved)
    summary = await rescan(web.config, root)
    assert (summary.moved, summary.imported, summary.updated, summary.removed) == (2, 0, 0, 0)
    assert await paths() == {alpha: str(moved), beta: str(renamed)}

    # A file renamed and a new one put under its old name: the song follows the renamed file.
    renamed_again = moved.rename(moved.with_name("z.mp3"))
    place(make_audio(audio_dir, "mp3", seconds=1.0, title="Gamma", artist=artist), moved)
    summary = await rescan(web.config, root)
    assert (summary.moved, summary.imported, summary.removed, summary.updated) == (1, 1, 0, 0)
    now = await songs_of(web.db, artist)
    assert (now["Alpha"], now["Beta"]) == (alpha, beta) and set(now) == {"Alpha", "Beta", "Gamma"}
    assert await paths() == {alpha: str(renamed_again), beta: str(renamed)}
    await assert_listener_kept(web, [alpha, beta], playlist_id)


@pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg", "opus", "m4a", "wav"])
def test_the_audio_digest_ignores_tags(tmp_path: Path, audio_dir: Path, fmt: str) -> None:
    path = place(make_audio(audio_dir, fmt, seconds=1.0, title="Before", artist="Someone"),
                 tmp_path / f"song.{fmt}")
    container = probe(path).container
    before = content_hashes(path, container)
    assert before[0] == hash_file(path)[0] and before[1] is not None
    if fmt == "wav":
        audio: Any = mutagen.File(path)
        audio.add_tags()
        audio.tags.add(TIT2(encoding=3, text="A longer title " * 30))
        audio.save()
    else:
        retag(path, title="A longer title " * 30, genre="Jazz")
    after = content_hashes(path, container)
    assert after[0] != before[0] and after[1] == before[1]
    other = place(make_audio(audio_dir, fmt, seconds=1.0, title="Before", artist="Someone"),
                  tmp_path / f"other.{fmt}")
    assert content_hashes(other, container)[1] != before[1]


async def test_files_retagged_and_renamed_at_once_keep_their_songs(
    web: Web, tmp_path: Path, audio_dir: Path
) -> None:
    """What taggers that rename files by their tags do: new content at a new path, old path gone.
    The audio alone is the same, so the song follows."""
    artist = unique("Tagger ")
    root = tmp_path / "music"
    formats = ("mp3", "flac", "ogg", "m4a")
    paths = [place(make_audio(audio_dir, fmt, seconds=1.0, title=f"Old {fmt}", artist=artist),
                   root / "Unsorted" / f"track.{fmt}") for fmt in formats]
    await rescan(web.config, root)
    ids = await songs_of(web.db, artist)
    playlist_id = await listener_makes(web, [ids[f"Old {fmt}"] for fmt in formats])
    for fmt, path in zip(formats, paths, strict=True):
        retag(path, title=f"New {fmt}")
        (root / artist).mkdir(exist_ok=True)
        path.rename(root / artist / f"01 New {fmt}.{fmt}")
    summary = await rescan(web.config, root)
    assert (summary.updated, summary.imported, summary.removed, summary.failures) == (4, 0, 0, [])
    assert await songs_of(web.db, artist) == {f"New {fmt}": ids[f"Old {fmt}"] for fmt in formats}
    rows = await web.db.fetchall("SELECT id, file_path FROM songs WHERE id IN (%s, %s, %s, %s)",
                                 tuple(ids.values()))
    assert {r["file_path"] for r in rows} == {str(root / artist / f"01 New {fmt}.{fmt}") for fmt in formats}
    await assert_listener_kept(web, [ids[f"Old {fmt}"] for fmt in formats], playlist_id)


async def test_a_file_that_is_gone_removes_its_song(web: Web, tmp_path: Path, audio_dir: Path) -> None:
    artist = unique("Gone ")
    root = tmp_path / "music"
    a = place(make_audio(audio_dir, "mp3", seconds=1.0, title="Leaving", artist=artist, album=f"{artist} A"),
              root / "a.mp3")
    place(make_audio(audio_dir, "mp3", seconds=1.0, title="Staying", artist=artist, album=f"{artist} A"),
          root / "b.mp3")
    await rescan(web.config, root)
    ids = await songs_of(web.db, artist)
    playlist_id = await listener_makes(web, [ids["Leaving"], ids["Staying"]])
    song = await get_json(web.client, f"/api/song/{ids['Leaving']}", web.member)  # cached now
    mark = await outbox_mark(web.db)
    a.unlink()
    summary = await rescan(web.config, root)
    assert (summary.removed, summary.unchanged, summary.imported) == (1, 1, 0)
    assert await song_events(web.db, ids["Leaving"], mark) == ["catalog.song.deleted"]
    playlist_events = await web.db.fetchval(
        "SELECT COUNT(*) FROM outbox WHERE id > %s AND type = 'catalog.playlist.upserted'"
        " AND JSON_VALUE(payload, '$.data.entity_id') = %s", (mark, playlist_id))
    assert playlist_events == 1, "the playlist lost a song: its search document must follow"

    async def gone() -> bool:
        return (await web.client.get(f"/api/song/{ids['Leaving']}", headers=web.member.headers)).status == 404

    await eventually(gone)
    album = await get_json(web.client, f"/api/album/{song['album_id']}", web.member)
    assert [s["title"] for s in album["songs"]] == ["Staying"]
    playlist = await get_json(web.client, f"/api/playlist/{playlist_id}", web.member)
    assert [item["song"]["id"] for item in playlist["songs"]["items"]] == [ids["Staying"]]
    assert await get_json(web.client, "/api/library/songs/contains?ids=" + str(ids["Leaving"]),
                          web.member) == [False]

    # A folder that lost every file (an unmounted disk) removes nothing.
    (root / "b.mp3").rename(tmp_path / "b.mp3")
    summary = await rescan(web.config, root)
    assert (summary.removed, [p for p, _ in summary.failures]) == (0, [str(root.resolve())])
    assert await songs_of(web.db, artist) == {"Staying": ids["Staying"]}


async def test_a_changed_file_that_cannot_be_read_keeps_its_song(
    web: Web, tmp_path: Path, audio_dir: Path
) -> None:
    artist = unique("Damaged ")
    root = tmp_path / "music"
    path = place(make_audio(audio_dir, "flac", seconds=1.0, title="Fragile", artist=artist), root / "f.flac")
    good = path.read_bytes()
    await rescan(web.config, root)
    ids = await songs_of(web.db, artist)
    path.write_bytes(good[: len(good) // 2])  # half written, as while a tagger or a copy runs
    summary = await rescan(web.config, root)
    assert (summary.removed, summary.updated, [p for p, _ in summary.failures]) == (0, 0, [str(path)])
    assert await songs_of(web.db, artist) == ids
    path.write_bytes(good)
    retag(path, title="Fragile (fixed)")
    summary = await rescan(web.config, root)
    assert (summary.updated, summary.failures) == (1, [])
    assert await songs_of(web.db, artist) == {"Fragile (fixed)": ids["Fragile"]}


@pytest.mark.parametrize("in_place", [True, False], ids=["in-place", "copied"])
async def test_covers_in_any_case_and_above_disc_folders_and_disc_numbers(
    web: Web, tmp_path: Path, audio_dir: Path, in_place: bool
) -> None:
    artist = unique("Covers ")
    root = tmp_path / "music"
    box = root / artist / "Box"
    place(make_audio(audio_dir, "mp3", seconds=1.0, title="Disc one", artist=artist, album=f"{artist} Box"),
          box / "CD1" / "01.mp3")
    place(make_audio(audio_dir, "flac", seconds=1.0, title="Disc two", artist=artist, album=f"{artist} Box"),
          box / "Disc 2" / "01.flac")
    place(make_audio(audio_dir, "mp3", seconds=1.0, title="Tagged disc", artist=artist, album=f"{artist} Box",
                     disc=5), box / "Disc3" / "01.mp3")
    (box / "Folder.PNG").write_bytes(picture("PNG", "box"))
    place(make_audio(audio_dir, "ogg", seconds=1.0, title="Webp", artist=artist, album=f"{artist} Single"),
          root / artist / "Single" / "01.ogg")
    (root / artist / "Single" / "COVER.WEBP").write_bytes(picture("WEBP", "single"))
    summary = await rescan(web.config, root, in_place=in_place)
    assert (summary.imported, summary.failures) == (4, [])
    rows = await web.db.fetchall(
        "SELECT s.title, s.disc_number, al.title AS album, al.cover_image_id FROM songs s"
        " JOIN albums al ON al.id = s.album_id JOIN artists a ON a.id = s.artist_id WHERE a.name = %s",
        (artist,),
    )
    discs = {r["title"]: r["disc_number"] for r in rows}
    assert discs == {"Disc one": 1, "Disc two": 2, "Tagged disc": 5, "Webp": 1}
    covers = {r["album"]: r["cover_image_id"] for r in rows}
    assert covers[f"{artist} Box"] and covers[f"{artist} Single"]
    assert covers[f"{artist} Box"] != covers[f"{artist} Single"]
    for image_id in set(covers.values()):
        resp = await web.client.get(f"/api/image/{image_id}?size=300", headers=web.member.headers)
        assert resp.status == 200 and resp.content_type.startswith("image/")


def test_disc_folder_names() -> None:
    assert [disc_from_folder(n) for n in ("CD1", "cd 2", "Disc 3", "Disc4", "DISK-5", "Disc 1 - Live",
                                          "CD 01")] == [1, 2, 3, 4, 5, 1, 1]
    assert [disc_from_folder(n) for n in ("Disco Inferno", "CDs", "Album", "CD1a", "Disc 0")] == [None] * 5


def test_titles_from_file_names() -> None:
    assert title_from_filename("07 - Quiet Morning.mp3") == "Quiet Morning"
    assert title_from_filename("03. Night Drive.flac") == "Night Drive"
    assert title_from_filename("C:\\Users\\me\\Music\\01 Tide.ogg") == "Tide"
    assert title_from_filename("../../etc/passwd") == "passwd"
    assert title_from_filename("1999.mp3") == "1999"
    assert title_from_filename("a\x00b\nc.mp3") == "a b c"
    assert title_from_filename("\ud800.mp3") == "?"
    assert title_from_filename(".mp3") == ".mp3"
    assert title_from_filename("") is None and title_from_filename("  ") is None


async def test_untagged_files_are_titled_from_their_original_names(
    web: Web, tmp_path: Path, audio_dir: Path
) -> None:
    # Copy mode: the stored file is named by its hash; the title comes from the original name.
    src = make_audio(audio_dir, "mp3", seconds=1.0)
    copied = place(src, tmp_path / "music" / "07 - Quiet Morning.mp3")
    summary = await rescan(web.config, tmp_path / "music", in_place=False)
    assert summary.imported == 1
    row = await web.db.fetchone("SELECT title, file_path FROM songs WHERE sha256 = %s", (hash_file(copied)[0],))
    assert row["title"] == "Quiet Morning" and hash_file(copied)[0] in row["file_path"]

    # Uploads: the multipart file name, without its folders and extension.
    async def upload(filename: str) -> dict[str, Any]:
        path = make_audio(audio_dir, "flac", seconds=1.0)
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(path.read_bytes()), filename=filename)
        resp = await web.client.post("/api/song", data=form, headers=web.admin.headers)
        assert resp.status == 201, await resp.text()
        return await resp.json()

    assert (await upload("05 Night Drive.flac"))["title"] == "Night Drive"
    assert (await upload("C:\\Users\\me\\Music\\Evening Tide.flac"))["title"] == "Evening Tide"
    assert (await upload("../../Dawn.flac"))["title"] == "Dawn"
    # A tag wins over the name; a JSON upload's `filename` counts too.
    tagged = make_audio(audio_dir, "mp3", seconds=1.0, title="From the tag")
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(tagged.read_bytes()), filename="from the name.mp3")
    resp = await web.client.post("/api/song", data=form, headers=web.admin.headers)
    assert (await resp.json())["title"] == "From the tag"
    small = make_audio(audio_dir, "mp3", seconds=0.5)
    resp = await web.client.post("/api/song", headers=web.admin.headers, json={
        "file_base64": base64.b64encode(small.read_bytes()).decode(), "filename": "Tiny Tune.mp3"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["title"] == "Tiny Tune"
    nameless = make_audio(audio_dir, "mp3", seconds=0.5)
    encoded = base64.b64encode(nameless.read_bytes()).decode()
    resp = await web.client.post("/api/song", headers=web.admin.headers,
                                 json={"file_base64": encoded, "filename": 123})
    assert resp.status == 422
    assert (await resp.json())["error"]["details"]["fields"] == {"filename": "must be a string"}
    assert await web.db.fetchval("SELECT COUNT(*) FROM songs WHERE sha256 = %s", (hash_file(nameless)[0],)) == 0
    resp = await web.client.post("/api/song", headers=web.admin.headers, json={"file_base64": encoded})
    assert resp.status == 201 and (await resp.json())["title"] == "Untitled"


async def test_a_rescan_at_volume_with_edits_moves_deletes_and_new_files(
    web: Web, tmp_path: Path, audio_dir: Path
) -> None:
    """300 files (real audio; each copy made unique by its tags), then one rescan with 40 tag
    edits, 40 moves or renames, 10 files retagged and moved at once, 40 deletions and 20 new
    files."""
    artist = unique("Volume ")
    root = tmp_path / "music"
    bases = [make_audio(audio_dir, fmt, seconds=0.5) for fmt in ("mp3", "flac", "ogg")]
    files: list[Path] = []
    for n in range(300):
        base = bases[n % 3]
        path = place(base, root / f"Album {n // 10:02d}" / f"{n % 10 + 1:02d} Song {n}{base.suffix}")
        retag(path, title=f"Song {n}", artist=artist, album=f"{artist} {n // 10:02d}",
              tracknumber=str(n % 10 + 1))
        files.append(path)
    first = await rescan(web.config, root)
    assert (first.imported, first.failures) == (300, [])
    ids = await songs_of(web.db, artist)
    assert len(ids) == 300
    edited, moved, deleted, both = range(0, 40), range(40, 80), range(80, 120), range(120, 130)
    # Listeners liked, listed and played songs of each kind.
    kept = [ids[f"Song {n}"] for n in (0, 41, 81)]
    playlist_id = await listener_makes(web, kept)
    for n in edited:
        retag(files[n], title=f"Song {n} (edited)", genre="Edited")
    for n in moved:
        dest = (root / "Moved" / files[n].name) if n % 2 else files[n].with_name(f"renamed {n}{files[n].suffix}")
        dest.parent.mkdir(exist_ok=True)
        files[n].rename(dest)
    for n in deleted:
        files[n].unlink()
    (root / "Retagged").mkdir()
    for n in both:
        retag(files[n], title=f"Song {n} (tagged)")
        files[n].rename(root / "Retagged" / f"Song {n} (tagged){files[n].suffix}")
    # New recordings (the same audio as a file that went would be that file, retagged and moved).
    new_bases = [make_audio(audio_dir, fmt, seconds=0.5) for fmt in ("mp3", "flac", "ogg")]
    for n in range(20):
        base = new_bases[n % 3]
        path = place(base, root / "New" / f"{n:02d}{base.suffix}")
        retag(path, title=f"New {n}", artist=artist)
    summary = await rescan(web.config, root)
    assert (summary.updated, summary.moved, summary.removed, summary.imported, summary.unchanged,
            summary.failures) == (50, 40, 40, 20, 170, [])
    now = await songs_of(web.db, artist)
    assert len(now) == 300 - 40 + 20
    for n in edited:
        assert now[f"Song {n} (edited)"] == ids[f"Song {n}"]
    for n in both:
        assert now[f"Song {n} (tagged)"] == ids[f"Song {n}"]
    for n in [*moved, *range(130, 300)]:
        assert now[f"Song {n}"] == ids[f"Song {n}"]
    for n in deleted:
        assert f"Song {n}" not in now
    liked = await get_json(web.client, f"/api/library/songs/contains?ids={kept[0]}", web.member)
    assert liked == [True]
    playlist = await get_json(web.client, f"/api/playlist/{playlist_id}", web.member)
    assert [item["song"]["id"] for item in playlist["songs"]["items"]] == kept[:2]
    count = await get_json(web.client, f"/api/song/{kept[0]}/play-count", web.member)
    assert count["play_count"] == 1
    again = await rescan(web.config, root)
    assert (again.unchanged, again.updated, again.moved, again.removed, again.imported) == (280, 0, 0, 0, 0)


async def test_the_command_line_rescan_reaches_the_running_web_process(
    web: Web, tmp_path: Path, audio_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m app import --in-place` as its own process, with the web app running on the same
    database, Redis namespace and data directory: ids kept, the web's caches and search follow."""
    monkeypatch.setattr(cache_module, "LOCAL_TTL", 3600.0)
    artist = unique("CliRescan ")
    music = tmp_path / "music"
    song = place(make_audio(audio_dir, "mp3", seconds=1.0, title="Keep me", artist=artist, genre="Rock"),
                 music / "keep.mp3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONORA_")}
    env.update({"SONORA_DATABASE_URL": web.config.database_url, "SONORA_REDIS_URL": web.config.redis_url,
                "SONORA_NAMESPACE": web.config.namespace, "SONORA_DATA_DIR": str(web.config.data_dir)})

    async def cli() -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "import", "--in-place", str(music), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    assert "imported 1, updated 0, moved 0, removed 0" in await cli()
    song_id = (await songs_of(web.db, artist))["Keep me"]
    playlist_id = await listener_makes(web, [song_id])
    kv = web.client.app[keys.KV]

    async def listening() -> bool:
        return bool(kv.listening)

    await eventually(listening)
    assert (await get_json(web.client, f"/api/song/{song_id}", web.member))["genre"] == "Rock"
    retag(song, genre="Jazz", title="Kept")
    assert "imported 0, updated 1, moved 0, removed 0" in await cli()

    async def web_and_search_follow() -> bool:
        current = await get_json(web.client, f"/api/song/{song_id}", web.member)
        found = await get_json(web.client, f"/api/search/songs?q={artist}", web.member)
        return (current["genre"], current["title"]) == ("Jazz", "Kept") and \
            [(s["id"], s["title"]) for s in found["items"]] == [(song_id, "Kept")]

    await eventually(web_and_search_follow)
    song.rename(song.with_name("kept.mp3"))
    assert "imported 0, updated 0, moved 1, removed 0" in await cli()
    assert await songs_of(web.db, artist) == {"Kept": song_id}
    await assert_listener_kept(web, [song_id], playlist_id)
