"""The catalogue's maintained counts and sums (sql/0007_catalog_at_scale.sql): after hundreds of
seeded random writes of every kind they equal a fresh recount of the rows, and `repair-counts`
puts corrupted figures right."""

from __future__ import annotations

import asyncio
import hashlib
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from backbone_support import open_db
from conftest import unique

from app.repos.catalog import CatalogRepo
from app.repos.db import Database

ROOT = Path(__file__).resolve().parents[1]
# The figures recounted from the rows, the way a reader would state them, beside the maintained
# ones: any difference is a row of this query.
DRIFT = (
    "SELECT * FROM ("
    " SELECT 'album' AS what, al.id, al.song_count AS kept, COUNT(s.id) AS counted,"
    " al.duration_ms AS kept2, COALESCE(SUM(s.duration_ms), 0) AS counted2"
    " FROM albums al LEFT JOIN songs s ON s.album_id = al.id GROUP BY al.id"
    " UNION ALL SELECT 'artist', ar.id, ar.song_count,"
    " (SELECT COUNT(*) FROM songs s WHERE s.artist_id = ar.id), ar.album_count,"
    " (SELECT COUNT(*) FROM albums al WHERE al.artist_id = ar.id) FROM artists ar"
    " UNION ALL SELECT 'genre', 0, g.songs, (SELECT COUNT(*) FROM songs s WHERE s.genre = g.genre),"
    " 0, 0 FROM genre_song_counts g"
    " UNION ALL SELECT 'year', y.year, y.songs, (SELECT COUNT(*) FROM songs s WHERE s.year = y.year),"
    " 0, 0 FROM year_song_counts y"
    ") figures WHERE kept <> counted OR kept2 <> counted2"
)
TOTALS = (
    "SELECT t.songs = (SELECT COUNT(*) FROM songs) AND t.albums = (SELECT COUNT(*) FROM albums)"
    " AND t.artists = (SELECT COUNT(*) FROM artists)"
    " AND t.bytes = (SELECT COALESCE(SUM(size), 0) FROM songs)"
    " AND t.duration_ms = (SELECT COALESCE(SUM(duration_ms), 0) FROM songs) AS ok"
    " FROM catalog_totals t WHERE t.id = 1"
)
MISSING = (  # a genre or year with songs but no maintained row
    "SELECT COUNT(*) FROM songs s WHERE (s.genre <> '' AND s.genre NOT IN"
    " (SELECT genre FROM genre_song_counts)) OR s.year NOT IN (SELECT year FROM year_song_counts)"
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with open_db(database_url) as database:
        yield database


async def assert_counts_true(db: Database) -> None:
    drift = await db.fetchall(DRIFT)
    assert drift == [], drift[:5]
    assert await db.fetchval(TOTALS) == 1
    assert await db.fetchval(MISSING) == 0


class World:
    """Random catalogue writes through the repository (the SQL the services and the importer
    run), keeping the ids this test made."""

    GENRES = ("Rock", "rock", "Jazz", "Folk", None, "")
    YEARS = (1999, 2000, 2001, None)

    def __init__(self, db: Database, seed: int) -> None:
        self.db = db
        self.repo = CatalogRepo(db)
        self.rnd = random.Random(seed)
        self.tag = unique("cnt")
        self.artists: list[int] = []
        self.albums: list[int] = []
        self.songs: list[int] = []
        self.n = 0

    def fields(self) -> dict[str, Any]:
        r = self.rnd
        self.n += 1
        return {"title": f"{self.tag} song {self.n}", "duration_ms": r.randint(1000, 400_000),
                "size": r.randint(1000, 10_000_000), "genre": r.choice(self.GENRES),
                "year": r.choice(self.YEARS)}

    async def add_artist(self) -> None:
        async with self.db.transaction() as tx:
            artist_id, _ = await self.repo.find_or_create_artist(tx, f"{self.tag} artist {self.n}")
        self.n += 1
        self.artists.append(artist_id)

    async def add_album(self) -> None:
        artist = self.rnd.choice(self.artists)
        title = f"{self.tag} album {self.rnd.randint(1, 40)}"  # some repeat: find, not create
        async with self.db.transaction() as tx:
            album_id, created = await self.repo.find_or_create_album(tx, title, artist, 2000, "Rock")
        if created:
            self.albums.append(album_id)

    async def add_song(self) -> None:
        f = self.fields()
        album = self.rnd.choice([*self.albums, None]) if self.albums else None
        async with self.db.transaction() as tx:
            artist = self.rnd.choice(self.artists)
            song_id = await self.repo.insert_song(tx, {
                **f, "artist_id": artist, "album_id": album, "bitrate": 128000,
                "sample_rate": 44100, "codec": "mp3", "mime_type": "audio/mpeg",
                "sha256": hashlib.sha256(f"{self.tag}/{self.n}".encode()).hexdigest(), "file_path": f"x/{self.n}",
            })
        self.songs.append(song_id)

    async def change_song(self) -> None:
        r = self.rnd
        song = r.choice(self.songs)
        change = r.choice(["album", "artist", "duration", "size", "genre", "year", "all", "plays"])
        f = self.fields()
        changes: dict[str, Any] = {
            "album": {"album_id": r.choice([*self.albums, None])},
            "artist": {"artist_id": r.choice(self.artists)},
            "duration": {"duration_ms": f["duration_ms"]},
            "size": {"size": f["size"]},
            "genre": {"genre": f["genre"]},
            "year": {"year": f["year"]},
            "all": {"album_id": r.choice([*self.albums, None]), "artist_id": r.choice(self.artists),
                    "duration_ms": f["duration_ms"], "genre": f["genre"], "year": f["year"]},
            "plays": {},
        }[change]
        async with self.db.transaction() as tx:
            await self.repo.update_song(tx, song, changes)

    async def delete_song(self) -> None:
        song = self.songs.pop(self.rnd.randrange(len(self.songs)))
        async with self.db.transaction() as tx:
            await self.repo.delete_song(tx, song)

    async def move_album(self) -> None:
        album = self.rnd.choice(self.albums)
        async with self.db.transaction() as tx:
            await self.repo.update_album(tx, album, {"artist_id": self.rnd.choice(self.artists)})

    async def delete_album(self) -> None:
        """Its songs stay, without an album: the foreign key's cascade (no trigger fires)."""
        album = self.albums.pop(self.rnd.randrange(len(self.albums)))
        async with self.db.transaction() as tx:
            await self.repo.delete_album(tx, album)

    async def delete_artist(self) -> None:
        """An artist left with no songs or albums (as the service allows), or a merge."""
        for artist in self.rnd.sample(self.artists, len(self.artists)):
            async with self.db.transaction() as tx:
                if await self.repo.artist_usage(tx, artist) == (0, 0):
                    await self.repo.delete_artist(tx, artist)
                    self.artists.remove(artist)
                    return

    async def merge_albums(self) -> None:
        """An empty album takes another's name and songs (the importer's merge)."""
        async with self.db.transaction() as tx:
            keep = await self.repo.insert_album(tx, f"{self.tag} empty {self.n}",
                                                self.rnd.choice(self.artists), "album", None, None)
        self.n += 1
        other = self.rnd.choice(self.albums)
        async with self.db.transaction() as tx:
            done = await self.repo.merge_into(tx, "album", keep, other)
        assert done is not None
        self.albums.remove(other)
        self.albums.append(keep)


async def test_counts_follow_random_writes(db: Database) -> None:
    world = World(db, seed=20261207)
    for _ in range(6):
        await world.add_artist()
    for _ in range(8):
        await world.add_album()
    for _ in range(40):
        await world.add_song()
    await assert_counts_true(db)
    steps = [(world.add_song, 30), (world.change_song, 30), (world.delete_song, 10),
             (world.add_album, 6), (world.add_artist, 4), (world.move_album, 4),
             (world.delete_album, 3), (world.delete_artist, 3), (world.merge_albums, 2)]
    actions = [step for step, weight in steps for _ in range(weight)]
    for i in range(400):
        step = world.rnd.choice(actions)
        if step in (world.change_song, world.delete_song) and not world.songs:
            step = world.add_song
        if step in (world.move_album, world.delete_album, world.merge_albums) and len(world.albums) < 2:
            step = world.add_album
        await step()
        if i % 50 == 0:
            await assert_counts_true(db)
    await assert_counts_true(db)


async def test_a_failed_insert_counts_nothing(db: Database) -> None:
    """A duplicate album (the importer's find-or-create race) or song rolls its trigger back."""
    world = World(db, seed=7)
    await world.add_artist()
    async with db.transaction() as tx:
        first, created = await world.repo.find_or_create_album(tx, "Twice", world.artists[0], None, None)
        again, created_again = await world.repo.find_or_create_album(tx, "TWICE", world.artists[0],
                                                                     None, None)
    assert (created, created_again, again) == (True, False, first)
    world.albums.append(first)
    await world.add_song()
    row = await world.repo.song_file(world.songs[0])
    assert row is not None
    with pytest.raises(Exception, match="Duplicate"):
        async with db.transaction() as tx:
            await world.repo.insert_song(tx, {
                "title": "dup", "artist_id": world.artists[0], "album_id": first,
                "duration_ms": 5, "size": 5, "bitrate": 1, "sample_rate": 1, "codec": "mp3",
                "mime_type": "audio/mpeg", "sha256": row["sha256"], "file_path": "dup"})
    await assert_counts_true(db)


async def test_repair_counts_puts_corrupted_figures_right(db: Database, database_url: str,
                                                          tmp_path: Any) -> None:
    world = World(db, seed=11)
    for _ in range(3):
        await world.add_artist()
    for _ in range(3):
        await world.add_album()
    for _ in range(12):
        await world.add_song()
    async with db.transaction() as tx:  # corrupt every kind of figure
        await tx.execute("UPDATE albums SET song_count = song_count + 3, duration_ms = 1"
                         " WHERE id = %s", (world.albums[0],))
        await tx.execute("UPDATE artists SET album_count = 99, song_count = -4 WHERE id = %s",
                         (world.artists[0],))
        await tx.execute("UPDATE catalog_totals SET songs = 1, bytes = 2, artists = 0 WHERE id = 1")
        await tx.execute("UPDATE genre_song_counts SET songs = songs + 5")
        await tx.execute("DELETE FROM year_song_counts")
    with pytest.raises(AssertionError):
        await assert_counts_true(db)
    # The command, as an operator runs it.
    done = subprocess.run(  # noqa: ASYNC221 - the test waits for the command on purpose
        [sys.executable, "-m", "app", "repair-counts"], capture_output=True, text=True,
        timeout=120, cwd=tmp_path,  # no .env of the checkout
        env={"SONORA_DATABASE_URL": database_url, "SONORA_DATA_DIR": str(tmp_path),
             "SONORA_SECRET_KEY": "k" * 48, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert "albums: " in done.stdout and "totals: 1 row(s) corrected" in done.stdout
    await assert_counts_true(db)
    async with db.transaction() as tx:  # right already: nothing to correct
        assert set((await world.repo.repair_counts(tx)).values()) == {0}


async def test_a_bulk_load_may_defer_the_counts(db: Database) -> None:
    """A loader that sets @sonora_counts_deferred on its connection writes without the triggers'
    work; repair-counts then makes the figures true."""
    world = World(db, seed=3)
    await world.add_artist()
    repo = world.repo
    async with db.session() as conn:
        await conn.execute("SET @sonora_counts_deferred = 1")
        try:
            for i in range(5):
                await repo.insert_song(conn, {
                    "title": f"{world.tag} bulk {i}", "artist_id": world.artists[0],
                    "duration_ms": 1000, "size": 1, "bitrate": 1, "sample_rate": 1,
                    "codec": "mp3", "mime_type": "audio/mpeg", "genre": "Bulk", "year": 1977,
                    "sha256": hashlib.sha256(f"{world.tag}bulk{i}".encode()).hexdigest(),
                    "file_path": f"bulk/{i}"})
        finally:
            await conn.execute("SET @sonora_counts_deferred = NULL")  # the pool's connection
    with pytest.raises(AssertionError):
        await assert_counts_true(db)
    async with db.transaction() as tx:
        fixed = await repo.repair_counts(tx)
    assert fixed["artists"] == 1 and fixed["totals"] == 1 and fixed["genres"] == 1
    await assert_counts_true(db)


async def test_more_writers_than_connections_on_one_album_neither_deadlock_nor_drift(
        database_url: str) -> None:
    """48 writers over a pool of 4, every one adding songs to the same album (and artist, and the
    one totals row) and deleting some again: the triggers lock those rows before the foreign-key
    checks do, so the writers queue rather than deadlock, and the figures stay exact."""
    async with open_db(database_url) as setup:
        world = World(setup, seed=11)
        await world.add_artist()
        async with setup.transaction() as tx:
            album, _ = await world.repo.find_or_create_album(tx, f"{world.tag} shared", world.artists[0],
                                                             2001, "Rock")
    db = Database(database_url, maxsize=4)
    await db.connect()
    repo = CatalogRepo(db)

    async def writer(n: int) -> None:
        made = []
        for i in range(5):
            async with db.transaction() as tx:
                made.append(await repo.insert_song(tx, {
                    "title": f"{world.tag} w{n}.{i}", "artist_id": world.artists[0],
                    "album_id": album, "duration_ms": 1000 + n, "size": 10 + i, "bitrate": 1,
                    "sample_rate": 1, "codec": "mp3", "mime_type": "audio/mpeg",
                    "genre": "Rock", "year": 2001, "file_path": f"w/{world.tag}/{n}/{i}",
                    "sha256": hashlib.sha256(f"{world.tag}w{n}.{i}".encode()).hexdigest()}))
        async with db.transaction() as tx:
            for song_id in made[::2]:
                await repo.delete_song(tx, song_id)

    try:
        await asyncio.gather(*(writer(n) for n in range(48)))
        kept = await db.fetchone("SELECT song_count, duration_ms FROM albums WHERE id = %s", (album,))
        assert kept == {"song_count": 48 * 2, "duration_ms": sum(2 * (1000 + n) for n in range(48))}
        await assert_counts_true(db)
    finally:
        await db.close()
