"""Getting audio into the catalogue: uploads and folder imports share one path from file to song."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from app import events
from app.errors import Conflict, InvalidInput, NotFound, UnsupportedMediaType
from app.media import images
from app.media.probe import AudioInfo, BadAudio, UnsupportedAudio, probe
from app.media.store import MediaStore
from app.repos.catalog import CatalogRepo
from app.repos.db import Database, Row, Tx
from app.repos.ingest import IngestRepo
from app.services.catalog import Actor, CatalogService
from app.services.indexer import before_songs_deleted
from app.services.types import Song

log = logging.getLogger(__name__)
UNKNOWN_ARTIST = "Unknown Artist"


@dataclass
class Batch:
    """What one import transaction has already looked up, and the events it will record."""

    artists: dict[str, int] = field(default_factory=dict)
    albums: dict[tuple[int, str], int] = field(default_factory=dict)
    images: dict[str, int | None] = field(default_factory=dict)
    covered: set[int] = field(default_factory=set)
    events: list[events.Event] = field(default_factory=list)
    created: list[tuple[str, int]] = field(default_factory=list)  # artists, albums made in it
    retagged: list[tuple[str, int, int]] = field(default_factory=list)  # (entity, from, to)

    def carry(self) -> Batch:
        """A batch for the next transaction, knowing what this one committed."""
        return Batch(dict(self.artists), dict(self.albums), dict(self.images), set(self.covered))


@dataclass
class Prepared:
    """A probed file and where its bytes live (in the media store, or in place)."""

    info: AudioInfo
    file_path: str
    sha256: str
    size: int
    in_place: bool = False
    source_mtime: float | None = None
    cover_image: tuple[str, int, int] | None = None  # made already: (sha256, width, height)
    source_name: str | None = None  # the file's original name (an upload's, an imported file's)
    audio_sha256: str | None = None  # the audio alone, tags left out (media.content_hashes)


class IngestService:
    def __init__(
        self, db: Database, catalog: CatalogService, media: MediaStore, image_store: images.ImageStore
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.repo = CatalogRepo(db)
        self.hashes = IngestRepo(db)
        self.media = media
        self.images = image_store
        self._rendering: dict[str, asyncio.Future[bool]] = {}

    async def probe(self, path: Path) -> AudioInfo:
        """Read an audio file's format and tags off the event loop; 415/422 for bad files."""
        try:
            return await asyncio.get_running_loop().run_in_executor(None, probe, path)
        except UnsupportedAudio as exc:
            raise UnsupportedMediaType(
                "Not an audio file Sonora can play (MP3, FLAC, Ogg Vorbis, Opus, M4A/AAC or WAV)"
            ) from exc
        except BadAudio as exc:
            raise InvalidInput(f"The audio file is empty or damaged: {exc}") from exc

    async def make_image(self, data: bytes) -> tuple[str, int, int]:
        """Resize an image to the fixed sizes and keep it on disk: `(sha256, width, height)`.

        Never inside a transaction: decoding waits for one of a few slots, and a transaction
        must not hold its pooled connection meanwhile (SPEC 10, STYLE 15). An image already
        stored (an album's cover embedded in each track) is not decoded again."""
        sha = hashlib.sha256(data).hexdigest()
        known = await self.repo.image_size(sha)
        if known is not None and self.images.exists(sha):
            return sha, known[0], known[1]
        processed = await images.process_async(data)  # a few at a time, on threads of their own
        await asyncio.get_running_loop().run_in_executor(None, self.images.save, processed)
        return processed.sha256, processed.width, processed.height

    async def save_image(self, data: bytes) -> int:
        """An uploaded picture: checked, resized, kept; 415 for a non-image, 422 for a broken one."""
        try:
            sha, width, height = await self.make_image(data)
        except images.BadImage as exc:
            if exc.status == 415:
                raise UnsupportedMediaType("Not an image (JPEG, PNG, WebP or GIF)") from exc
            raise InvalidInput(f"The image is damaged or too large: {exc}") from exc
        async with self.db.transaction() as tx:
            return await self.repo.upsert_image(tx, sha, width, height)

    async def cover_image(self, cover: bytes | None) -> tuple[str, int, int] | None:
        """An embedded cover made ready before the song's transaction; None when there is none
        or it cannot be read (the song is kept without it)."""
        if not cover:
            return None
        try:
            return await self.make_image(cover)
        except images.BadImage as exc:
            log.info("ignoring an unreadable cover: %s", exc)
            return None

    async def image_path(self, image_id: int, size: int) -> Path | None:
        """Where an image's rendition at `size` is; a picture an import kept as an original is
        rendered first (once in this process however many ask at once). None when there is no
        such image or its original does not decode."""
        sha = await self.repo.image_sha(image_id)
        if not sha:
            return None
        path = self.images.path(sha, size)
        if path.is_file() or not self.images.original_path(sha).is_file():
            return path
        rendering = self._rendering.get(sha)
        if rendering is None:
            rendering = asyncio.ensure_future(images.render_async(self.images, sha))
            self._rendering[sha] = rendering
            rendering.add_done_callback(lambda _: self._rendering.pop(sha, None))
        try:
            await asyncio.shield(rendering)
        except images.BadImage as exc:
            log.warning("image %s (%s) does not decode: %s", image_id, sha, exc)
            return None
        except OSError as exc:  # the disk: not served now, tried again at the next ask
            log.warning("image %s (%s) could not be rendered: %s", image_id, sha, exc)
            return None
        return path

    async def add_song(
        self, prepared: Prepared, overrides: dict[str, Any], actor: Actor | None
    ) -> tuple[int, list[str]]:
        """Create the song (and its artist/album from the tags when not given) in one transaction.
        Returns the song id and the cache keys to invalidate."""
        existing = await self.repo.song_by_sha(prepared.sha256)
        if existing:
            raise Conflict("This file is already in the catalogue", details={"existing_id": existing})
        try:
            async with self.db.transaction() as tx:
                song_id, keys = await self._insert(tx, prepared, overrides, actor)
        except pymysql.err.IntegrityError as exc:
            existing = await self.repo.song_by_sha(prepared.sha256)
            if existing:
                raise Conflict("This file is already in the catalogue",
                               details={"existing_id": existing}) from exc
            raise
        return song_id, keys

    async def _artist(self, tx: Tx, name: str, batch: Batch | None,
                      created: list[tuple[str, int]]) -> int:
        key = name.lower()
        if batch is not None and key in batch.artists:
            return batch.artists[key]
        artist_id, new = await self.repo.find_or_create_artist(tx, name)
        if new:
            created.append(("artist", artist_id))
        if batch is not None:
            batch.artists[key] = artist_id
        return artist_id

    async def _album(self, tx: Tx, info: AudioInfo, artist_id: int, year: int | None,
                     genre: str | None, batch: Batch | None,
                     created: list[tuple[str, int]]) -> int:
        assert info.album is not None
        key = (artist_id, info.album.lower())
        if batch is not None and key in batch.albums:
            return batch.albums[key]
        album_type = "single" if (info.track_total or 0) == 1 else "album"
        album_id, new = await self.repo.find_or_create_album(
            tx, info.album, artist_id, year, genre, album_type
        )
        if new:
            created.append(("album", album_id))
        if batch is not None:
            batch.albums[key] = album_id
        return album_id

    async def _resolve(
        self, tx: Tx, prepared: Prepared, overrides: dict[str, Any], batch: Batch | None,
        created: list[tuple[str, int]],
    ) -> tuple[dict[str, Any], list[int]]:
        """The song's columns from its file's tags (artist, album, cover found or created in `tx`)
        and its featured artists' ids."""
        info = prepared.info
        artist_id = overrides.get("artist_id")
        if artist_id is None:
            artist_id = await self._artist(tx, info.artist or UNKNOWN_ARTIST, batch, created)
        genre = overrides.get("genre", info.genre)
        year = overrides.get("year", info.year)
        album_id = overrides.get("album_id")
        if album_id is None and info.album:
            album_id = await self._tagged_album(tx, info, artist_id, year, genre, batch, created)
        cover_image_id = await self._cover(tx, prepared, album_id, batch)
        featured_ids = await self._featured(tx, info, artist_id, batch, created)
        fields = _song_fields(prepared, overrides, artist_id, album_id, genre, year)
        # A song on an album shows the album's cover; only a song without one keeps its own.
        fields["cover_image_id"] = cover_image_id if cover_image_id and not album_id else None
        return fields, featured_ids

    async def _tagged_album(self, tx: Tx, info: AudioInfo, artist_id: int, year: int | None,
                            genre: str | None, batch: Batch | None,
                            created: list[tuple[str, int]]) -> int:
        """The album named in the tags, under its album artist when that is not the song's."""
        album_artist_id = artist_id
        if info.album_artist and info.album_artist.lower() != (info.artist or "").lower():
            album_artist_id = await self._artist(tx, info.album_artist, batch, created)
        return await self._album(tx, info, album_artist_id, year, genre, batch, created)

    async def _cover(self, tx: Tx, prepared: Prepared, album_id: int | None,
                     batch: Batch | None) -> int | None:
        """The embedded cover's image id (kept in `tx`), also made the album's cover when it has
        none yet; None without a cover."""
        if prepared.cover_image is None:
            return None
        sha, width, height = prepared.cover_image
        if batch is not None and sha in batch.images:
            cover_image_id = batch.images[sha]
        else:
            cover_image_id = await self.repo.upsert_image(tx, sha, width, height)
            if batch is not None:
                batch.images[sha] = cover_image_id
        if cover_image_id and album_id and (batch is None or album_id not in batch.covered):
            await self.repo.set_album_cover_if_missing(tx, album_id, cover_image_id)
            if batch is not None:
                batch.covered.add(album_id)
        return cover_image_id

    async def _featured(self, tx: Tx, info: AudioInfo, artist_id: int, batch: Batch | None,
                        created: list[tuple[str, int]]) -> list[int]:
        """The featured artists' ids, in tag order, without the main artist or repeats."""
        featured_ids: list[int] = []
        for name in info.featured:
            fid = await self._artist(tx, name, batch, created)
            if fid != artist_id and fid not in featured_ids:
                featured_ids.append(fid)
        return featured_ids

    @staticmethod
    async def _emit(tx: Tx, found: list[events.Event], batch: Batch | None) -> None:
        """Record events now, or with the batch's one insert when there is a batch."""
        if batch is not None:
            batch.events.extend(found)
        else:
            await events.emit_many(tx, found)

    async def _insert(
        self, tx: Tx, prepared: Prepared, overrides: dict[str, Any], actor: Actor | None,
        batch: Batch | None = None,
    ) -> tuple[int, list[str]]:
        """Insert one song in `tx`. With a `batch` (folder import), artists, albums and covers
        already seen are not looked up again and events are collected for one insert."""
        created: list[tuple[str, int]] = []
        fields, featured_ids = await self._resolve(tx, prepared, overrides, batch, created)
        song_id = await self.repo.insert_song(tx, fields)
        keys = await self._inserted(tx, song_id, fields, featured_ids, created, batch, prepared, actor)
        return song_id, keys

    async def _inserted(
        self, tx: Tx, song_id: int, fields: dict[str, Any], featured_ids: list[int],
        created: list[tuple[str, int]], batch: Batch | None, prepared: Prepared,
        actor: Actor | None = None,
    ) -> list[str]:
        """What follows a new song's row in `tx`: its featured artists and events; returns the
        cache keys to drop."""
        if batch is not None:
            batch.created.extend(created)
        if featured_ids:
            await self.repo.set_featured(tx, song_id, featured_ids)
        found: list[events.Event] = [events.CatalogChanged(entity, entity_id, "upserted")
                                     for entity, entity_id in created]
        found.append(events.CatalogChanged("song", song_id, "upserted"))
        if actor is not None:
            found.append(events.AdminAction(
                actor_id=actor.user_id, actor_username=actor.username, action="song.uploaded",
                target_type="song", target_id=song_id,
                summary=f"uploaded {fields['title']}",
                details={"sha256": prepared.sha256, "size": prepared.size},
            ))
        await self._emit(tx, found, batch)
        artist_id, album_id = fields["artist_id"], fields["album_id"]
        return [f"artist:{artist_id}", f"album:{album_id}"] + [f"artist:{f}" for f in featured_ids]

    async def insert_from_file(self, tx: Tx, prepared: Prepared, batch: Batch) -> tuple[int, list[str]]:
        """A new song from an imported file, in the import's transaction `tx`."""
        return await self._insert(tx, prepared, {}, None, batch)

    async def insert_from_files(self, tx: Tx, files: Sequence[Prepared], batch: Batch) -> list[str]:
        """New songs from imported files, in the import's transaction `tx`: their artists and
        albums found or made one file at a time, their rows written in one statement (a folder
        import's writes are a few statements per batch, not one per file). Returns the cache
        keys to drop."""
        resolved = []
        for prepared in files:
            created: list[tuple[str, int]] = []
            fields, featured_ids = await self._resolve(tx, prepared, {}, batch, created)
            resolved.append((prepared, fields, featured_ids, created))
        ids = await self.repo.insert_songs(tx, [fields for _, fields, _, _ in resolved])
        keys: list[str] = []
        for song_id, (prepared, fields, featured_ids, created) in zip(ids, resolved, strict=True):
            keys += await self._inserted(tx, song_id, fields, featured_ids, created, batch, prepared)
        return keys

    async def update_from_file(self, tx: Tx, song_id: int, prepared: Prepared, batch: Batch) -> list[str]:
        """A changed file (new content or tags at the same place): its song keeps its id, so
        likes, playlist entries, history and plays stay with it; the tags, hash, size and
        duration are the file's, artist and album found again from the tags. Returns the cache
        keys to drop; the event is `catalog.song.upserted`."""
        before = await self.repo.song_refs(tx, song_id)
        if before is None:
            raise NotFound("No such song")
        created: list[tuple[str, int]] = []
        fields, featured_ids = await self._resolve(tx, prepared, {}, batch, created)
        fields.pop("in_place")
        await self.repo.update_song(tx, song_id, fields)
        await self.repo.set_featured(tx, song_id, featured_ids)
        batch.created.extend(created)
        for entity, key in (("album", "album_id"), ("artist", "artist_id")):
            if before[key] and fields[key] != before[key]:
                batch.retagged.append((entity, int(before[key]), int(fields[key] or 0)))
        found: list[events.Event] = [events.CatalogChanged(entity, entity_id, "upserted")
                                     for entity, entity_id in created]
        found.append(events.CatalogChanged("song", song_id, "upserted"))
        await self._emit(tx, found, batch)
        artists = {before["artist_id"], fields["artist_id"], *before["featured"], *featured_ids}
        albums = {before["album_id"], fields["album_id"]} - {None}
        return ([f"song:{song_id}"] + [f"artist:{a}" for a in sorted(artists)]
                + [f"album:{a}" for a in sorted(albums)])

    async def keep_renamed(self, tx: Tx, entity: str, keep_id: int, new_id: int) -> list[str] | None:
        """An album or artist renamed in the tags of all its songs: a rescan made a new one for
        them and left the old one empty. The old one takes the new one's name (and place) and
        its songs back, so what listeners saved or followed, its picture and text stay; the new
        one goes. None (nothing done) unless the old one is empty and the new one was made for
        them. Returns the cache keys to drop."""
        merged = await self.repo.merge_into(tx, entity, keep_id, new_id)
        if merged is None:
            return None
        found: list[events.Event] = [events.CatalogChanged(entity, new_id, "deleted"),
                                     events.CatalogChanged(entity, keep_id, "upserted")]
        found += [events.CatalogChanged("song", song_id, "upserted") for song_id in merged["songs"]]
        found += [events.CatalogChanged("album", album_id, "upserted") for album_id in merged["albums"]]
        await events.emit_many(tx, found)
        return ([f"{entity}:{keep_id}", f"{entity}:{new_id}"] + [f"song:{i}" for i in merged["songs"]]
                + [f"album:{i}" for i in merged["albums"]] + [f"artist:{i}" for i in merged["artists"]])

    async def relocate(self, tx: Tx, song_id: int, file_path: str, mtime: float) -> None:
        """An in-place song's file, same content, at a new path (moved, renamed) or touched."""
        await self.repo.move_song_file(tx, song_id, file_path, mtime)

    async def upload(
        self, temp: Path, size: int, sha256: str, overrides: dict[str, Any], actor: Actor,
        filename: str | None = None,
    ) -> Song:
        """An uploaded file, already on disk in a temporary place: probe, store, add (an
        untagged file is titled from `filename`, the client's name for it). The temporary file
        is always removed; nothing is stored on refusal."""
        stored_rel = None
        try:
            info = await self.probe(temp)
            existing = await self.repo.song_by_sha(sha256)
            if existing:
                raise Conflict("This file is already in the catalogue",
                               details={"existing_id": existing})
            await self._check_ids(overrides)
            stored = await asyncio.get_running_loop().run_in_executor(
                None, self.media.adopt, temp, sha256, info.ext
            )
            stored_rel = stored.rel_path
            prepared = Prepared(info, stored.rel_path, sha256, size, source_name=filename,
                                cover_image=await self.cover_image(info.cover))
            song_id, keys = await self.add_song(prepared, overrides, actor)
        except BaseException:
            temp.unlink(missing_ok=True)  # noqa: ASYNC240 - one unlink, not worth a thread hop
            if stored_rel is not None and await self.repo.song_by_sha(sha256) is None:
                self.media.remove(stored_rel)
            raise
        await self.catalog.after_write(f"song:{song_id}", *keys)
        return await self.catalog.song(song_id)

    async def _check_ids(self, overrides: dict[str, Any]) -> None:
        if overrides.get("artist_id") and await self.repo.artist(overrides["artist_id"]) is None:
            raise InvalidInput(details={"fields": {"artist_id": "no such artist"}})
        if overrides.get("album_id") and await self.repo.album(overrides["album_id"]) is None:
            raise InvalidInput(details={"fields": {"album_id": "no such album"}})

    async def existing_hashes(self, hashes: Collection[str]) -> set[str]:
        """Those of these content hashes some song already has (an import skips that content);
        asked a batch at a time, so an import into a big library never holds every hash."""
        return await self.hashes.existing_hashes(hashes)

    async def in_place_files(self) -> dict[str, Row]:
        """The songs imported in place, by their file path (a rescan compares the folder to them)."""
        return await self.repo.in_place_files()

    async def remove_songs(self, song_ids: list[int]) -> int:
        """Delete songs whose content is gone (a rescan), in one transaction; returns how many were
        still there. Their playlists' documents and the songs' own are re-indexed, the cached
        entries dropped; stored files are left to the caller (in-place files are never touched)."""
        found: list[events.Event] = []
        keys: list[str] = []
        removed = 0
        async with self.db.transaction() as tx:
            # Their playlists lose songs: the search index hears of it, as it would at reindex.
            found += await before_songs_deleted(tx, song_ids)
            for song_id in song_ids:
                row = await self.repo.delete_song(tx, song_id)
                if row is None:
                    continue
                removed += 1
                found.append(events.CatalogChanged("song", song_id, "deleted"))
                keys += [f"song:{song_id}", f"artist:{row['artist_id']}"]
                if row["album_id"]:
                    keys.append(f"album:{row['album_id']}")
            await events.emit_many(tx, found)
        if keys:
            await self.catalog.after_write(*dict.fromkeys(keys))
        return removed

    def remove_file(self, file_path: str, in_place: bool) -> None:
        """Remove a deleted song's stored file (never a file imported in place)."""
        if not in_place:
            try:
                self.media.remove(file_path)
            except (OSError, ValueError):
                log.warning("could not remove stored file %s", file_path)


