"""SQL for search: the rows search documents are made of, and hydration of ranked ids.

Document queries take a fixed WHERE clause chosen in this module (`BY_IDS`, `AFTER_ID`, ...)
and parameters; nothing user-typed is ever formatted into them. The repository runs on the
`Database` or on a `Tx`: the `search_index` consumer reads through the transaction that records
the event as processed, so it never holds one pooled connection while asking for a second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from app.repos.catalog import ALBUM_SELECT, ARTIST_SELECT, SONG_FEATURED_SELECT
from app.repos.db import Executor, Row
from app.repos.playlists import PLAYLIST_SELECT, VISIBLE

# STRAIGHT_JOIN: the entity's own table drives every document query, read in primary-key order.
# Left to itself, MariaDB starts a keyset batch (`s.id > ? ORDER BY s.id LIMIT 2000`) from the
# small artists table and sorts every later song to return 2000 of them (3 s a batch at
# 1,000,000 songs); from songs it reads just the 2000 rows, each joined by primary key.
SONG_DOC = (
    "SELECT STRAIGHT_JOIN s.id, s.title, s.artist_id, ar.name AS artist_name, s.album_id,"
    " al.title AS album_title, s.genre, s.year FROM songs s JOIN artists ar ON ar.id = s.artist_id"
    " LEFT JOIN albums al ON al.id = s.album_id"
)
ALBUM_DOC = (
    "SELECT STRAIGHT_JOIN al.id, al.title, al.artist_id, ar.name AS artist_name, al.genre, al.year"
    " FROM albums al JOIN artists ar ON ar.id = al.artist_id"
)
ARTIST_DOC = "SELECT ar.id, ar.name FROM artists ar"
PLAYLIST_DOC = (
    "SELECT STRAIGHT_JOIN p.id, p.name, p.description, p.owner_id, u.username AS owner_username, p.is_public,"
    " (SELECT COUNT(*) FROM playlist_songs ps WHERE ps.playlist_id = p.id) AS song_count,"
    " (SELECT GROUP_CONCAT(c.user_id ORDER BY c.user_id) FROM playlist_collaborators c"
    "   WHERE c.playlist_id = p.id) AS collaborator_ids"
    " FROM playlists p JOIN users u ON u.id = p.owner_id"
)
DOC_SELECT = {"song": (SONG_DOC, "s"), "album": (ALBUM_DOC, "al"), "artist": (ARTIST_DOC, "ar"),
              "playlist": (PLAYLIST_DOC, "p")}
TABLES = {"song": "songs", "album": "albums", "artist": "artists", "playlist": "playlists"}


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


class SearchRepo:
    def __init__(self, db: Executor) -> None:
        self.db = db

    async def doc_rows_by_ids(self, entity: str, ids: Sequence[int]) -> list[Row]:
        if not ids:
            return []
        select, alias = DOC_SELECT[entity]
        return await self.db.fetchall(
            f"{select} WHERE {alias}.id IN ({_marks(ids)}) ORDER BY {alias}.id", tuple(ids))

    async def doc_rows_after(self, entity: str, after_id: int, limit: int) -> list[Row]:
        """A chunk of rows in id order (keyset paging for rebuilds)."""
        select, alias = DOC_SELECT[entity]
        return await self.db.fetchall(
            f"{select} WHERE {alias}.id > %s ORDER BY {alias}.id LIMIT %s", (after_id, limit))

    async def featured_names(self, song_ids: Sequence[int]) -> dict[int, list[str]]:
        if not song_ids:
            return {}
        rows = await self.db.fetchall(
            f"SELECT sa.song_id, ar.name FROM song_artists sa JOIN artists ar ON ar.id = sa.artist_id"
            f" WHERE sa.song_id IN ({_marks(song_ids)}) ORDER BY sa.song_id, sa.position, ar.id",
            tuple(song_ids))
        out: dict[int, list[str]] = {}
        for r in rows:
            out.setdefault(int(r["song_id"]), []).append(r["name"])
        return out

    async def count(self, entity: str) -> int:
        return int(await self.db.fetchval(f"SELECT COUNT(*) FROM {TABLES[entity]}"))

    async def dependents(self, entity: str, ids: Sequence[int]) -> dict[str, list[int]]:
        """Documents that embed an artist's or album's name: its songs (and an artist's albums)."""
        if not ids or entity not in ("artist", "album"):
            return {}
        marks, params = _marks(ids), tuple(ids)
        if entity == "album":
            rows = await self.db.fetchall(f"SELECT id FROM songs WHERE album_id IN ({marks})", params)
            return {"song": [int(r["id"]) for r in rows]}
        songs = await self.db.fetchall(
            f"SELECT id FROM songs WHERE artist_id IN ({marks}) UNION"
            f" SELECT song_id FROM song_artists WHERE artist_id IN ({marks})", params + params)
        albums = await self.db.fetchall(f"SELECT id FROM albums WHERE artist_id IN ({marks})", params)
        return {"song": [int(r["id"]) for r in songs], "album": [int(r["id"]) for r in albums]}

    async def playlists_with_songs(self, song_ids: Sequence[int]) -> list[int]:
        """Playlists holding any of these songs (their documents count the songs), read in the
        deleting transaction: the songs are locked first, so a playlist adding one of them
        meanwhile waits for the delete (and then finds the song gone) instead of slipping in
        between this read and the cascade."""
        if not song_ids:
            return []
        await self.db.fetchall(
            f"SELECT id FROM songs WHERE id IN ({_marks(song_ids)}) ORDER BY id FOR UPDATE",
            tuple(song_ids))
        rows = await self.db.fetchall(
            f"SELECT DISTINCT playlist_id FROM playlist_songs WHERE song_id IN ({_marks(song_ids)})"
            " ORDER BY playlist_id LOCK IN SHARE MODE", tuple(song_ids))
        return [int(r["playlist_id"]) for r in rows]

    async def playlists_of_user(self, user_id: int) -> tuple[list[int], list[int]]:
        """The playlists a user owns, and those they collaborate on (their documents name them)."""
        owned = await self.db.fetchall(
            "SELECT id FROM playlists WHERE owner_id = %s ORDER BY id", (user_id,))
        shared = await self.db.fetchall(
            "SELECT playlist_id FROM playlist_collaborators WHERE user_id = %s"
            " ORDER BY playlist_id", (user_id,))
        return [int(r["id"]) for r in owned], [int(r["playlist_id"]) for r in shared]

    async def now(self) -> dt.datetime:
        return await self.db.fetchval("SELECT UTC_TIMESTAMP(6)")

    async def catalog_event_ids_since(self, since: dt.datetime) -> set[str]:
        """The ids of the `catalog.*` events recorded since `since` and committed by now."""
        rows = await self.db.fetchall(
            "SELECT event_id FROM outbox WHERE created_at >= %s AND type LIKE 'catalog.%%'",
            (since,))
        return {str(r["event_id"]) for r in rows}

    async def catalog_events_since(self, since: dt.datetime) -> list[Row]:
        """The `catalog.*` events recorded since `since` (the rebuild's catch-up): event_id and
        payload."""
        return await self.db.fetchall(
            "SELECT event_id, payload FROM outbox WHERE created_at >= %s AND type LIKE 'catalog.%%'"
            " ORDER BY id", (since,))

    # hydration: one query per type, the caller restores rank order
    async def songs(self, ids: Sequence[int]) -> list[Row]:
        """Songs with their featured artists (`featured_json`), in one statement."""
        if not ids:
            return []
        return await self.db.fetchall(f"{SONG_FEATURED_SELECT} WHERE s.id IN ({_marks(ids)})",
                                      tuple(ids))

    async def albums(self, ids: Sequence[int]) -> list[Row]:
        if not ids:
            return []
        return await self.db.fetchall(f"{ALBUM_SELECT} WHERE al.id IN ({_marks(ids)})", tuple(ids))

    async def artists(self, ids: Sequence[int]) -> list[Row]:
        if not ids:
            return []
        return await self.db.fetchall(f"{ARTIST_SELECT} WHERE ar.id IN ({_marks(ids)})", tuple(ids))

    async def playlists(self, ids: Sequence[int], viewer_id: int) -> list[Row]:
        """Playlists by id, visible to the viewer: the rule is checked again here, in SQL."""
        if not ids:
            return []
        return await self.db.fetchall(
            f"{PLAYLIST_SELECT} WHERE p.id IN ({_marks(ids)}) AND {VISIBLE}",
            (*ids, viewer_id, viewer_id))
