"""`import` into a library that already holds many songs (issue 12): the content already there is
looked up a batch at a time with the unique sha256 index, never loaded whole, and duplicates are
still skipped — those already in the library as well as those met twice in one run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiomysql
import pytest
from conftest import MYSQL_URL, RUN_ID, make_audio, make_config, unique

from app.cli import importer as importer_module
from app.cli.context import catalog_context
from app.cli.importer import Importer, Progress
from app.repos.catalog import CatalogRepo
from app.repos.db import DbTarget

EXISTING = 20_000


async def _sql(sql: str, database: str | None = None) -> None:
    t = DbTarget.parse(f"{MYSQL_URL}/x")
    conn = await aiomysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                  db=database, autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture
async def big_library(tmp_path: Path) -> Any:
    """A database of its own holding EXISTING songs (rows only, as bench/scale_data makes them)."""
    name = f"sonora_import_{RUN_ID}"
    config = make_config(f"{MYSQL_URL}/{name}", tmp_path)
    async with catalog_context(config):  # creates and migrates it
        pass
    await _sql("INSERT INTO artists (id, name, name_canon) VALUES (1, 'Many', 'many')", name)
    await _sql(
        "INSERT INTO songs (title, artist_id, duration_ms, bitrate, sample_rate, codec, mime_type,"
        " size, sha256, file_path) SELECT CONCAT('Old ', seq), 1, 1000, 128000, 44100, 'mp3',"
        f" 'audio/mpeg', 1000, SHA2(seq, 256), CONCAT('old/', seq, '.mp3') FROM seq_1_to_{EXISTING}",
        name)
    try:
        yield config
    finally:
        await _sql(f"DROP DATABASE `{name}`")


async def test_import_asks_for_known_content_by_batch(big_library, tmp_path, audio_dir,
                                                      monkeypatch):
    config = big_library
    artist = unique("Big ")
    music = tmp_path / "music"
    (music / "a").mkdir(parents=True)
    files = [Path(shutil.copy(make_audio(audio_dir, "mp3", seconds=1.0, title=f"New {n}",
                                         artist=artist), music / "a" / f"{n}.mp3"))
             for n in range(5)]
    # The same content twice in one run: the second copy is a duplicate of the first.
    shutil.copy(files[0], music / "a" / "again.mp3")
    # Several batches from six files (scanned one a chunk, written two a batch).
    monkeypatch.setattr(importer_module, "SCAN_CHUNK", 1)
    monkeypatch.setattr(importer_module, "BATCH", 2)

    def load_all(self: Any) -> set[str]:
        raise AssertionError("the import loaded every song's hash")

    monkeypatch.setattr(CatalogRepo, "known_hashes", load_all, raising=False)
    asked: list[int] = []

    async with catalog_context(config) as ctx:
        real = ctx.ingest.existing_hashes

        async def spy(hashes: Any) -> set[str]:
            asked.append(len(list(hashes)))
            return await real(hashes)

        monkeypatch.setattr(ctx.ingest, "existing_hashes", spy)
        first = await Importer(ctx.ingest, workers=2).run(music, Progress(0))
        assert (first.imported, first.duplicates, len(first.failures)) == (5, 1, 0)
        # Asked a batch at a time, about the scanned files only: never the library's 20,000.
        assert asked and max(asked) <= 2 and sum(asked) == 6
        asked.clear()
        again = await Importer(ctx.ingest, workers=2).run(music, Progress(0))
        # A run that starts afresh finds all of it in the library: nothing new.
        assert (again.imported, again.duplicates, len(again.failures)) == (0, 6, 0)
        assert sum(asked) == 6
        total = await ctx.ingest.db.fetchval("SELECT COUNT(*) FROM songs")
    assert total == EXISTING + 5
