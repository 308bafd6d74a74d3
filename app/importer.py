"""`python -m app import PATH [--in-place]`: a folder of audio files into the catalogue.

Files are hashed and their tags read in worker processes (mutagen is pure Python, so threads would
share one core); the catalogue rows are written in batches, one transaction per batch. Duplicates
(same content) are skipped, bad files are reported and skipped, and a re-run changes nothing.
With `--in-place` the files stay where they are; a re-run then also picks up changed and removed
files under PATH.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from app import events, images
from app.errors import AppError
from app.media import AudioInfo, BadAudio, MediaStore, UnsupportedAudio, hash_file, probe
from app.services.ingest import Batch, IngestService, Prepared

log = logging.getLogger(__name__)
AUDIO_EXTENSIONS = {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wav"}
COVER_NAMES = ("cover.jpg", "cover.jpeg", "cover.png", "folder.jpg", "folder.jpeg", "folder.png",
               "front.jpg", "front.png", "album.jpg")
BATCH = 200
SCAN_CHUNK = 50


@dataclass
class Scanned:
    """What a worker process learnt about one file (and, unless in place, where it stored it)."""

    path: str
    size: int = 0
    mtime: float = 0.0
    sha256: str = ""
    info: AudioInfo | None = None
    error: str | None = None
    stored: str | None = None
    cover: tuple[str, int, int] | None = None  # (sha256, width, height), already resized


@dataclass
class Summary:
    imported: int = 0
    updated: int = 0
    removed: int = 0
    duplicates: int = 0
    unchanged: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def seen(self) -> int:
        return self.imported + self.updated + self.duplicates + self.unchanged + len(self.failures)


def audio_files(root: Path) -> Iterator[Path]:
    """Audio files under `root` by extension, in a stable order; hidden entries skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                yield Path(folder) / name


def scan(path: str, store_root: str | None = None) -> Scanned:
    """Hash and probe one file and, with a store, copy it in (runs in a worker process; a copy
    of a file that turns out to be a duplicate is the same content at the same name)."""
    result = Scanned(path)
    try:
        st = os.stat(path)
        result.size, result.mtime = st.st_size, st.st_mtime
        result.sha256, _ = hash_file(path)
        result.info = probe(path)
        if store_root is not None:
            store = MediaStore(Path(store_root))
            result.stored = store.copy_in(Path(path), result.info.ext, durable=False).rel_path
            result.cover = _cover(Path(store_root), result.info.cover or _folder_cover(Path(path).parent))
    except UnsupportedAudio as exc:
        result.error = f"not a playable audio file ({exc})"
    except BadAudio as exc:
        result.error = f"empty or damaged audio ({exc})"
    except OSError as exc:
        result.error = f"cannot read ({exc.strerror or exc})"
    return result


_processed: dict[str, tuple[str, int, int] | None] = {}
_folder_covers: dict[Path, bytes | None] = {}


def _folder_cover(folder: Path) -> bytes | None:
    return folder_cover(folder, _folder_covers)


def _cover(store_root: Path, data: bytes | None) -> tuple[str, int, int] | None:
    """Resize a cover to the fixed sizes and keep it (in the worker, so covers are made in
    parallel); the same picture again (every track of an album) is not redone."""
    if not data:
        return None
    key = hashlib.sha256(data).hexdigest()
    if key not in _processed:
        try:
            processed = images.process(data)
        except images.BadImage:
            _processed[key] = None
        else:
            images.ImageStore(store_root).save(processed)
            _processed[key] = (processed.sha256, processed.width, processed.height)
    return _processed[key]


def scan_many(paths: list[str], store_root: str | None) -> list[Scanned]:
    return [scan(p, store_root) for p in paths]


def folder_cover(folder: Path, cache: dict[Path, bytes | None]) -> bytes | None:
    if folder not in cache:
        cache[folder] = None
        for name in COVER_NAMES:
            candidate = folder / name
            if candidate.is_file() and candidate.stat().st_size <= 10 * 1024 * 1024:
                cache[folder] = candidate.read_bytes()
                break
    return cache[folder]


class Progress:
    """A one-line progress bar on a terminal; quiet lines elsewhere."""

    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.out = out
        self.started = time.monotonic()
        self.last = 0.0
        self.tty = out.isatty()

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.1 if self.tty else 5.0):
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6)
        width = 30
        filled = min(width, int(width * done / self.total))
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} files {rate:,.0f}/s"
        self.out.write(("\r" + line) if self.tty else (line + "\n"))
        if force and self.tty:
            self.out.write("\n")
        self.out.flush()


