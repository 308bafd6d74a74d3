"""SQL for each listener's library: liked songs, saved albums, followed artists and playlists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.repos.db import Database, Row
from app.repos.playlists import VISIBLE

# kind -> table; the table names are fixed here, never taken from a request.
TABLES = {"songs": "liked_songs", "albums": "saved_albums", "artists": "followed_artists",
          "playlists": "followed_playlists"}


def _from(kind: str) -> tuple[str, str, tuple[str, ...]]:
    """FROM clause, extra condition and extra parameter names for a kind: followed playlists the
    viewer can no longer see (made private since) are left out of every answer."""
    table = TABLES[kind]
    if kind == "playlists":
        return f"{table} f JOIN playlists p ON p.id = f.item_id", f" AND {VISIBLE}", ("user", "user")
    return f"{table} f", "", ()


class LibraryRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(self, kind: str, user_id: int, limit: int, offset: int) -> tuple[list[Row], int]:
        source, extra, names = _from(kind)
        params = (user_id, *(user_id for _ in names))
        rows = await self.db.fetchall(
            f"SELECT f.item_id, f.added_at FROM {source} WHERE f.user_id = %s{extra}"
            " ORDER BY f.added_at DESC, f.item_id DESC LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        total = await self.db.fetchval(
            f"SELECT COUNT(*) FROM {source} WHERE f.user_id = %s{extra}", params
        )
        return rows, int(total)

    async def add(self, kind: str, user_id: int, item_id: int) -> None:
        await self.db.execute(
            f"INSERT INTO {TABLES[kind]} (user_id, item_id) VALUES (%s, %s)"
            " ON DUPLICATE KEY UPDATE user_id = user_id",  # keeps the first added_at
            (user_id, item_id), idempotent=True,
        )

    async def remove(self, kind: str, user_id: int, item_id: int) -> None:
        await self.db.execute(
            f"DELETE FROM {TABLES[kind]} WHERE user_id = %s AND item_id = %s",
            (user_id, item_id), idempotent=True,
        )

    async def contains(self, kind: str, user_id: int, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        source, extra, names = _from(kind)
        marks = ", ".join(["%s"] * len(ids))
        rows = await self.db.fetchall(
            f"SELECT f.item_id FROM {source} WHERE f.user_id = %s{extra} AND f.item_id IN ({marks})",
            (user_id, *(user_id for _ in names), *ids),
        )
        return {int(r["item_id"]) for r in rows}

    async def added_at_each(self, user_id: int, wanted: Mapping[str, Sequence[int]]) -> list[Row]:
        """`added_at` for several kinds in one statement: rows of (kind, item_id, added_at)."""
        parts, params = [], []
        for kind, ids in wanted.items():
            if not ids:
                continue
            source, extra, names = _from(kind)
            parts.append(f"SELECT '{kind}' AS kind, f.item_id, f.added_at FROM {source}"
                         f" WHERE f.user_id = %s{extra} AND f.item_id IN"
                         f" ({', '.join(['%s'] * len(ids))})")
            params += [user_id, *(user_id for _ in names), *ids]
        if not parts:
            return []
        return await self.db.fetchall(" UNION ALL ".join(parts), tuple(params))

    async def album_stars(self, user_id: int, album_id: int) -> list[Row]:
        """The user's save of an album and likes of its songs, (kind, item_id, added_at): read
        from the album's songs (its index) to the likes (their primary key), however many songs
        the user likes elsewhere."""
        return await self.db.fetchall(
            "SELECT 'albums' AS kind, f.item_id, f.added_at FROM saved_albums f"
            " WHERE f.user_id = %s AND f.item_id = %s"
            " UNION ALL SELECT 'songs', f.item_id, f.added_at FROM songs s"
            " STRAIGHT_JOIN liked_songs f ON f.user_id = %s AND f.item_id = s.id"
            " WHERE s.album_id = %s", (user_id, album_id, user_id, album_id))

    async def counts(self, user_id: int) -> dict[str, int]:
        out = {}
        for kind in TABLES:
            source, extra, names = _from(kind)
            out[kind] = int(await self.db.fetchval(
                f"SELECT COUNT(*) FROM {source} WHERE f.user_id = %s{extra}",
                (user_id, *(user_id for _ in names)),
            ))
        return out
