"""`python -m app import PATH [--in-place]`: a folder of audio files into the catalogue.

Files are hashed and their tags read in worker processes (mutagen is pure Python, so threads would
share one core); the catalogue rows are written in batches, one transaction per batch. Duplicates
(same content) are skipped, bad files are reported and skipped, and a re-run changes nothing.
With `--in-place` the files stay where they are; a re-run then also picks up changed, moved and
removed files under PATH. Songs follow their files: a file whose content changed at the same path
updates its song (same id), content found at a new path moves its song there, a file both
retagged and moved (same audio, tags left out, old file gone) updates and moves it, and only a
song whose content is nowhere any more is removed — so likes, playlist entries, history and play counts
stay with the song through tag edits, renames and moves.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import pymysql

from app import events
from app.errors import AppError
from app.media import images
from app.media.probe import AudioInfo, BadAudio, UnsupportedAudio, probe
from app.media.store import MediaStore, content_hashes, hash_file
from app.repos.db import Tx
from app.services.ingest import UNKNOWN_ARTIST, Batch, IngestService, Prepared

log = logging.getLogger(__name__)
AUDIO_EXTENSIONS = {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wav"}
# Folder pictures, in order of preference, matched in any letter case.
COVER_STEMS = ("cover", "folder", "front", "album")
COVER_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
MAX_COVER_BYTES = 10 * 1024 * 1024
# A disc folder inside an album folder: "CD1", "CD 2", "Disc 2", "Disc2", "disk-3", "Disc 1 - Live".
DISC_FOLDER = re.compile(r"(?:cd|dis[ck])\s*[-_.]?\s*(\d{1,3})(?!\d)(?:\W.*)?", re.IGNORECASE)
BATCH = 200
SCAN_CHUNK = 50


@dataclass
class Scanned:
    """What a worker process learnt about one file (and, unless in place, where it stored it).
    `info` carries no cover bytes: the cover is checked and kept by the worker already."""

    path: str
    size: int = 0
    mtime: float = 0.0
    sha256: str = ""
    audio_sha256: str | None = None
    info: AudioInfo | None = None
    error: str | None = None
    stored: str | None = None
    cover: tuple[str, int, int] | None = None  # (sha256, width, height), kept (see _cover)


@dataclass
class Summary:
    imported: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    duplicates: int = 0
    unchanged: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def seen(self) -> int:
        return (self.imported + self.updated + self.moved + self.duplicates + self.unchanged
                + len(self.failures))


def audio_files(root: Path) -> Iterator[Path]:
    """Audio files under `root` by extension, in a stable order; hidden entries skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                yield Path(folder) / name


def disc_from_folder(name: str) -> int | None:
    """The disc number a folder's name gives ("CD2", "Disc 2" → 2), or None."""
    m = DISC_FOLDER.fullmatch(name.strip())
    return (int(m.group(1)) or None) if m else None


def _cover_in(folder: Path) -> bytes | None:
    try:
        entries = {e.name.lower(): e for e in os.scandir(folder) if e.is_file()}
    except OSError:
        return None
    for stem in COVER_STEMS:
        for ext in COVER_EXTENSIONS:
            entry = entries.get(stem + ext)
            if entry is None:
                continue
            try:
                if entry.stat().st_size <= MAX_COVER_BYTES:
                    return Path(entry.path).read_bytes()
            except OSError:
                continue
    return None


def folder_cover(folder: Path) -> bytes | None:
    """The picture for the files of `folder`: cover, folder, front or album (.jpg, .jpeg, .png,
    .webp, any letter case) there or, for a disc folder (`Album/CD1`), in the album folder."""
    data = _cover_in(folder)
    if data is None and disc_from_folder(folder.name) is not None:
        data = _cover_in(folder.parent)
    return data