class Importer:
    def __init__(self, ingest: IngestService, in_place: bool = False, workers: int | None = None) -> None:
        self.ingest = ingest
        self.db = ingest.db
        self.in_place = in_place
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._covers: dict[Path, bytes | None] = {}
        self._memo = Batch()

    async def run(self, root: Path, progress: Progress | None = None) -> Summary:
        started = time.monotonic()
        root = root.resolve()
        summary = Summary()
        files = list(audio_files(root))
        known_paths = await self.ingest.repo.in_place_files() if self.in_place else {}
        todo: list[str] = []
        for path in files:
            row = known_paths.get(str(path))
            st = os.stat(path)
            if row is not None and row["size"] == st.st_size and row["source_mtime"] == st.st_mtime:
                summary.unchanged += 1
            else:
                todo.append(str(path))
        known = await self.ingest.repo.known_hashes()
        progress = progress or Progress(len(files))
        progress.total = max(len(files), 1)
        loop = asyncio.get_running_loop()
        batch: list[Scanned] = []
        # Chunks of files go to the worker processes a few at a time and come back in order, so
        # memory stays flat however large the folder is, and writing overlaps with scanning.
        chunks = [todo[i : i + SCAN_CHUNK] for i in range(0, len(todo), SCAN_CHUNK)]
        store_root = None if self.in_place else str(self.ingest.media.root)
        with ProcessPoolExecutor(self.workers) as pool:
            pending: deque[asyncio.Future[list[Scanned]]] = deque()
            for chunk in chunks:
                pending.append(loop.run_in_executor(pool, scan_many, chunk, store_root))
                if len(pending) > self.workers * 2:
                    batch.extend(await pending.popleft())
                if len(batch) >= BATCH:
                    await self._write(batch, known, known_paths, summary)
                    batch = []
                    progress.update(summary.seen)
            while pending:
                batch.extend(await pending.popleft())
                if len(batch) >= BATCH:
                    await self._write(batch, known, known_paths, summary)
                    batch = []
                    progress.update(summary.seen)
        if batch:
            await self._write(batch, known, known_paths, summary)
        if self.in_place:
            await self._remove_missing(root, {str(p) for p in files}, known_paths, summary)
        progress.update(summary.seen, force=True)
        summary.seconds = time.monotonic() - started
        await self._audit(root, summary)
        return summary

    async def _write(
        self, batch: list[Scanned], known: set[str], known_paths: dict[str, Any], summary: Summary
    ) -> None:
        prepared: list[tuple[Prepared, int | None]] = []
        for item in batch:
            if item.error or item.info is None:
                summary.failures.append((item.path, item.error or "unreadable"))
                continue
            replacing = known_paths.get(item.path)
            if item.sha256 in known and (replacing is None or replacing["sha256"] == item.sha256):
                summary.duplicates += 1
                continue
            known.add(item.sha256)
            path = Path(item.path)
            file_path = item.path if self.in_place else str(item.stored)
            cover = None
            if item.cover is None and self.in_place:
                cover = None if item.info.cover else folder_cover(path.parent, self._covers)
            prepared.append((
                Prepared(item.info, file_path, item.sha256, item.size, in_place=self.in_place,
                         source_mtime=item.mtime if self.in_place else None, folder_cover=cover,
                         cover_image=item.cover),
                replacing["id"] if replacing is not None else None,
            ))
        if not prepared:
            return
        keys: list[str] = []
        if not self.in_place:
            # The copies were written without fsync: make them durable, once for the whole batch,
            # before any row points at them.
            await asyncio.get_running_loop().run_in_executor(None, os.sync)
        memo = self._memo.carry()
        try:
            async with self.db.transaction() as tx:
                for prep, old_id in prepared:
                    if old_id is not None:
                        await self.ingest.repo.delete_song_tx(tx, old_id)
                        memo.events.append(events.CatalogChanged("song", old_id, "deleted"))
                    _, more = await self.ingest._insert(tx, prep, {}, None, memo)
                    keys.extend(more)
                await events.emit_many(tx, memo.events)
            self._memo = memo
            for _prep, old_id in prepared:
                if old_id is not None:
                    summary.updated += 1
                else:
                    summary.imported += 1
        except Exception:
            # One bad row must not sink the batch: redo it one file at a time.
            log.info("batch failed; retrying its files one by one", exc_info=True)
            for prep, old_id in prepared:
                try:
                    if old_id is not None:
                        async with self.db.transaction() as tx:
                            await self.ingest.repo.delete_song_tx(tx, old_id)
                    _, more = await self.ingest.add_song(prep, {}, None)
                    keys.extend(more)
                    summary.imported += 1
                except AppError as exc:
                    if exc.status == 409:
                        summary.duplicates += 1
                    else:
                        summary.failures.append((prep.file_path, exc.message))
        await self.ingest.catalog._after_write(*set(keys))

    async def _remove_missing(
        self, root: Path, present: set[str], known_paths: dict[str, Any], summary: Summary
    ) -> None:
        prefix = str(root) + os.sep
        gone = [row for path, row in known_paths.items()
                if path.startswith(prefix) and path not in present]
        for row in gone:
            async with self.db.transaction() as tx:
                await self.ingest.repo.delete_song_tx(tx, row["id"])
                await events.emit(tx, events.CatalogChanged("song", row["id"], "deleted"))
            summary.removed += 1
        if gone:
            await self.ingest.catalog._after_write(*(f"song:{row['id']}" for row in gone))

    async def _audit(self, root: Path, summary: Summary) -> None:
        async with self.db.transaction() as tx:
            await events.emit(tx, events.AdminAction(
                actor_id=None, actor_username="command line", action="catalog.imported",
                target_type="folder", target_id=None,
                summary=f"imported {summary.imported} file(s) from {root}",
                details={"imported": summary.imported, "updated": summary.updated,
                         "removed": summary.removed, "duplicates": summary.duplicates,
                         "failures": len(summary.failures), "in_place": self.in_place},
            ))


def report(summary: Summary, out: TextIO = sys.stdout) -> None:
    rate = summary.seen / summary.seconds if summary.seconds else 0.0
    out.write(
        f"imported {summary.imported}, updated {summary.updated}, removed {summary.removed}, "
        f"duplicates {summary.duplicates}, unchanged {summary.unchanged}, "
        f"failed {len(summary.failures)} in {summary.seconds:.1f}s ({rate:,.0f} files/s)\n"
    )
    for path, reason in summary.failures:
        out.write(f"  failed: {path}: {reason}\n")
