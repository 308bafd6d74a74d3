"""SQL for playlists: the playlist rows, their ordered entries, collaborators and share links.

Entries are ordered by a sparse `sort_key` (unique per playlist); an entry's position is its rank
in that order, so positions are dense and unique by construction. Inserting or moving entries
gives them keys between their new neighbours' — only those rows are written, whatever the
playlist's length — and renumbers the whole playlist only when a gap runs out. Every write runs
with the playlist row locked (`lock`), so concurrent writers to one playlist take turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from app.repos.catalog import like_pattern
from app.repos.db import Database, Row, Tx

# Cover: the playlist's own picture, else the cover of its first song (or that song's album).
PLAYLIST_COLUMNS = (
    "p.id, p.owner_id, u.username AS owner_username, u.display_name AS owner_display_name,"
    " p.name, p.description, p.is_public, p.is_collaborative, p.created_at, p.updated_at,"
    " p.cover_image_id AS own_cover_id,"
    " (SELECT COUNT(*) FROM playlist_songs ps WHERE ps.playlist_id = p.id) AS song_count,"
    " COALESCE(p.cover_image_id, (SELECT COALESCE(s.cover_image_id, al.cover_image_id)"
    "   FROM songs s LEFT JOIN albums al ON al.id = s.album_id"
    "   WHERE s.id = (SELECT ps.song_id FROM playlist_songs ps WHERE ps.playlist_id = p.id"
    "   ORDER BY ps.sort_key LIMIT 1))) AS cover_image_id"
)
PLAYLIST_FROM = " FROM playlists p JOIN users u ON u.id = p.owner_id"
PLAYLIST_SELECT = f"SELECT {PLAYLIST_COLUMNS}{PLAYLIST_FROM}"
# A playlist with its share link (sql/0011), live links only: one past its expiry is as revoked.
SHARE_SELECT = (
    f"SELECT {PLAYLIST_COLUMNS}, sh.token_box, sh.description AS share_description,"
    " sh.created_at AS shared_at, sh.expires_at, sh.visit_count, sh.last_visited_at"
    f"{PLAYLIST_FROM} JOIN playlist_shares sh ON sh.playlist_id = p.id"
)
LIVE = "(sh.expires_at IS NULL OR sh.expires_at > CURRENT_TIMESTAMP(6))"
GAP = 1 << 20  # between keys after a renumbering: room for ~20 halvings at one spot
PARK = 1 << 62  # above any key in use (10,000 entries x GAP is ~2^34)
# Who may see a playlist: everyone when public, else its owner and its collaborators.
VISIBLE = (
    "(p.is_public = 1 OR p.owner_id = %s OR EXISTS (SELECT 1 FROM playlist_collaborators c"
    " WHERE c.playlist_id = p.id AND c.user_id = %s))"
)


class PlaylistRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # playlists
    async def get(self, playlist_id: int) -> Row | None:
        return await self.db.fetchone(f"{PLAYLIST_SELECT} WHERE p.id = %s", (playlist_id,))

    async def many(self, ids: Sequence[int]) -> list[Row]:
        if not ids:
            return []
        marks = ", ".join(["%s"] * len(ids))
        return await self.db.fetchall(f"{PLAYLIST_SELECT} WHERE p.id IN ({marks})", tuple(ids))

    async def existing_songs(self, tx: Tx, song_ids: Sequence[int]) -> set[int]:
        marks = ", ".join(["%s"] * len(song_ids))
        rows = await tx.fetchall(f"SELECT id FROM songs WHERE id IN ({marks})", tuple(song_ids))
        return {int(r["id"]) for r in rows}

    async def duration_ms(self, playlist_id: int) -> int:
        value = await self.db.fetchval(
            "SELECT COALESCE(SUM(s.duration_ms), 0) FROM playlist_songs ps"
            " JOIN songs s ON s.id = ps.song_id WHERE ps.playlist_id = %s", (playlist_id,)
        )
        return int(value or 0)

    async def lock(self, tx: Tx, playlist_id: int) -> Row | None:
        """The playlist row, locked until the transaction ends (writers to it take turns)."""
        return await tx.fetchone(
            "SELECT id, owner_id, name, is_public, is_collaborative FROM playlists"
            " WHERE id = %s FOR UPDATE", (playlist_id,)
        )

    async def insert(self, tx: Tx, owner_id: int, fields: dict[str, Any]) -> int:
        return await tx.execute(
            "INSERT INTO playlists (owner_id, name, description, is_public, is_collaborative)"
            " VALUES (%s, %s, %s, %s, %s)",
            (owner_id, fields["name"], fields.get("description") or "",
             int(bool(fields.get("is_public"))), int(bool(fields.get("is_collaborative")))),
        )

    async def update(self, tx: Tx, playlist_id: int, changes: dict[str, Any]) -> None:
        allowed = ("name", "description", "is_public", "is_collaborative", "cover_image_id")
        sets = [f"{k} = %s" for k in allowed if k in changes]
        params = [changes[k] for k in allowed if k in changes]
        await tx.execute(
            f"UPDATE playlists SET {', '.join([*sets, 'updated_at = CURRENT_TIMESTAMP(6)'])}"
            " WHERE id = %s", (*params, playlist_id)
        )

    async def touch(self, tx: Tx, playlist_id: int) -> None:
        await tx.execute(
            "UPDATE playlists SET updated_at = CURRENT_TIMESTAMP(6) WHERE id = %s", (playlist_id,)
        )

    async def delete(self, tx: Tx, playlist_id: int) -> int:
        return await tx.rowcount("DELETE FROM playlists WHERE id = %s", (playlist_id,))

    # lists
    async def _page(self, where: str, params: Sequence[Any], order: str, limit: int, offset: int,
                    by_owner_name: bool = False) -> tuple[list[Row], int]:
        """A page of playlists: its ids first, from playlists alone in the order's index (the
        owners are joined only when the filter names them), then those rows. Left to itself,
        MariaDB starts from the smaller users table and sorts every playlist for one page."""
        source = "playlists p JOIN users u ON u.id = p.owner_id" if by_owner_name else "playlists p"
        rows = await self.db.fetchall(
            f"{PLAYLIST_SELECT} JOIN (SELECT p.id AS page_id FROM {source} WHERE {where}"
            f" ORDER BY {order} LIMIT %s OFFSET %s) page ON page.page_id = p.id ORDER BY {order}",
            (*params, limit, offset),
        )
        total = await self.db.fetchval(f"SELECT COUNT(*) FROM {source} WHERE {where}", params)
        return rows, int(total)

    async def of_user(self, user_id: int, limit: int, offset: int) -> tuple[list[Row], int]:
        """The user's own playlists and those they collaborate on. Their ids come from the two
        indexes that hold them (ix_playlists_owner, ix_collab_user): an `owner_id = ? OR EXISTS`
        condition would read every playlist."""
        mine = ("SELECT id FROM playlists WHERE owner_id = %s UNION"
                " SELECT playlist_id FROM playlist_collaborators WHERE user_id = %s")
        rows = await self.db.fetchall(
            f"{PLAYLIST_SELECT} JOIN ({mine}) mine ON mine.id = p.id"
            " ORDER BY p.updated_at DESC, p.id DESC LIMIT %s OFFSET %s",
            (user_id, user_id, limit, offset),
        )
        total = await self.db.fetchval(f"SELECT COUNT(*) FROM ({mine}) mine", (user_id, user_id))
        return rows, int(total)

    async def public(self, q: str, limit: int, offset: int, owner_id: int | None = None
                     ) -> tuple[list[Row], int]:
        where: list[str] = ["p.is_public = 1"]
        params: list[Any] = []
        if owner_id is not None:
            where.append("p.owner_id = %s")
            params.append(owner_id)
        if q:
            where.append("LOWER(p.name) LIKE %s")
            params.append(like_pattern(q))
        return await self._page(" AND ".join(where), params, "p.updated_at DESC, p.id DESC",
                                limit, offset)

    async def every(self, q: str, limit: int, offset: int) -> tuple[list[Row], int]:
        """Every playlist, for moderation: by name or owner's username."""
        where, params = "1 = 1", []
        if q:
            where = "(LOWER(p.name) LIKE %s OR u.username_canon LIKE %s)"
            params = [like_pattern(q), like_pattern(q)]
        return await self._page(where, params, "p.created_at DESC, p.id DESC", limit, offset,
                                by_owner_name=bool(q))

    async def count_public_of(self, owner_id: int) -> int:
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM playlists WHERE owner_id = %s AND is_public = 1", (owner_id,)
        ))

    async def followers_of_owner(self, owner_id: int) -> int:
        """Followers of the owner's public playlists."""
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM followed_playlists f JOIN playlists p ON p.id = f.item_id"
            " WHERE p.owner_id = %s AND p.is_public = 1", (owner_id,)
        ))

    async def visible_ids(self, viewer_id: int, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        marks = ", ".join(["%s"] * len(ids))
        rows = await self.db.fetchall(
            f"SELECT p.id FROM playlists p WHERE p.id IN ({marks}) AND {VISIBLE}",
            (*ids, viewer_id, viewer_id),
        )
        return {int(r["id"]) for r in rows}

    # entries
    async def entries(self, playlist_id: int, limit: int, offset: int) -> list[Row]:
        return await self.db.fetchall(
            "SELECT ps.song_id, ps.added_at, ps.added_by, u.username AS added_by_username,"
            " u.display_name AS added_by_display_name FROM playlist_songs ps"
            " LEFT JOIN users u ON u.id = ps.added_by WHERE ps.playlist_id = %s"
            " ORDER BY ps.sort_key LIMIT %s OFFSET %s",
            (playlist_id, limit, offset),
        )

    async def count(self, tx: Tx, playlist_id: int) -> int:
        return int(await tx.fetchval(
            "SELECT COUNT(*) FROM playlist_songs WHERE playlist_id = %s", (playlist_id,)
        ))

    async def _at(self, tx: Tx, playlist_id: int, offset: int, limit: int) -> list[Row]:
        """Entries (id, sort_key) from rank `offset`, in order."""
        return await tx.fetchall(
            "SELECT id, sort_key FROM playlist_songs WHERE playlist_id = %s"
            " ORDER BY sort_key LIMIT %s OFFSET %s", (playlist_id, limit, offset),
        )

    async def renumber(self, tx: Tx, playlist_id: int) -> None:
        """Spread the keys out again (GAP apart), keeping the order: every key is first parked
        above any key in use, then renumbered from the bottom, so the unique key never sees two
        rows at one key mid-statement."""
        await tx.execute(
            "UPDATE playlist_songs SET sort_key = sort_key + %s WHERE playlist_id = %s"
            " ORDER BY sort_key DESC", (PARK, playlist_id),
        )
        await tx.execute("SET @sort_key := 0")
        await tx.execute(
            "UPDATE playlist_songs SET sort_key = (@sort_key := @sort_key + %s)"
            " WHERE playlist_id = %s ORDER BY sort_key", (GAP, playlist_id),
        )

    async def _room(self, tx: Tx, playlist_id: int, before: int, count: int, need: int
                    ) -> tuple[int, int]:
        """Keys (lo, hi) of the entries around the slot before rank `before`, with at least
        `need` free keys between them (renumbering once when the gap is too small)."""
        for _ in range(2):
            rows = await self._at(tx, playlist_id, max(before - 1, 0), 2 if before else 1)
            keys = [int(r["sort_key"]) for r in rows]
            lo = keys[0] if before > 0 else 0
            last = keys[-1] if keys and before > 0 else 0
            hi = last + GAP * (need + 1) if before >= count else keys[-1]  # appending: past the end
            if hi - lo - 1 >= need:
                return lo, hi
            await self.renumber(tx, playlist_id)
        raise AssertionError("no room after renumbering")

    @staticmethod
    def _spread(lo: int, hi: int, n: int) -> list[int]:
        return [lo + (hi - lo) * (i + 1) // (n + 1) for i in range(n)]

    async def insert_entries(self, tx: Tx, playlist_id: int, position: int, count: int,
                             song_ids: Sequence[int], user_id: int) -> None:
        """Insert `song_ids` before rank `position` (== `count` appends)."""
        lo, hi = await self._room(tx, playlist_id, position, count, len(song_ids))
        keys = self._spread(lo, hi, len(song_ids))
        values = ", ".join(["(%s, %s, %s, %s, CURRENT_TIMESTAMP(6))"] * len(song_ids))
        params: list[Any] = []
        for key, song_id in zip(keys, song_ids, strict=True):
            params += [playlist_id, key, song_id, user_id]
        await tx.execute(
            "INSERT INTO playlist_songs (playlist_id, sort_key, song_id, added_by, added_at)"
            f" VALUES {values}", params,
        )

    async def remove_songs(self, tx: Tx, playlist_id: int, song_ids: Sequence[int]) -> int:
        marks = ", ".join(["%s"] * len(song_ids))
        return await tx.rowcount(
            f"DELETE FROM playlist_songs WHERE playlist_id = %s AND song_id IN ({marks})",
            (playlist_id, *song_ids),
        )

    async def clear(self, tx: Tx, playlist_id: int) -> int:
        """Remove every entry (a playlist whose songs are replaced)."""
        return await tx.rowcount("DELETE FROM playlist_songs WHERE playlist_id = %s", (playlist_id,))

    async def remove_positions(self, tx: Tx, playlist_id: int, positions: Sequence[int]) -> int:
        marks = ", ".join(["%s"] * len(positions))
        rows = await tx.fetchall(
            "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY sort_key) - 1 AS pos"
            " FROM playlist_songs WHERE playlist_id = %s) ranked"
            f" WHERE pos IN ({marks})", (playlist_id, *positions),
        )
        if not rows:
            return 0
        ids = [r["id"] for r in rows]
        return await tx.rowcount(
            f"DELETE FROM playlist_songs WHERE id IN ({', '.join(['%s'] * len(ids))})", ids
        )

    async def move(self, tx: Tx, playlist_id: int, start: int, before: int, length: int,
                   count: int) -> None:
        """Move the block of ranks [start, start+length) to just before the entry at rank
        `before` (Spotify's semantics; the caller has ruled out no-op moves). The entries at
        `before - 1` and `before` are outside the block, so the block takes keys between them."""
        lo, hi = await self._room(tx, playlist_id, before, count, length)
        block = await self._at(tx, playlist_id, start, length)
        keys = self._spread(lo, hi, len(block))
        cases = " ".join(["WHEN %s THEN %s"] * len(block))
        params: list[Any] = []
        for row, key in zip(block, keys, strict=True):
            params += [row["id"], key]
        ids = [row["id"] for row in block]
        await tx.execute(
            f"UPDATE playlist_songs SET sort_key = CASE id {cases} END"
            f" WHERE id IN ({', '.join(['%s'] * len(ids))})", (*params, *ids),
        )

    # collaborators
    async def collaborators(self, playlist_id: int) -> list[Row]:
        return await self.db.fetchall(
            "SELECT u.id, u.username, u.display_name, c.added_at FROM playlist_collaborators c"
            " JOIN users u ON u.id = c.user_id WHERE c.playlist_id = %s ORDER BY c.added_at, u.id",
            (playlist_id,),
        )

    async def is_collaborator(self, playlist_id: int, user_id: int, tx: Tx | None = None) -> bool:
        sql = "SELECT 1 FROM playlist_collaborators WHERE playlist_id = %s AND user_id = %s"
        runner = tx if tx is not None else self.db
        return bool(await runner.fetchval(sql, (playlist_id, user_id)))

    async def add_collaborator(self, tx: Tx, playlist_id: int, user_id: int) -> None:
        await tx.execute(
            "INSERT INTO playlist_collaborators (playlist_id, user_id) VALUES (%s, %s)"
            " ON DUPLICATE KEY UPDATE user_id = user_id",
            (playlist_id, user_id),
        )

    async def remove_collaborator(self, tx: Tx, playlist_id: int, user_id: int) -> int:
        return await tx.rowcount(
            "DELETE FROM playlist_collaborators WHERE playlist_id = %s AND user_id = %s",
            (playlist_id, user_id),
        )

    # share links (sql/0011): found by a hash of the token; the token itself kept encrypted
    async def set_share(self, tx: Tx, playlist_id: int, token_hash: str, token_box: str,
                        description: str, expires_at: datetime | None) -> None:
        """The playlist's one link, replacing any earlier one (a new link starts uncounted)."""
        await tx.execute(
            "INSERT INTO playlist_shares (playlist_id, token_hash, token_box, description,"
            " expires_at) VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
            " token_hash = VALUES(token_hash), token_box = VALUES(token_box),"
            " description = VALUES(description), expires_at = VALUES(expires_at),"
            " created_at = CURRENT_TIMESTAMP(6), visit_count = 0, last_visited_at = NULL",
            (playlist_id, token_hash, token_box, description, expires_at),
        )

    async def remove_share(self, tx: Tx, playlist_id: int) -> int:
        return await tx.rowcount("DELETE FROM playlist_shares WHERE playlist_id = %s", (playlist_id,))

    async def lock_share(self, tx: Tx, playlist_id: int) -> bool:
        """Lock the playlist's live link until the transaction ends; False when it has none."""
        return bool(await tx.fetchval(
            f"SELECT 1 FROM playlist_shares sh WHERE sh.playlist_id = %s AND {LIVE} FOR UPDATE",
            (playlist_id,),
        ))

    async def update_share(self, tx: Tx, playlist_id: int, changes: dict[str, Any]) -> None:
        allowed = ("description", "expires_at")
        sets = [f"{k} = %s" for k in allowed if k in changes]
        if sets:
            await tx.execute(f"UPDATE playlist_shares SET {', '.join(sets)} WHERE playlist_id = %s",
                             (*[changes[k] for k in allowed if k in changes], playlist_id))

    async def visit(self, token_hash: str) -> bool:
        """Count a visit of a live link in one statement (no playlist row, lock or event: a
        visit changes nothing a cache holds); False when no live link has this hash."""
        return bool(await self.db.rowcount(
            "UPDATE playlist_shares sh SET sh.visit_count = sh.visit_count + 1,"
            f" sh.last_visited_at = CURRENT_TIMESTAMP(6) WHERE sh.token_hash = %s AND {LIVE}",
            (token_hash,),
        ))

    async def by_share(self, token_hash: str) -> Row | None:
        return await self.db.fetchone(f"{SHARE_SELECT} WHERE sh.token_hash = %s AND {LIVE}",
                                      (token_hash,))

    async def share_of(self, playlist_id: int) -> Row | None:
        return await self.db.fetchone(f"{SHARE_SELECT} WHERE p.id = %s AND {LIVE}", (playlist_id,))

    async def shares_of(self, owner_id: int, limit: int) -> list[Row]:
        """The owner's live links whose token can be shown (made since sql/0011), newest first."""
        return await self.db.fetchall(
            f"{SHARE_SELECT} WHERE p.owner_id = %s AND sh.token_box IS NOT NULL AND {LIVE}"
            " ORDER BY sh.created_at DESC, p.id DESC LIMIT %s", (owner_id, limit),
        )

    async def has_share(self, playlist_id: int) -> bool:
        return bool(await self.db.fetchval(
            f"SELECT 1 FROM playlist_shares sh WHERE sh.playlist_id = %s AND {LIVE}", (playlist_id,)
        ))
