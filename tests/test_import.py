"""`python -m app import`: a folder of real files into the catalogue, re-runs, --in-place rescans."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest
from conftest import make_audio, make_config, unique

from app.cli.context import catalog_context
from app.cli.importer import Importer, Progress
from app.media import images
from app.web import keys

ROOT = Path(__file__).resolve().parent.parent


def library(root: Path, audio_dir: Path, artist: str) -> dict[str, Path]:
    """Artist/Album folders: one album with a cover.jpg and no embedded art, one with embedded
    art, a text file named .mp3 and a zero-byte .flac."""
    a1 = root / artist / "First"
    a2 = root / artist / "Second"
    a1.mkdir(parents=True)
    a2.mkdir(parents=True)
    files = {}
    for n in range(3):
        src = make_audio(audio_dir, "mp3", seconds=1.0, title=f"One {n}", artist=artist,
                         album=f"{artist} First", track=n + 1)
        files[f"one{n}"] = Path(shutil.copy(src, a1 / f"0{n + 1} One {n}.mp3"))
    (a1 / "cover.jpg").write_bytes(images.placeholder_cover(artist, 320))
    src = make_audio(audio_dir, "flac", seconds=1.0, title="Two", artist=artist,
                     album=f"{artist} Second", cover=images.placeholder_cover("embedded", 300))
    files["two"] = Path(shutil.copy(src, a2 / "01 Two.flac"))
    (a2 / "notes.mp3").write_text("not audio at all\n" * 20)
    (a2 / "empty.flac").write_bytes(b"")
    return files


async def run(config, root: Path, in_place: bool = False):
    async with catalog_context(config) as ctx:
        return await Importer(ctx.ingest, in_place=in_place, workers=2).run(root, Progress(0))


async def test_import_reports_and_reruns_change_nothing(database_url, tmp_path, audio_dir, client):
    config = make_config(database_url, tmp_path)
    artist = unique("Importer ")
    library(tmp_path / "music", audio_dir, artist)
    summary = await run(config, tmp_path / "music")
    assert (summary.imported, summary.duplicates, len(summary.failures)) == (4, 0, 2)
    reasons = dict(summary.failures)
    assert "not a playable audio file" in reasons[str(tmp_path / "music" / artist / "Second" / "notes.mp3")]
    assert "empty or damaged" in reasons[str(tmp_path / "music" / artist / "Second" / "empty.flac")]
    db = client.app[keys.DB]
    artist_row = await db.fetchone("SELECT id FROM artists WHERE name = %s", (artist,))
    albums = await db.fetchall(
        "SELECT title, cover_image_id FROM albums WHERE artist_id = %s ORDER BY title", (artist_row["id"],)
    )
    assert [a["title"] for a in albums] == [f"{artist} First", f"{artist} Second"]
    assert all(a["cover_image_id"] for a in albums), "folder cover.jpg and embedded art both used"
    songs = await db.fetchval("SELECT COUNT(*) FROM songs WHERE artist_id = %s", (artist_row["id"],))
    assert songs == 4
    again = await run(config, tmp_path / "music")
    assert (again.imported, again.duplicates, len(again.failures)) == (0, 4, 2)
    assert await db.fetchval("SELECT COUNT(*) FROM songs WHERE artist_id = %s", (artist_row["id"],)) == 4
    # The copies are in the media store, byte for byte.
    rows = await db.fetchall("SELECT file_path, sha256 FROM songs WHERE artist_id = %s", (artist_row["id"],))
    for row in rows:
        assert not row["file_path"].startswith("/")
        assert (config.media_path / row["file_path"]).is_file()
    # The import itself is in the audit trail (as an admin event in the outbox).
    pending = await db.fetchval(
        "SELECT COUNT(*) FROM outbox WHERE type = 'admin.catalog.imported' AND payload LIKE %s",
        (f"%{tmp_path}%",),
    )
    assert pending == 2


async def test_in_place_rescan_picks_up_new_changed_and_removed(database_url, tmp_path, audio_dir, client):
    config = make_config(database_url, tmp_path)
    artist = unique("InPlace ")
    files = library(tmp_path / "music", audio_dir, artist)
    first = await run(config, tmp_path / "music", in_place=True)
    assert first.imported == 4
    db = client.app[keys.DB]
    paths = {r["file_path"] for r in await db.fetchall(
        "SELECT s.file_path FROM songs s JOIN artists a ON a.id = s.artist_id WHERE a.name = %s", (artist,))}
    assert paths == {str(p) for p in files.values()}, "in place: the files stay where they are"
    # Unchanged files are not even re-read.
    second = await run(config, tmp_path / "music", in_place=True)
    assert (second.imported, second.unchanged) == (0, 4)
    # A new file, a changed file (retagged: new content), a removed file.
    new = make_audio(audio_dir, "ogg", seconds=1.0, title="Three", artist=artist, album=f"{artist} Second")
    shutil.copy(new, tmp_path / "music" / artist / "Second" / "02 Three.ogg")
    changed = make_audio(audio_dir, "mp3", seconds=1.0, title="One 0 (remaster)", artist=artist,
                         album=f"{artist} First", track=1)
    shutil.copy(changed, files["one0"])
    os.utime(files["one0"], (1_700_000_000, 1_700_000_000))
    files["one2"].unlink()
    third = await run(config, tmp_path / "music", in_place=True)
    assert (third.imported, third.updated, third.removed) == (1, 1, 1)
    titles = {r["title"] for r in await db.fetchall(
        "SELECT s.title FROM songs s JOIN artists a ON a.id = s.artist_id WHERE a.name = %s", (artist,))}
    assert titles == {"One 0 (remaster)", "One 1", "Two", "Three"}


async def test_a_row_the_database_refuses_sinks_only_its_own_file(
        database_url, tmp_path, audio_dir, client, monkeypatch):
    """New songs of a batch are written in one statement; when the database refuses one row
    (here a refusal made for one title), the batch is redone a file at a time: the others are
    imported, with their artists, albums and events, and that one file is reported."""
    from app.repos.catalog import CatalogRepo

    config = make_config(database_url, tmp_path)
    artist = unique("Refused ")
    files = library(tmp_path / "music", audio_dir, artist)
    poison = "One 1"
    real_many, real_one = CatalogRepo.insert_songs, CatalogRepo.insert_song
    batches: list[int] = []

    async def insert_songs(self, tx, rows):
        batches.append(len(rows))
        if any(r["title"] == poison for r in rows):
            raise pymysql.err.DataError(1406, "Data too long for column 'title'")
        return await real_many(self, tx, rows)

    async def insert_song(self, tx, fields):
        if fields["title"] == poison:
            raise pymysql.err.DataError(1406, "Data too long for column 'title'")
        return await real_one(self, tx, fields)

    monkeypatch.setattr(CatalogRepo, "insert_songs", insert_songs)
    monkeypatch.setattr(CatalogRepo, "insert_song", insert_song)
    summary = await run(config, tmp_path / "music")
    assert batches == [4], "the four new songs went to the database in one statement"
    assert summary.imported == 3
    assert (str(files["one1"]), "not imported ((1406, \"Data too long for column 'title'\"))") \
        in summary.failures
    db = client.app[keys.DB]
    titles = {r["title"] for r in await db.fetchall(
        "SELECT s.title FROM songs s JOIN artists a ON a.id = s.artist_id WHERE a.name = %s", (artist,))}
    assert titles == {"One 0", "One 2", "Two"}
    song_events = await db.fetchval(
        "SELECT COUNT(*) FROM outbox o JOIN songs s ON o.type = 'catalog.song.upserted'"
        " AND JSON_VALUE(o.payload, '$.data.entity_id') = s.id"
        " JOIN artists a ON a.id = s.artist_id WHERE a.name = %s", (artist,))
    assert song_events == 3


async def test_covers_are_kept_as_imported_and_rendered_when_first_asked(
        database_url, tmp_path, audio_dir, aiohttp_client):
    """An import checks each cover and keeps its original, resizing none; the first ask of a
    cover (here 60 at once, more than the image threads' slots, over both sizes and both APIs)
    renders it once, every ask gets the same picture, and the original is dropped. A kept
    original that does not decode answers 404, never a 500."""
    import asyncio
    import hashlib

    from app.main import create_app

    config = make_config(database_url, tmp_path, amqp_url="")
    artist = unique("Covers ")
    library(tmp_path / "music", audio_dir, artist)
    summary = await run(config, tmp_path / "music", in_place=True)
    assert summary.imported == 4
    client = await aiohttp_client(create_app(config))
    db = client.app[keys.DB]
    rows = await db.fetchall(
        "SELECT al.cover_image_id, i.sha256 FROM albums al JOIN artists a ON a.id = al.artist_id"
        " JOIN images i ON i.id = al.cover_image_id WHERE a.name = %s ORDER BY al.title",
        (artist,))
    assert len(rows) == 2
    store = images.ImageStore(config.media_path)
    for row in rows:
        assert store.original_path(row["sha256"]).is_file() and not store.exists(row["sha256"])
    first, second = rows
    asks = [client.get(f"/api/image/{first['cover_image_id']}", params={"size": size})
            for size in (64, 300, 640) for _ in range(10)]
    asks += [client.get(f"/api/image/{first['cover_image_id']}", params={"size": 300})
             for _ in range(30)]
    answers = await asyncio.gather(*asks)
    bodies = [await r.read() for r in answers]
    assert {r.status for r in answers} == {200}
    assert {hashlib.sha256(b).hexdigest() for b in bodies[30:]} == {
        hashlib.sha256(bodies[10]).hexdigest()}
    assert store.exists(first["sha256"]) and not store.original_path(first["sha256"]).exists()
    for size in (64, 300, 640):
        assert store.path(first["sha256"], size).is_file()
    # An original that is damaged on disk: 404 (JSON API), not found (Subsonic), nothing made.
    original = store.original_path(second["sha256"])
    original.write_bytes(original.read_bytes()[:200])
    resp = await client.get(f"/api/image/{second['cover_image_id']}", params={"size": 64})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    assert not store.exists(second["sha256"]) and not original.exists()
    resp = await client.get(f"/api/image/{second['cover_image_id']}", params={"size": 64})
    assert resp.status == 404


def test_import_command_line(database_url, tmp_path, audio_dir):
    artist = unique("Cli ")
    library(tmp_path / "music", audio_dir, artist)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONORA_")}
    env.update({"SONORA_DATABASE_URL": database_url, "SONORA_DATA_DIR": str(tmp_path / "data"),
                "SONORA_NAMESPACE": unique("cli")})
    out = subprocess.run([sys.executable, "-m", "app", "import", str(tmp_path / "music")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "imported 4, updated 0, moved 0, removed 0, duplicates 0, unchanged 0, failed 2" in out.stdout
    assert "notes.mp3: not a playable audio file" in out.stdout
    missing = subprocess.run([sys.executable, "-m", "app", "import", str(tmp_path / "nope")], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


@pytest.mark.slow
def test_demo_fills_an_empty_instance_once(tmp_path):
    import asyncio

    import aiomysql

    from app.repos.db import DbTarget

    name = unique("sonora_demo_")
    url = f"mysql://root@127.0.0.1:3306/{name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONORA_")}
    env.update({"SONORA_DATABASE_URL": url, "SONORA_DATA_DIR": str(tmp_path / "data"),
                "SONORA_NAMESPACE": unique("demo"), "SONORA_BCRYPT_ROUNDS": "4"})
    try:
        out = subprocess.run([sys.executable, "-m", "app", "demo", "--seconds", "1"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr
        assert "imported 23," in out.stdout
        assert "Demo listener created: username 'demo'" in out.stdout
        again = subprocess.run([sys.executable, "-m", "app", "demo"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=60)
        assert "demo library skipped" in again.stdout and "Demo listener created" not in again.stdout
    finally:
        async def drop() -> None:
            t = DbTarget.parse(url)
            conn = await aiomysql.connect(host=t.host, port=t.port, user=t.user, autocommit=True)
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            conn.close()

        asyncio.run(drop())
