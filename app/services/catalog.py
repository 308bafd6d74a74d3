"""The catalogue: artists, albums and songs — reads (cached) and admin writes (with events)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import pymysql

from app import events
from app.adapters.cache import MISSING, Cache
from app.adapters.search.port import Filters, SearchPort, SearchQuery, SearchUnavailable, normalise_text
from app.errors import Conflict, InvalidInput, NotFound
from app.repos.catalog import (
    ALBUM_FIELDS,
    ALBUM_ORDERS,
    ALBUM_SONG_FIELDS,
    ARTIST_ORDERS,
    SONG_ORDERS,
    CatalogRepo,
    Listed,
    PageSpec,
    SortKeys,
)
from app.repos.db import Database, Row, Tx
from app.services import validation as v
from app.services.indexer import before_songs_deleted
from app.services.types import (
    Album,
    Artist,
    ArtistDetail,
    ArtistRef,
    Browse,
    IndexArtist,
    Links,
    Listing,
    Song,
)

T = TypeVar("T")
log = logging.getLogger(__name__)
ALBUM_TYPES = ("album", "single", "ep", "compilation")
TTL = 300.0
ALBUM_SONGS_MAX = 1000  # the songs an album answer holds (the largest box sets have a few hundred)
LIST_TTL = 60.0  # a list page (each write starts a new generation of them)
TEXT_CANDIDATES = 1000  # the most songs a text filter takes from the index
CHANGED_AT_TTL = 86_400.0  # a generation's first-seen time; expiring only makes apps reload
RANDOM_ROUNDS = 3  # rounds of random ids tried before a random pick reads a run of ids
RANDOM_WINDOWS = 4  # windows of a filtered list a filtered random pick reads at most
RANDOM_COUNTED_YEARS = 30  # a genre's songs are counted per year over at most this many years


def image_url(links: Links, image_id: int | None) -> str | None:
    """The URL of an entity's picture (the size every shape uses), None when it has none."""
    return links.image(image_id) if image_id else None


def _artist_refs(found: Sequence[Mapping[str, Any]] | None) -> list[ArtistRef]:
    """A song's featured artists as the repository found them, as `{id, name}`."""
    return [{"id": a["id"], "name": a["name"]} for a in found or ()]


def song_json(row: Row, links: Links, featured: Sequence[Mapping[str, Any]] | None = None) -> Song:
    """The song shape of the API (SPEC 5.0)."""
    return {
        "id": row["id"],
        "title": row["title"],
        "artist_id": row["artist_id"],
        "artist": {"id": row["artist_id"], "name": row["artist_name"]},
        "featured_artists": _artist_refs(featured),
        "album_id": row["album_id"],
        "album": {"id": row["album_id"], "title": row["album_title"]} if row["album_id"] else None,
        "track_number": row["track_number"],
        "disc_number": row["disc_number"],
        "duration_ms": row["duration_ms"],
        "bitrate": row["bitrate"],
        "sample_rate": row["sample_rate"],
        "codec": row["codec"],
        "mime_type": row["mime_type"],
        "size": row["size"],
        "year": row["year"],
        "genre": row["genre"],
        "explicit": bool(row["explicit"]),
        "play_count": row["play_count"],
        "cover_url": image_url(links, row["cover_image_id"]),
        "stream_url": links.stream(row["id"]),
        "created_at": v.rfc3339(row["created_at"]),
    }


def _album_song(values: Sequence[Any], links: Links) -> Song:
    """`song_json` of one song of an album read as JSON (repos.catalog.ALBUM_SONGS_JSON)."""
    row = dict(zip(ALBUM_SONG_FIELDS, values, strict=True))
    row["created_at"] = dt.datetime.fromisoformat(row["created_at"])
    return song_json(row, links, row["featured"])


def song_json_featured(row: Row, links: Links) -> Song:
    """`song_json` of a row read with its featured artists (`featured_json`,
    repos.catalog.SONG_FEATURED_SELECT)."""
    return song_json(row, links, json.loads(row["featured_json"] or "null"))


def album_json(row: Row, links: Links) -> Album:
    """The album shape of the API, without its songs."""
    return {
        "id": row["id"],
        "title": row["title"],
        "artist_id": row["artist_id"],
        "artist": {"id": row["artist_id"], "name": row["artist_name"]},
        "album_type": row["album_type"],
        "year": row["year"],
        "genre": row["genre"],
        "song_count": int(row["song_count"]),
        "duration_ms": int(row["duration_ms"]),
        "cover_url": image_url(links, row["cover_image_id"]),
        "created_at": v.rfc3339(row["created_at"]),
    }


def artist_json(row: Row, links: Links) -> Artist:
    """The artist shape of lists, without the counts."""
    return {
        "id": row["id"],
        "name": row["name"],
        "image_url": image_url(links, row["image_id"]),
        "bio": row["bio"],
        "created_at": v.rfc3339(row["created_at"]),
    }