def scan(path: str, store_root: str | None, image_root: str) -> Scanned:
    """Hash and probe one file, resize its cover (embedded, else the folder's) into the image
    store and, with a store root, copy it in (runs in a worker process; a copy of a file that
    turns out to be a duplicate is the same content at the same name)."""
    result = Scanned(path)
    try:
        st = os.stat(path)
        result.size, result.mtime = st.st_size, st.st_mtime
        info = probe(path)
        if store_root is None:  # in place: the audio digest recognises a retagged, moved file
            result.sha256, result.audio_sha256 = content_hashes(path, info.container)
        else:
            result.sha256, _ = hash_file(path)
        folder = Path(path).parent
        if info.disc_number is None:
            info = replace(info, disc_number=disc_from_folder(folder.name))
        if store_root is not None:
            store = MediaStore(Path(store_root))
            result.stored = store.copy_in(Path(path), info.ext, durable=False).rel_path
        embedded = _cover(Path(image_root), info.cover) if info.cover else None
        result.cover = embedded or _folder_cover(Path(image_root), folder)
        result.info = replace(info, cover=None, cover_mime=None)
    except UnsupportedAudio as exc:
        result.error = f"not a playable audio file ({exc})"
    except BadAudio as exc:
        result.error = f"empty or damaged audio ({exc})"
    except OSError as exc:
        result.error = f"cannot read ({exc.strerror or exc})"
    return result


# Per worker process: covers already made, by picture and by folder (an album's tracks share one).
_processed: dict[str, tuple[str, int, int] | None] = {}
_folder_images: dict[Path, tuple[str, int, int] | None] = {}


def _folder_cover(image_root: Path, folder: Path) -> tuple[str, int, int] | None:
    if folder not in _folder_images:
        if len(_folder_images) > 10_000:
            _folder_images.clear()
        _folder_images[folder] = _cover(image_root, folder_cover(folder))
    return _folder_images[folder]


def _cover(image_root: Path, data: bytes | None) -> tuple[str, int, int] | None:
    """Check a cover and keep it as an original, rendered at the fixed sizes when first asked
    for (IngestService.image_path): resizing a thousand covers would be most of an import's
    work. In the worker; the same picture again (every track of an album) is not redone, nor is
    one whose renditions exist already."""
    if not data:
        return None
    key = hashlib.sha256(data).hexdigest()
    if key not in _processed:
        try:
            checked = images.inspect(data, decode=True)
        except images.BadImage:
            _processed[key] = None
        else:
            store = images.ImageStore(image_root)
            if not store.exists(key):
                store.save_original(key, data, durable=False)
            _processed[key] = (checked.sha256, checked.width, checked.height)
    return _processed[key]


def scan_many(paths: list[str], store_root: str | None, image_root: str) -> list[Scanned]:
    return [scan(p, store_root, image_root) for p in paths]


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


@dataclass
class _Plan:
    """What one scanned file does to the catalogue: insert, update, move (or touch) a song."""

    kind: str
    item: Scanned
    song_id: int | None = None