def _song_fields(prepared: Prepared, overrides: dict[str, Any], artist_id: int,
                 album_id: int | None, genre: str | None, year: int | None) -> dict[str, Any]:
    """A song row's columns from the probed file, the overrides given and the ids found."""
    info = prepared.info
    explicit = overrides.get("explicit")
    name = prepared.file_path if prepared.source_name is None else prepared.source_name
    title = overrides.get("title") or info.title or title_from_filename(name) or "Untitled"
    return {
        "title": title,
        "artist_id": artist_id,
        "album_id": album_id,
        "track_number": overrides.get("track_number", info.track_number),
        "disc_number": overrides.get("disc_number") or info.disc_number or 1,
        "duration_ms": info.duration_ms,
        "bitrate": info.bitrate,
        "sample_rate": info.sample_rate,
        "codec": info.codec,
        "mime_type": info.mime_type,
        "size": prepared.size,
        "sha256": prepared.sha256,
        "audio_sha256": prepared.audio_sha256,
        "file_path": prepared.file_path,
        "in_place": int(prepared.in_place),
        "source_mtime": prepared.source_mtime,
        "genre": genre,
        "year": year,
        "explicit": int(info.explicit if explicit is None else explicit),
    }


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_TRACK_PREFIX = re.compile(r"\d{1,3}(?:\s*[-.]\s*|\s+)(?=\S)")


def title_from_filename(name: str | None) -> str | None:
    """A title from a file name, for a file without a title tag: the last path part (either
    slash), without its extension and a leading track number ("03 - Song.mp3" → "Song");
    control characters and unencodable text removed, capped. None when nothing is left."""
    if not name:
        return None
    text = name.encode("utf-8", "replace").decode("utf-8")
    text = re.split(r"[\\/]", text)[-1]
    stem, dot, ext = text.rpartition(".")
    if dot and stem.strip() and 1 <= len(ext) <= 5 and ext.isalnum():
        text = stem
    text = " ".join(_CONTROL.sub(" ", text).split())
    bare = _TRACK_PREFIX.sub("", text, count=1) if _TRACK_PREFIX.match(text) else text
    text = bare or text
    return text[:500].strip() or None