# Orders whose sort keys are never NULL: only those take keyset cursors (a NULL has no "after").
CURSOR_ORDERS = {"songs": ("newest", "title", "popular", "id"), "albums": ("newest", "title"),
                 "artists": ("name",)}


def encode_cursor(key: Sequence[Any] | None) -> str | None:
    """A row's sort key as an opaque cursor (URL-safe base64 of JSON)."""
    if key is None:
        return None
    values = [str(k) if isinstance(k, dt.datetime) else k for k in key]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, name: str, keys: SortKeys) -> tuple[Any, ...]:
    """A cursor made by `encode_cursor` for an order with these sort keys; refused otherwise."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        values = None
    if not isinstance(values, list) or len(values) != len(keys) or not all(
            _key_value_ok(col, x) for (col, _), x in zip(keys, values, strict=True)):
        raise InvalidInput(details={"fields": {name: "is not a cursor of this list"}})
    return tuple(values)


def _key_value_ok(column: str, value: Any) -> bool:
    """A cursor's value fits its column: a time, a text, or an integer (SQL never sees a value
    it would have to convert with a warning)."""
    if column.endswith("created_at"):
        if not isinstance(value, str):
            return False
        try:
            return 1000 <= dt.datetime.fromisoformat(value).year <= 9999
        except ValueError:
            return False
    if column.endswith(("title", "title_canon", "name_canon")):
        return isinstance(value, str) and len(value) <= 500
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


@dataclass(frozen=True)
class Cursor:
    """Keyset paging asked for: rows `after` one cursor or `before` another (at most one)."""

    after: str | None = None
    before: str | None = None


def _spec(group: str, order: str, keys: SortKeys, limit: int, offset: int,
          cursor: Cursor | None) -> PageSpec:
    """The repository's page for an offset or a cursor (a cursor wins)."""
    if cursor is None or (cursor.after is None and cursor.before is None):
        return PageSpec(limit, offset)
    name = "after" if cursor.after is not None else "before"
    if order not in CURSOR_ORDERS[group]:
        raise InvalidInput(details={"fields": {name: f"cannot page this order ({order})"}})
    text = cursor.after if cursor.after is not None else cursor.before
    assert text is not None
    return PageSpec(limit, after=decode_cursor(text, name, keys), reverse=name == "before")


def _listing(listed: Listed, items: list[T], spec: PageSpec, group: str, order: str
             ) -> Listing[T]:
    """A page as the API shows it: cursors to the next and previous pages where they exist."""
    pageable = order in CURSOR_ORDERS[group]
    full = len(items) >= spec.limit
    # A page read backwards (`before`) always has pages after it; one read forwards, when full.
    has_next = pageable and listed.last_key is not None and (spec.reverse or full)
    has_prev = pageable and listed.first_key is not None and (
        spec.after is not None and not spec.reverse or spec.offset > 0 or spec.reverse and full)
    return {
        "items": items, "total": listed.total, "total_is_estimate": listed.estimated,
        "next": encode_cursor(listed.last_key) if has_next else None,
        "prev": encode_cursor(listed.first_key) if has_prev else None,
    }


@dataclass(frozen=True)
class Actor:
    """Who makes a change, for the audit log."""

    user_id: int
    username: str


def _opt_int(body: dict[str, Any], name: str, errors: v.Fields, lo: int, hi: int) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        errors.add(name, f"must be an integer from {lo} to {hi}")
        return None
    return value


def _opt_text(body: dict[str, Any], name: str, errors: v.Fields, max_len: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    text = v.clean_text(value, name, errors, max_len=max_len)
    return text or None


def _filter_parts(filters: dict[str, Any]) -> list[tuple[str, str]]:
    """A list's filters as part of its cache key: those set, in a fixed order."""
    return sorted((k, str(val)) for k, val in filters.items() if val)


def _spec_parts(spec: PageSpec) -> list[Any]:
    """A page's part of its cache key."""
    return [spec.limit, spec.offset, json.dumps(spec.after, default=str), spec.reverse]


def _bool(body: dict[str, Any], name: str, errors: v.Fields) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "on", "off"):
        return value.lower() in ("true", "1", "on")
    errors.add(name, "must be true or false")
    return None