class Importer:
    def __init__(self, ingest: IngestService, in_place: bool = False, workers: int | None = None) -> None:
        self.ingest = ingest
        self.db = ingest.db
        self.in_place = in_place
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._memo = Batch()
        # The catalogue as this run sees it (in place): songs by path and by content, each
        # song's current path, the songs whose file may no longer hold them (gone or changed),
        # the songs already given a file in this run, and changed files with new content, which
        # wait until every other file is seen (their old content may turn up elsewhere: a rename).
        # Content already in the catalogue is looked up a batch at a time (`_look_up`), never
        # loaded whole: what this run gave a song, and what it took a song's content from, are
        # remembered here; what the database held at the batch's start is in `_stored`.
        self._claimed: set[str] = set()
        self._freed: set[str] = set()
        self._stored: set[str] = set()
        self._by_path: dict[str, Any] = {}
        self._by_sha: dict[str, Any] = {}
        self._by_audio: dict[str, list[Any]] = {}
        self._path_of: dict[int, str] = {}
        self._displaced: set[int] = set()
        self._settled: set[int] = set()
        self._deferred: list[Scanned] = []
        # Albums and artists made by this run, and the songs' moves between them by new tags.
        self._created: set[tuple[str, int]] = set()
        self._retagged: list[tuple[str, int, int]] = []

    async def run(self, root: Path, progress: Progress | None = None) -> Summary:
        started = time.monotonic()
        root = root.resolve()
        summary = Summary()
        files = list(audio_files(root))
        await self._load_catalogue()
        todo = self._to_scan(files, summary)
        self._displace_gone(root, files, summary)
        progress = progress or Progress(len(files))
        progress.total = max(len(files), 1)
        await self._scan_and_write(todo, summary, progress)
        await self._write_deferred(summary)
        await self._remove(sorted(self._displaced - self._settled), summary)
        await self._keep_renamed()
        progress.update(summary.seen, force=True)
        summary.seconds = time.monotonic() - started
        await self._audit(root, summary)
        return summary

    async def _load_catalogue(self) -> None:
        """Start the run's view of the catalogue afresh (in place: the files it already holds)."""
        self._settled, self._displaced, self._deferred = set(), set(), []
        self._created, self._retagged = set(), []
        self._claimed, self._freed, self._stored = set(), set(), set()
        self._by_path = await self.ingest.in_place_files() if self.in_place else {}
        self._by_sha = {row["sha256"]: row for row in self._by_path.values()}
        self._by_audio = {}
        for row in self._by_path.values():
            if row["audio_sha256"]:
                self._by_audio.setdefault(row["audio_sha256"], []).append(row)
        self._path_of = {int(row["id"]): path for path, row in self._by_path.items()}

    async def _look_up(self, items: list[Scanned]) -> None:
        """Which of these files' contents the catalogue holds already (one indexed query)."""
        self._stored = await self.ingest.existing_hashes([i.sha256 for i in items if i.sha256])

    def _known(self, sha256: str) -> bool:
        """Some song has this content: given in this run, or stored and not taken away since."""
        return sha256 in self._claimed or (sha256 in self._stored and sha256 not in self._freed)

    def _claim(self, sha256: str) -> None:
        self._claimed.add(sha256)
        self._freed.discard(sha256)

    def _free(self, sha256: str) -> None:
        self._claimed.discard(sha256)
        self._freed.add(sha256)

    def _to_scan(self, files: list[Path], summary: Summary) -> list[str]:
        """The files to scan: new ones, and known ones whose size or time changed (their songs
        may no longer be there); a known file left as it was is counted unchanged."""
        todo: list[str] = []
        for path in files:
            row = self._by_path.get(str(path))
            if row is None:
                todo.append(str(path))
                continue
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is not None and row["size"] == st.st_size and row["source_mtime"] == st.st_mtime:
                summary.unchanged += 1
                self._settled.add(int(row["id"]))
            else:
                todo.append(str(path))
                self._displaced.add(int(row["id"]))
        return todo

    def _displace_gone(self, root: Path, files: list[Path], summary: Summary) -> None:
        """The songs of known files under `root` that are not there any more may have moved:
        unless their content turns up elsewhere in this run, they are removed."""
        present = {str(p) for p in files}
        prefix = str(root) + os.sep
        gone = [int(row["id"]) for path, row in self._by_path.items()
                if path.startswith(prefix) and path not in present]
        if gone and not files:
            # A folder that lost every file is far more often an unmounted disk than a wish to
            # forget the whole library (and what listeners made with it): keep the songs.
            summary.failures.append((str(root), "no audio files found: nothing removed"
                                     " (is the folder mounted?)"))
            self._settled.update(gone)
        self._displaced.update(gone)

    async def _scan_and_write(self, todo: list[str], summary: Summary, progress: Progress) -> None:
        """Scan the files in worker processes and write what they found, a batch at a time.

        Chunks of files go to the worker processes a few at a time and come back in order, so
        memory stays flat however large the folder is, and writing overlaps with scanning."""
        loop = asyncio.get_running_loop()
        chunks = [todo[i : i + SCAN_CHUNK] for i in range(0, len(todo), SCAN_CHUNK)]
        store_root = None if self.in_place else str(self.ingest.media.root)
        image_root = str(self.ingest.media.root)
        batch: list[Scanned] = []

        async def take(scanned: asyncio.Future[list[Scanned]]) -> None:
            nonlocal batch
            batch.extend(await scanned)
            if len(batch) >= BATCH:
                await self._write(batch, summary)
                batch = []
                progress.update(summary.seen)

        with ProcessPoolExecutor(self.workers) as pool:
            pending: deque[asyncio.Future[list[Scanned]]] = deque()
            for chunk in chunks:
                pending.append(loop.run_in_executor(pool, scan_many, chunk, store_root, image_root))
                if len(pending) > self.workers * 2:
                    await take(pending.popleft())
            while pending:
                await take(pending.popleft())
        if batch:
            await self._write(batch, summary)

    async def _write(self, batch: list[Scanned], summary: Summary) -> None:
        await self._look_up(batch)
        plans = [plan for plan in (self._plan(item, summary) for item in batch) if plan is not None]
        await self._apply(plans, summary)

    def _plan(self, item: Scanned, summary: Summary) -> _Plan | None:
        """Decide what a scanned file does; counts the files that change nothing."""
        here = self._by_path.get(item.path)
        if item.error or item.info is None:
            summary.failures.append((item.path, item.error or "unreadable"))
            if here is not None:
                # Unreadable now (perhaps being written): its song stays as it was.
                self._settled.add(int(here["id"]))
            return None
        owner = self._by_sha.get(item.sha256)
        if owner is not None:
            song_id = int(owner["id"])
            if self._path_of.get(song_id) == item.path:
                self._settled.add(song_id)
                summary.unchanged += 1
                return _Plan("touch", item, song_id)  # same bytes, new mtime
            if song_id not in self._settled and (
                song_id in self._displaced or not os.path.exists(self._path_of[song_id])
            ):
                self._settled.add(song_id)
                self._path_of[song_id] = item.path
                return _Plan("move", item, song_id)
            summary.duplicates += 1
            return None
        if self._known(item.sha256):
            summary.duplicates += 1
            return None
        if here is not None:
            self._deferred.append(item)
            return None
        self._claim(item.sha256)
        twin = self._twin(item)
        if twin is not None:
            # Retagged and renamed (or moved) at once: the same audio, its old file gone.
            song_id = int(twin["id"])
            self._settled.add(song_id)
            self._path_of[song_id] = item.path
            self._free(twin["sha256"])
            return _Plan("update", item, song_id)
        return _Plan("insert", item)

    def _twin(self, item: Scanned) -> Any:
        """The song whose file, now gone, had the same audio as this new file; among several
        (one recording on an album and a compilation), the one whose tags were most alike."""
        assert item.info is not None
        info = item.info
        candidates = [row for row in self._by_audio.get(item.audio_sha256 or "", [])
                      if int(row["id"]) not in self._settled
                      and not os.path.exists(self._path_of[int(row["id"])])]

        def likeness(row: Any) -> tuple[int, int]:
            same = (
                (row["album_title"] or "").lower() == (info.album or "").lower(),
                row["artist_name"].lower() == (info.artist or UNKNOWN_ARTIST).lower(),
                row["track_number"] == info.track_number,
                row["disc_number"] == (info.disc_number or 1),
                row["title"].lower() == (info.title or "").lower(),
            )
            return sum(same), -int(row["id"])

        return max(candidates, key=likeness) if candidates else None

    async def _write_deferred(self, summary: Summary) -> None:
        """Changed files with new content: the song at that path is updated in place, unless its
        content moved elsewhere in this run (then the file is a new song)."""
        for start in range(0, len(self._deferred), BATCH):
            plans: list[_Plan] = []
            chunk = self._deferred[start : start + BATCH]
            await self._look_up(chunk)
            for item in chunk:
                if self._known(item.sha256):
                    summary.duplicates += 1
                    continue
                self._claim(item.sha256)
                song_id = int(self._by_path[item.path]["id"])
                if song_id in self._settled:
                    plans.append(_Plan("insert", item))
                else:
                    self._settled.add(song_id)
                    self._free(self._by_path[item.path]["sha256"])
                    plans.append(_Plan("update", item, song_id))
            await self._apply(plans, summary)
        self._deferred = []

    def _prepared(self, item: Scanned) -> Prepared:
        assert item.info is not None
        return Prepared(
            item.info, item.path if self.in_place else str(item.stored), item.sha256, item.size,
            in_place=self.in_place, source_mtime=item.mtime if self.in_place else None,
            cover_image=item.cover, source_name=Path(item.path).name,
            audio_sha256=item.audio_sha256,
        )

    async def _apply_one(self, tx: Tx, plan: _Plan, memo: Batch) -> list[str]:
        if plan.kind == "insert":
            _, keys = await self.ingest.insert_from_file(tx, self._prepared(plan.item), memo)
            return keys
        assert plan.song_id is not None
        if plan.kind == "update":
            return await self.ingest.update_from_file(tx, plan.song_id, self._prepared(plan.item), memo)
        await self.ingest.relocate(tx, plan.song_id, plan.item.path, plan.item.mtime)
        return [f"song:{plan.song_id}"] if plan.kind == "move" else []

    @staticmethod
    def _count(plan: _Plan, summary: Summary) -> None:
        if plan.kind == "insert":
            summary.imported += 1
        elif plan.kind == "update":
            summary.updated += 1
        elif plan.kind == "move":
            summary.moved += 1

    async def _apply(self, plans: list[_Plan], summary: Summary) -> None:
        """Write a batch of plans in one transaction, then drop the cache entries they touch."""
        if not plans:
            return
        keys: list[str] = []
        if not self.in_place or any(plan.item.cover is not None for plan in plans):
            # The copies and kept covers were written without fsync: make them durable, once for
            # the whole batch, before any row points at them (a cover is written by the scan of
            # one of its files, which may be in another batch, deferred or a duplicate).
            await asyncio.get_running_loop().run_in_executor(None, os.sync)
        memo = self._memo.carry()
        try:
            async with self.db.transaction() as tx:
                # New songs are written together; a run of them ends before any other plan, so
                # the batch's writes keep their order (content freed by a move may be inserted).
                inserts: list[_Plan] = []
                for plan in [*plans, None]:
                    if plan is not None and plan.kind == "insert":
                        inserts.append(plan)
                        continue
                    if inserts:
                        keys.extend(await self.ingest.insert_from_files(
                            tx, [self._prepared(p.item) for p in inserts], memo))
                        inserts = []
                    if plan is not None:
                        keys.extend(await self._apply_one(tx, plan, memo))
                await events.emit_many(tx, memo.events)
            self._committed(memo)
            for plan in plans:
                self._count(plan, summary)
        except (pymysql.err.IntegrityError, pymysql.err.DataError, AppError):
            # One bad row must not sink the batch: redo it one file at a time.
            log.info("batch failed; retrying its files one by one", exc_info=True)
            for plan in plans:
                memo = self._memo.carry()
                try:
                    async with self.db.transaction() as tx:
                        more = await self._apply_one(tx, plan, memo)
                        await events.emit_many(tx, memo.events)
                except pymysql.err.IntegrityError as exc:
                    if "uq_songs_sha" in str(exc):
                        summary.duplicates += 1
                    else:
                        summary.failures.append((plan.item.path, f"not imported ({exc})"))
                except (pymysql.err.DataError, AppError) as exc:
                    summary.failures.append((plan.item.path, f"not imported ({exc})"))
                else:
                    self._committed(memo)
                    keys.extend(more)
                    self._count(plan, summary)
        if keys:
            await self.ingest.catalog.after_write(*dict.fromkeys(keys))

    def _committed(self, memo: Batch) -> None:
        self._memo = memo
        self._created.update(memo.created)
        self._retagged.extend(memo.retagged)

    async def _keep_renamed(self) -> None:
        """An album (then an artist) renamed in the tags of all its songs keeps its id, so what
        listeners saved or followed stays: see IngestService.keep_renamed."""
        for entity in ("album", "artist"):
            targets: dict[int, set[int]] = {}
            for kind, old, new in self._retagged:
                if kind == entity:
                    targets.setdefault(old, set()).add(new)
            for old, news in sorted(targets.items()):
                new = next(iter(news))
                if len(news) != 1 or (entity, new) not in self._created:
                    continue
                async with self.db.transaction() as tx:
                    keys = await self.ingest.keep_renamed(tx, entity, old, new)
                if keys:
                    await self.ingest.catalog.after_write(*dict.fromkeys(keys))

    async def _remove(self, song_ids: list[int], summary: Summary) -> None:
        """Songs whose content is nowhere any more (in place): removed, a batch per transaction."""
        for start in range(0, len(song_ids), BATCH):
            summary.removed += await self.ingest.remove_songs(song_ids[start : start + BATCH])

    async def _audit(self, root: Path, summary: Summary) -> None:
        async with self.db.transaction() as tx:
            await events.emit(tx, events.AdminAction(
                actor_id=None, actor_username="command line", action="catalog.imported",
                target_type="folder", target_id=None,
                summary=f"imported {summary.imported} file(s) from {root}",
                details={"imported": summary.imported, "updated": summary.updated,
                         "moved": summary.moved, "removed": summary.removed,
                         "duplicates": summary.duplicates, "failures": len(summary.failures),
                         "in_place": self.in_place},
            ))


def report(summary: Summary, out: TextIO = sys.stdout) -> None:
    rate = summary.seen / summary.seconds if summary.seconds else 0.0
    out.write(
        f"imported {summary.imported}, updated {summary.updated}, moved {summary.moved}, "
        f"removed {summary.removed}, "
        f"duplicates {summary.duplicates}, unchanged {summary.unchanged}, "
        f"failed {len(summary.failures)} in {summary.seconds:.1f}s ({rate:,.0f} files/s)\n"
    )
    for path, reason in summary.failures:
        out.write(f"  failed: {path}: {reason}\n")