class CatalogService:
    """The catalogue: reads (cached, shared by every viewer) and admin writes (with events)."""

    def __init__(self, db: Database, cache: Cache, links: Links,
                 search: SearchPort | None = None) -> None:
        self.db = db
        self.cache = cache
        self.links = links
        self.search = search  # narrows a list's text filter; None: the filter scans the titles
        self.repo = CatalogRepo(db)

    # reads -------------------------------------------------------------------------------
    async def _songs_json(self, rows: list[Row]) -> list[Song]:
        featured = await self.repo.featured([r["id"] for r in rows])
        return [song_json(r, self.links, featured.get(r["id"])) for r in rows]

    async def _load_song(self, song_id: int) -> Song | None:
        row = await self.repo.song(song_id)
        return None if row is None else (await self._songs_json([row]))[0]

    async def _cached_one(self, key: str, load: Callable[[], Awaitable[T | None]], missing: str) -> T:
        """One entry, cached under `key`; 404 (`missing`) when there is none."""
        value = await self.cache.get_or_load(key, load, TTL)
        if value is None:
            raise NotFound(missing)
        return value

    async def song(self, song_id: int) -> Song:
        """One song; 404 when there is none."""
        return await self._cached_one(f"song:{song_id}", lambda: self._load_song(song_id), "No such song")

    async def song_json_bytes(self, song_id: int) -> bytes:
        """The song as JSON bytes, straight from the cache (the hottest read of the API)."""
        raw = await self.cache.get_raw(f"song:{song_id}", lambda: self._load_song(song_id), TTL)
        if raw == MISSING:
            raise NotFound("No such song")
        return raw

    async def songs(
        self, filters: dict[str, Any], limit: int, offset: int, order: str = "newest"
    ) -> tuple[list[Song], int]:
        """A page of songs, filtered, with the total."""
        page = await self.song_list(filters, limit, offset, order)
        return page["items"], page["total"]

    async def song_list(self, filters: dict[str, Any], limit: int, offset: int = 0,
                        order: str = "newest", cursor: Cursor | None = None) -> Listing[Song]:
        """A page of songs, filtered, by offset or keyset cursor, with the total (exact or
        marked as an estimate) and the cursors of the neighbouring pages."""
        spec = _spec("songs", order, SONG_ORDERS[order], limit, offset, cursor)

        async def load() -> Listing[Song]:
            narrowed, matches = await self._text_candidates(filters)
            if narrowed is None:
                listed = Listed([], 0)
            else:
                listed = await self.repo.song_page(narrowed, order, spec)
            if matches is not None and narrowed is not None and listed.total > 0:
                # The index found more than it gave: as many of the rest pass the title test
                # as of those it gave.
                estimate = round(matches * listed.total / len(narrowed["ids"]))
                if estimate > listed.total:
                    listed.total, listed.estimated = estimate, True
            return _listing(listed, await self._songs_json(listed.rows), spec, "songs", order)

        if filters.get("q") and self.search is not None:
            # Not cached: the index follows a write a moment after its commit, which is when
            # the list generation moves on, so a page cached in between would hide the song.
            return await load()
        return await self._cached_list("songs", (order, *_spec_parts(spec),
                                                 *_filter_parts(filters)), load)

    async def _text_candidates(self, filters: dict[str, Any]
                               ) -> tuple[dict[str, Any] | None, int | None]:
        """A song list's text filter, narrowed by the search index when there is one: no B-tree
        finds a substring, and scanning a million titles takes half a second. The index's best
        TEXT_CANDIDATES songs for the words (with the list's other filters) become an `ids`
        filter, and the title test still applies to them, so its typo-tolerant matches and
        matches on the artist or album name drop out. Returns the filters to list with (None:
        nothing can match) and the index's count when it found more than it gave (the list's
        total is then estimated from it). Without an index, or with it down, the titles are scanned."""
        text = normalise_text(str(filters.get("q") or ""))
        if not text or self.search is None:
            return filters, None
        wanted = Filters(artist_id=filters.get("artist_id"), album_id=filters.get("album_id"),
                         genre=filters.get("genre"), year=filters.get("year"))
        try:
            [page] = await self.search.search([SearchQuery(text, "song", 0, wanted,
                                                           TEXT_CANDIDATES, 0)])
        except SearchUnavailable:
            log.info("search index unavailable: a song list's text filter scans the titles")
            return filters, None
        ids = list(dict.fromkeys(h.id for h in page.hits))
        if filters.get("ids"):
            allowed = set(filters["ids"])
            ids = [i for i in ids if i in allowed]
        if not ids:
            return None, None
        more = page.total if page.total > len(page.hits) else None
        return {**filters, "ids": ids}, more

    async def all_songs(self, after_id: int = 0, limit: int = 500) -> list[Song]:
        """Every song in id order, `limit` at a time after the song `after_id` (a listing
        without a query, as Subsonic clients page through the whole catalogue)."""
        return await self._songs_json(await self.repo.songs_by_id(after_id, limit))

    async def songs_at(self, offset: int, limit: int = 500) -> list[Song]:
        """Every song in id order, `limit` of them from position `offset` (Subsonic's search3
        with an empty query, which apps page through by offset to sync the whole catalogue).
        Where each page ended is remembered for the current list generation (a write starts a
        new one, as positions move), so the next page is read by key from there rather than by
        skipping `offset` rows; an offset no page ended at is found by counting, from the nearer
        end of the catalogue."""
        after = 0
        if offset > 0:
            key = await self.cache.list_key("songs", "id-at", offset)
            known = await self.cache.peek(key) if key else None
            if known is not None:
                after = int(known)
            else:
                after = await self.repo.song_id_at(offset - 1, await self.repo.total("songs"))
                if after < 0:
                    return []
                if key:  # the same page asked again (an app retrying) is not counted again
                    await self.cache.keep(key, str(after).encode(), LIST_TTL * 10)
        rows = await self.repo.songs_by_id(after, limit)
        if len(rows) == limit:
            key = await self.cache.list_key("songs", "id-at", offset + limit)
            if key:
                await self.cache.keep(key, str(rows[-1]["id"]).encode(), LIST_TTL * 10)
        return await self._songs_json(rows)

    async def artist_index(self) -> list[IndexArtist]:
        """Every artist sorted by name, with its picture's id and its album count (one index of
        all artists). Not cached: 20,000 artists would be encoded and decoded again on every
        miss, which costs more than the one query the server answers them with."""
        return [(a_id, name, image or None, albums)
                for a_id, name, image, albums, _ in await self.repo.artist_index()]

    async def _cached_list(self, group: str, parts: Sequence[Any],
                           load: Callable[[], Awaitable[Listing[T]]]) -> Listing[T]:
        """A page of a list, cached briefly under its group's generation (writes bump it)."""
        key = await self.cache.list_key(group, *parts)
        value: Listing[T] = await (self.cache.get_or_load(key, load, LIST_TTL) if key else load())
        return value

    async def artist(self, artist_id: int) -> ArtistDetail:
        """One artist with its album and song counts; 404 when there is none."""
        async def load() -> ArtistDetail | None:
            row = await self.repo.artist(artist_id)
            if row is None:
                return None
            albums, songs = (await self.repo.artist_counts([artist_id])).get(artist_id, (0, 0))
            return {**artist_json(row, self.links), "album_count": albums, "song_count": songs}

        return await self._cached_one(f"artist:{artist_id}", load, "No such artist")

    async def artists(self, q: str, limit: int, offset: int) -> tuple[list[Artist], int]:
        """A page of artists whose name matches `q`, with the total."""
        page = await self.artist_list(q, limit, offset)
        return page["items"], page["total"]

    async def with_counts(self, artists: list[Artist]) -> list[ArtistDetail]:
        """Artists of a list with their album and song counts (one read of the maintained
        figures for the lot)."""
        counts = await self.repo.artist_counts([a["id"] for a in artists])
        return [{**a, "album_count": counts.get(a["id"], (0, 0))[0],
                 "song_count": counts.get(a["id"], (0, 0))[1]} for a in artists]

    async def artist_list(self, q: str, limit: int, offset: int = 0,
                          cursor: Cursor | None = None) -> Listing[Artist]:
        """A page of artists by name (matching `q`), by offset or keyset cursor."""
        spec = _spec("artists", "name", ARTIST_ORDERS["name"], limit, offset, cursor)

        async def load() -> Listing[Artist]:
            listed = await self.repo.artist_page(q, spec)
            return _listing(listed, [artist_json(r, self.links) for r in listed.rows], spec,
                            "artists", "name")

        return await self._cached_list("artists", (q.lower(), *_spec_parts(spec)), load)

    async def album(self, album_id: int, with_songs: bool = True) -> Album:
        """One album, with its songs unless `with_songs` is false; 404 when there is none."""
        async def load() -> Album | None:
            value = await self.repo.album_with_songs(album_id, ALBUM_SONGS_MAX)
            if value is None:
                return None
            try:
                *fields, songs = orjson.loads(value)
                row = dict(zip(ALBUM_FIELDS, fields, strict=True))
                if len(songs or ()) != min(int(row["song_count"]), ALBUM_SONGS_MAX):
                    # Cut at group_concat_max_len between two songs: still valid JSON.
                    raise orjson.JSONDecodeError("songs missing", value, 0)
            except orjson.JSONDecodeError:  # longer than one value may be: read as rows
                stored, rows = await asyncio.gather(
                    self.repo.album(album_id), self.repo.album_songs(album_id, ALBUM_SONGS_MAX))
                if stored is None:
                    return None
                return {**album_json(stored, self.links),
                        "songs": [song_json_featured(r, self.links) for r in rows]}
            row["created_at"] = dt.datetime.fromisoformat(row["created_at"])
            return {**album_json(row, self.links),
                    "songs": [_album_song(values, self.links) for values in songs or ()]}

        value = await self._cached_one(f"album:{album_id}", load, "No such album")
        if not with_songs:
            value.pop("songs", None)
        return value

    async def albums_by_ids(self, ids: Sequence[int]) -> dict[int, Album]:
        """Albums (without their songs) by id, in one read; ids that are gone are left out."""
        rows = await self.repo.album_rows(list(ids)) if ids else []
        return {int(r["id"]): album_json(r, self.links) for r in rows}

    async def artists_by_ids(self, ids: Sequence[int]) -> dict[int, ArtistDetail]:
        """Artists with their album and song counts by id, in one read; gone ids left out."""
        rows = await self.repo.artist_rows(list(ids)) if ids else []
        return {a["id"]: a for a in await self.with_counts([artist_json(r, self.links) for r in rows])}

    async def albums(
        self, filters: dict[str, Any], limit: int, offset: int, order: str = "newest"
    ) -> tuple[list[Album], int]:
        """A page of albums, filtered, with the total."""
        page = await self.album_list(filters, limit, offset, order)
        return page["items"], page["total"]

    async def album_list(self, filters: dict[str, Any], limit: int, offset: int = 0,
                         order: str = "newest", cursor: Cursor | None = None) -> Listing[Album]:
        """A page of albums, filtered, by offset or keyset cursor (by name, newest, year or
        genre: every order and filter reads its page from an index)."""
        spec = _spec("albums", order, ALBUM_ORDERS[order], limit, offset, cursor)

        async def load() -> Listing[Album]:
            listed = await self.repo.album_page(filters, order, spec)
            return _listing(listed, [album_json(r, self.links) for r in listed.rows], spec,
                            "albums", order)

        return await self._cached_list("albums", (order, *_spec_parts(spec),
                                                  *_filter_parts(filters)), load)

    async def artist_albums(self, artist_id: int, limit: int, offset: int) -> tuple[list[Album], int]:
        """A page of an artist's albums, by year; 404 for an unknown artist."""
        await self.artist(artist_id)
        return await self.albums({"artist_id": artist_id}, limit, offset, "year")

    async def artist_top_songs(self, artist_id: int, limit: int = 10) -> list[Song]:
        """An artist's most played songs; 404 for an unknown artist."""
        await self.artist(artist_id)
        items, _ = await self.songs({"artist_id": artist_id}, limit, 0, "popular")
        return items

    # Subsonic's album lists and random picks --------------------------------------------
    async def albums_by_artist(self, limit: int, offset: int) -> list[Album]:
        """A page of albums by artist name, then title."""
        ids = await self.repo.album_ids_by_artist(limit, offset)
        found = await self.albums_by_ids(ids)
        return [found[i] for i in ids if i in found]

    async def albums_by_years(self, first: int, last: int, limit: int, offset: int
                              ) -> list[Album]:
        """A page of albums from year `first` to `last`; newest first when `first` > `last`."""
        ids = await self.repo.album_ids_by_years(first, last, limit, offset)
        found = await self.albums_by_ids(ids)
        return [found[i] for i in ids if i in found]

    async def genre_album_counts(self) -> dict[str, int]:
        """How many albums each genre has, by lower-case genre name (cached with the lists)."""
        key = await self.cache.list_key("albums", "genre-counts")
        return await (self.cache.get_or_load(key, self.repo.genre_album_counts, TTL) if key
                      else self.repo.genre_album_counts())

    async def artists_changed_at(self) -> int:
        """When the artist lists may last have changed, in ms since the epoch (Subsonic's
        `lastModified`): the first time it is asked for in a generation of the artist lists,
        which every catalogue write starts anew — never later than a change, so an app that
        compares it with its own copy's time reloads whenever it must."""
        async def load() -> int:
            return int(time.time() * 1000)

        key = await self.cache.list_key("artists", "changed-at")
        return int(await (self.cache.get_or_load(key, load, CHANGED_AT_TTL) if key else load()))

    async def artist_id_by_name(self, name: str) -> int | None:
        """The id of the artist of that name (any letter case), None when there is none."""
        return await self.repo.artist_id_by_name(name)

    async def random_albums(self, count: int) -> list[Album]:
        """Up to `count` albums picked at random."""
        ids = await self._random_ids("albums", count)
        found = await self.albums_by_ids(ids)
        return [found[i] for i in ids if i in found]

    async def random_songs(self, count: int, genre: str | None = None,
                           first_year: int | None = None, last_year: int | None = None
                           ) -> list[Song]:
        """Up to `count` songs picked at random, of a genre and a range of years when given.
        Without a filter each song is equally likely (random ids along the primary key). With
        one, a few random windows of the filter's own index are read and mixed: an ORDER BY
        RAND() would read every matching row, which at a million songs takes seconds."""
        if genre is None and first_year is None and last_year is None:
            ids = await self._random_ids("songs", count)
            found, _ = await self.songs({"ids": ids}, len(ids), 0) if ids else ([], 0)
            songs = {s["id"]: s for s in found}
            return [songs[i] for i in ids if i in songs]
        browse = await self.browse()
        buckets: list[tuple[dict[str, Any], int]]
        if first_year is not None or last_year is not None:
            lo, hi = first_year or 0, last_year or 9999
            lo, hi = min(lo, hi), max(lo, hi)
            extra = {"genre": genre} if genre else {}
            buckets = [({"year": y["year"], **extra}, y["songs"]) for y in browse["years"]
                       if lo <= y["year"] <= hi]
        else:
            assert genre is not None
            songs_in = sum(g["songs"] for g in browse["genres"] if g["genre"].lower() == genre.lower())
            buckets = [({"genre": genre}, songs_in)]
        if genre is not None and 1 < len(buckets) <= RANDOM_COUNTED_YEARS:
            # A year's figure counts every genre: each (genre, year) is counted on its own (a
            # capped count), or a window past its few songs would come back empty.
            buckets = [(f, (await self.repo.song_total(f))[0]) for f, _ in buckets]
        buckets = [(f, n) for f, n in buckets if n > 0]
        if sum(n for _, n in buckets) <= count:  # no more than asked for: every one of them
            every = [s for f, n in buckets for s in (await self.song_list(f, n, 0, "newest"))["items"]]
            random.shuffle(every)
            return every
        picked: dict[int, Song] = {}
        for _ in range(RANDOM_WINDOWS):
            if not buckets or len(picked) >= count:
                break
            filters, size = random.choices(buckets, weights=[n for _, n in buckets])[0]
            offset = random.randint(0, max(0, size - count))
            page = await self.song_list(filters, count, offset, "newest")
            for song in page["items"]:
                picked.setdefault(song["id"], song)
        chosen = list(picked.values())
        random.shuffle(chosen)
        return chosen[:count]

    async def _random_ids(self, table: str, count: int) -> list[int]:
        """Up to `count` distinct ids of `table` at random: random numbers between its lowest
        and highest id, kept where a row has that id (a few rounds, as deleted rows leave gaps),
        then, if the table is too sparse for that, a run of ids from a random start."""
        bounds = await self.repo.id_bounds(table)
        if bounds is None or count <= 0:
            return []
        lo, hi = bounds
        found: dict[int, None] = {}
        for _ in range(RANDOM_ROUNDS):
            need = count - len(found)
            if need <= 0:
                break
            tries = random.sample(range(lo, hi + 1), min(hi - lo + 1, need * 3))
            for i in await self.repo.existing_ids(table, tries):
                found.setdefault(i)
        need = count - len(found)
        if need > 0:
            start = random.randint(lo, hi)
            for i in (await self.repo.ids_from(table, start, need * 2)
                      + await self.repo.ids_from(table, lo, need * 2)):
                if len(found) < count:
                    found.setdefault(i)
        ids = list(found)[:count]
        random.shuffle(ids)
        return ids

    async def browse(self) -> Browse:
        """The genres and years of the catalogue, with their song counts."""
        async def load() -> Browse:
            genres = await self.repo.genres()
            years = await self.repo.years()
            return {
                "genres": [{"genre": r["genre"], "songs": int(r["songs"])} for r in genres],
                "years": [{"year": r["year"], "songs": int(r["songs"])} for r in years],
            }

        key = await self.cache.list_key("songs", "browse")
        return await (self.cache.get_or_load(key, load, 300) if key else load())

    async def counts(self) -> dict[str, int]:
        """The library totals (songs, albums, artists, bytes, duration_ms), as maintained."""
        return await self.repo.counts()

    async def repair_counts(self) -> dict[str, int]:
        """Recompute every maintained count and sum from the rows; returns how many rows of
        each figure changed. Lists and entries cached with the old figures are dropped."""
        async with self.db.transaction() as tx:
            fixed = await self.repo.repair_counts(tx)
        await self.cache.bump("songs", "albums", "artists")
        return fixed

    # writes ------------------------------------------------------------------------------
    async def after_write(self, *keys: str) -> None:
        """After a catalogue write committed (this service's own, an upload's, the command line's
        import): drop the entries named and every list (the commit already woke the relay)."""
        await self.cache.changed(keys, ("songs", "albums", "artists"))

    async def create_artist(self, body: dict[str, Any], actor: Actor) -> ArtistDetail:
        errors = v.Fields()
        name = v.clean_text(body.get("name"), "name", errors, min_len=1, max_len=255)
        bio = _opt_text(body, "bio", errors, 5000)
        errors.check()
        try:
            async with self.db.transaction() as tx:
                existing = await self.repo.artist_by_name(tx, name)
                if existing:
                    raise Conflict("That artist exists", details={"existing_id": existing["id"]})
                artist_id = await self.repo.insert_artist(tx, name, bio)
                await self._events(tx, actor, "artist", artist_id, "upserted", "artist.created",
                                   f"created artist {name}")
        except pymysql.err.IntegrityError as exc:
            raise Conflict("That artist exists") from exc
        await self.after_write(f"artist:{artist_id}")
        return await self.artist(artist_id)

    async def update_artist(self, artist_id: int, body: dict[str, Any], actor: Actor) -> ArtistDetail:
        await self.artist(artist_id)
        errors = v.Fields()
        changes: dict[str, Any] = {}
        if "name" in body:
            changes["name"] = v.clean_text(body["name"], "name", errors, min_len=1, max_len=255)
        if "bio" in body:
            changes["bio"] = _opt_text(body, "bio", errors, 5000)
        errors.check()
        try:
            async with self.db.transaction() as tx:
                await self.repo.update_artist(tx, artist_id, changes)
                await self._events(tx, actor, "artist", artist_id, "upserted", "artist.updated",
                                   f"updated artist {artist_id}", {"fields": sorted(changes)})
        except pymysql.err.IntegrityError as exc:
            raise Conflict("Another artist has that name") from exc
        await self.after_write(f"artist:{artist_id}", *await self._artist_dependents(artist_id))
        return await self.artist(artist_id)

    async def _artist_dependents(self, artist_id: int) -> list[str]:
        """Cache keys that embed the artist's name: its songs and albums."""
        songs, albums = await self.repo.artist_dependents(artist_id)
        return [f"song:{i}" for i in songs] + [f"album:{i}" for i in albums]

    async def delete_artist(self, artist_id: int, actor: Actor) -> None:
        artist = await self.artist(artist_id)
        async with self.db.transaction() as tx:
            songs, albums = await self.repo.artist_usage(tx, artist_id)
            if songs or albums:
                raise Conflict(
                    f"{artist['name']} still has {songs} song(s) and {albums} album(s)",
                    details={"songs": songs, "albums": albums},
                )
            # Songs that only feature the artist lose the credit (the link cascades away): their
            # documents and cached entries change too, as a rebuild would show.
            featuring = await self.repo.songs_featuring(tx, artist_id)
            await self.repo.delete_artist(tx, artist_id)
            await self._events(tx, actor, "artist", artist_id, "deleted", "artist.deleted",
                               f"deleted artist {artist['name']}")
            await events.emit_many(tx, [events.CatalogChanged("song", sid, "upserted")
                                        for sid in featuring])
        await self.after_write(f"artist:{artist_id}", *(f"song:{sid}" for sid in featuring))

    async def set_artist_image(self, artist_id: int, image_id: int, actor: Actor) -> ArtistDetail:
        await self.artist(artist_id)
        async with self.db.transaction() as tx:
            await self.repo.update_artist(tx, artist_id, {"image_id": image_id})
            await self._events(tx, actor, "artist", artist_id, "upserted", "artist.image_set",
                               f"new picture for artist {artist_id}")
        await self.after_write(f"artist:{artist_id}")
        return await self.artist(artist_id)

    def _album_fields(self, body: dict[str, Any], creating: bool) -> dict[str, Any]:
        errors = v.Fields()
        changes: dict[str, Any] = {}
        if creating or "title" in body:
            changes["title"] = v.clean_text(body.get("title"), "title", errors, min_len=1, max_len=255)
        if creating or "artist_id" in body:
            artist_id = _opt_int(body, "artist_id", errors, 1, 2**63 - 1)
            if artist_id is None and "artist_id" not in errors.errors:
                errors.add("artist_id", "is required")
            changes["artist_id"] = artist_id
        if "album_type" in body or creating:
            album_type = body.get("album_type", "album")
            if album_type not in ALBUM_TYPES:
                errors.add("album_type", "must be album, single, ep or compilation")
            changes["album_type"] = album_type
        if "year" in body or creating:
            changes["year"] = _opt_int(body, "year", errors, 1000, 9999)
        if "genre" in body or creating:
            changes["genre"] = _opt_text(body, "genre", errors, 100)
        errors.check()
        return changes

    async def create_album(self, body: dict[str, Any], actor: Actor) -> Album:
        fields = self._album_fields(body, creating=True)
        await self._require_artist(fields["artist_id"])
        try:
            async with self.db.transaction() as tx:
                album_id = await self.repo.insert_album(
                    tx, fields["title"], fields["artist_id"], fields["album_type"], fields["year"],
                    fields["genre"],
                )
                await self._events(tx, actor, "album", album_id, "upserted", "album.created",
                                   f"created album {fields['title']}")
        except pymysql.err.IntegrityError as exc:
            existing = await self.repo.album_id_by_title(fields["artist_id"], fields["title"])
            raise Conflict("That artist already has an album with this title",
                           details={"existing_id": existing} if existing else None) from exc
        await self.after_write(f"album:{album_id}", f"artist:{fields['artist_id']}")
        return await self.album(album_id)

    async def _require_artist(self, artist_id: int) -> None:
        if await self.repo.artist(artist_id) is None:
            raise InvalidInput(details={"fields": {"artist_id": "no such artist"}})

    async def update_album(self, album_id: int, body: dict[str, Any], actor: Actor) -> Album:
        before = await self.album(album_id)
        changes = self._album_fields(body, creating=False)
        if changes.get("artist_id"):
            await self._require_artist(changes["artist_id"])
        try:
            async with self.db.transaction() as tx:
                await self.repo.update_album(tx, album_id, changes)
                await self._events(tx, actor, "album", album_id, "upserted", "album.updated",
                                   f"updated album {album_id}", {"fields": sorted(changes)})
        except pymysql.err.IntegrityError as exc:
            raise Conflict("That artist already has an album with this title") from exc
        songs = [f"song:{s['id']}" for s in before.get("songs", [])]
        await self.after_write(f"album:{album_id}", f"artist:{before['artist_id']}",
                                f"artist:{changes.get('artist_id', before['artist_id'])}", *songs)
        return await self.album(album_id)

    async def delete_album(self, album_id: int, actor: Actor) -> None:
        """Delete an album; its songs stay in the catalogue without an album."""
        before = await self.album(album_id)
        async with self.db.transaction() as tx:
            await self.repo.delete_album(tx, album_id)
            await self._events(tx, actor, "album", album_id, "deleted", "album.deleted",
                               f"deleted album {before['title']}")
            for song in before.get("songs", []):
                await events.emit(tx, events.CatalogChanged("song", song["id"], "upserted"))
        songs = [f"song:{s['id']}" for s in before.get("songs", [])]
        await self.after_write(f"album:{album_id}", f"artist:{before['artist_id']}", *songs)

    async def set_album_cover(self, album_id: int, image_id: int, actor: Actor) -> Album:
        before = await self.album(album_id)
        async with self.db.transaction() as tx:
            await self.repo.update_album(tx, album_id, {"cover_image_id": image_id})
            await self._events(tx, actor, "album", album_id, "upserted", "album.cover_set",
                               f"new cover for album {album_id}")
        songs = [f"song:{s['id']}" for s in before.get("songs", [])]
        await self.after_write(f"album:{album_id}", *songs)
        return await self.album(album_id)

    def song_changes(self, body: dict[str, Any]) -> dict[str, Any]:
        """Validated song metadata from a body (fields a client may not set are not read)."""
        errors = v.Fields()
        changes: dict[str, Any] = {}
        if "title" in body:
            changes["title"] = v.clean_text(body["title"], "title", errors, min_len=1, max_len=500)
        for name, lo, hi in (("artist_id", 1, 2**63 - 1), ("album_id", 1, 2**63 - 1),
                             ("track_number", 0, 9999), ("disc_number", 1, 999),
                             ("year", 1000, 9999)):
            if name in body:
                changes[name] = _opt_int(body, name, errors, lo, hi)
        if "genre" in body:
            changes["genre"] = _opt_text(body, "genre", errors, 100)
        if "explicit" in body:
            changes["explicit"] = _bool(body, "explicit", errors)
        if changes.get("disc_number") is None:
            changes.pop("disc_number", None)
        errors.check()
        return changes

    async def update_song(self, song_id: int, body: dict[str, Any], actor: Actor) -> Song:
        before = await self.song(song_id)
        changes = self.song_changes(body)
        if "artist_id" in changes:
            if changes["artist_id"] is None:
                raise InvalidInput(details={"fields": {"artist_id": "is required"}})
            await self._require_artist(changes["artist_id"])
        if changes.get("album_id") and await self.repo.album(changes["album_id"]) is None:
            raise InvalidInput(details={"fields": {"album_id": "no such album"}})
        async with self.db.transaction() as tx:
            await self.repo.update_song(tx, song_id, changes)
            await self._events(tx, actor, "song", song_id, "upserted", "song.updated",
                               f"updated song {before['title']}", {"fields": sorted(changes)})
        await self.after_write(
            f"song:{song_id}", f"album:{before['album_id']}", f"album:{changes.get('album_id')}",
            f"artist:{before['artist_id']}", f"artist:{changes.get('artist_id')}",
        )
        return await self.song(song_id)

    async def delete_song(self, song_id: int, actor: Actor) -> Row:
        """Delete a song; returns its file row so the caller can remove a stored file."""
        async with self.db.transaction() as tx:
            playlists = await before_songs_deleted(tx, [song_id])  # their song counts drop
            row = await self.repo.delete_song(tx, song_id)
            if row is None:
                raise NotFound("No such song")
            await self._events(tx, actor, "song", song_id, "deleted", "song.deleted",
                               f"deleted song {row['title']}")
            await events.emit_many(tx, list(playlists))
        await self.after_write(f"song:{song_id}", f"album:{row['album_id']}",
                                f"artist:{row['artist_id']}")
        return row

    async def _events(
        self, tx: Tx, actor: Actor | None, entity: str, entity_id: int, change: str, action: str,
        summary: str, details: dict[str, Any] | None = None,
    ) -> None:
        """A catalogue write records its `catalog.*` event and, for an admin, its `admin.*` one."""
        await events.emit(tx, events.CatalogChanged(entity, entity_id, change))
        if actor is not None:
            await events.emit(tx, events.AdminAction(
                actor_id=actor.user_id, actor_username=actor.username, action=action,
                target_type=entity, target_id=entity_id, summary=summary, details=details or {},
            ))
