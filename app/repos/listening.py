"""SQL for plays: the history, personal tops and stats, global charts."""

from __future__ import annotations

import datetime as dt

from app.repos.db import Database, Row, Tx

# The user's history starts after they last cleared it; the global counts keep every play.
VISIBLE = (
    "p.user_id = %s AND p.played_at >"
    " COALESCE((SELECT history_cleared_at FROM users WHERE id = %s), '1000-01-01')"
)


class ListeningRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, tx: Tx, user_id: int, song_id: int, play_id: str, played_ms: int,
                     played_at: dt.datetime) -> bool:
        """Append a play and count it; a later report of the same listen (this user's play_id)
        only raises its listening time to the longest reported, and is never counted again.
        False when the play was already counted (or the song is gone). The song row is locked
        first: the plays insert's foreign-key check would otherwise take a shared lock that
        concurrent counters then deadlock upgrading; it also puts the reports of one listen in
        a row."""
        song = await tx.fetchone("SELECT id, artist_id FROM songs WHERE id = %s FOR UPDATE",
                                 (song_id,))
        if song is None:
            return False
        # Not INSERT IGNORE: it turns the duplicate into a MySQL warning, and warnings are errors
        # in the tests. ON DUPLICATE KEY reports 1 row for an insert, 2 for a raised time and 0
        # for a duplicate that changes nothing. A play_id reused for another song keeps its play.
        affected = await tx.rowcount(
            "INSERT INTO plays (user_id, song_id, play_id, played_ms, played_at, artist_id)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE played_ms ="
            " IF(song_id = VALUES(song_id), GREATEST(played_ms, VALUES(played_ms)), played_ms)",
            (user_id, song_id, play_id, played_ms, played_at, song["artist_id"]),
        )
        if affected == 1:
            await tx.execute("UPDATE songs SET play_count = play_count + 1 WHERE id = %s", (song_id,))
        return affected == 1

    async def history(self, user_id: int, limit: int, offset: int) -> tuple[list[Row], int]:
        # The page's ids from ix_plays_user_listen alone, then only its rows (play_id is not in
        # the index): a deep page skips index entries, not whole rows.
        rows = await self.db.fetchall(
            "SELECT p.song_id, p.played_at, p.played_ms, p.play_id FROM plays p"
            f" JOIN (SELECT p.id AS page_id FROM plays p WHERE {VISIBLE}"
            " ORDER BY p.played_at DESC, p.id DESC LIMIT %s OFFSET %s) page ON page.page_id = p.id"
            " ORDER BY p.played_at DESC, p.id DESC",
            (user_id, user_id, limit, offset),
        )
        total = await self.db.fetchval(f"SELECT COUNT(*) FROM plays p WHERE {VISIBLE}", (user_id, user_id))
        return rows, int(total)

    async def clear(self, user_id: int) -> None:
        await self.db.execute(
            "UPDATE users SET history_cleared_at = UTC_TIMESTAMP(6) WHERE id = %s", (user_id,),
            idempotent=True,
        )

    async def recent_plays(self, user_id: int, limit: int,
                           before: tuple[dt.datetime, int] | None = None) -> list[Row]:
        """The user's plays newest first (song, time, id), from `before` (played_at, id) on: read
        in the order of ix_plays_user_listen, so a page costs its own rows only."""
        after = ""
        params: list[object] = [user_id, user_id]
        if before is not None:
            after = " AND (p.played_at, p.id) < (%s, %s)"
            params += [before[0], before[1]]
        return await self.db.fetchall(
            f"SELECT p.id, p.song_id, p.played_at FROM plays p WHERE {VISIBLE}{after}"
            " ORDER BY p.played_at DESC, p.id DESC LIMIT %s",
            (*params, limit),
        )

    async def top_songs(self, user_id: int | None, since: dt.datetime | None, limit: int) -> list[Row]:
        where: list[str] = []
        params: list[object] = []
        if user_id is not None:
            where.append(VISIBLE)
            params += [user_id, user_id]
        if since is not None:
            where.append("p.played_at >= %s")
            params.append(since)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        return await self.db.fetchall(
            f"SELECT p.song_id, COUNT(*) AS plays FROM plays p{clause}"
            " GROUP BY p.song_id ORDER BY plays DESC, p.song_id LIMIT %s",
            (*params, limit),
        )

    async def stats(self, user_id: int) -> Row:
        """Plays, listening time and distinct songs: from ix_plays_user_listen alone."""
        row = await self.db.fetchone(
            f"SELECT COUNT(*) AS plays, COALESCE(SUM(p.played_ms), 0) AS played_ms,"
            f" COUNT(DISTINCT p.song_id) AS songs FROM plays p WHERE {VISIBLE}",
            (user_id, user_id),
        )
        assert row is not None
        return row

    async def artist_plays(self, user_id: int) -> list[Row]:
        """Every artist the user played, with their plays, most played first (ties by id): from
        ix_plays_user_listen alone, by the artist each play recorded (the song's artist for a
        play recorded without one)."""
        return await self.db.fetchall(
            "SELECT COALESCE(p.artist_id, (SELECT s.artist_id FROM songs s WHERE s.id = p.song_id))"
            f" AS artist_id, COUNT(*) AS plays FROM plays p WHERE {VISIBLE}"
            " GROUP BY 1 ORDER BY plays DESC, artist_id",
            (user_id, user_id),
        )

    async def artist_names(self, artist_ids: list[int]) -> dict[int, str]:
        if not artist_ids:
            return {}
        rows = await self.db.fetchall(
            f"SELECT id, name FROM artists WHERE id IN ({', '.join(['%s'] * len(artist_ids))})",
            tuple(artist_ids),
        )
        return {int(r["id"]): r["name"] for r in rows}

    async def per_day(self, user_id: int | None, since: dt.datetime) -> list[Row]:
        where = ["p.played_at >= %s"]
        params: list[object] = [since]
        if user_id is not None:
            where.append(VISIBLE)
            params += [user_id, user_id]
        return await self.db.fetchall(
            f"SELECT DATE(p.played_at) AS day, COUNT(*) AS plays FROM plays p"
            f" WHERE {' AND '.join(where)} GROUP BY day ORDER BY day",
            params,
        )

    async def play_count(self, song_id: int) -> int | None:
        value = await self.db.fetchval("SELECT play_count FROM songs WHERE id = %s", (song_id,))
        return None if value is None else int(value)

    async def chart_snapshot(self, period: str) -> Row | None:
        """The kept chart of a long period: computed_at and entries (JSON [[song_id, plays]])."""
        return await self.db.fetchone(
            "SELECT computed_at, entries FROM listening_charts WHERE period = %s", (period,))

    async def save_chart_snapshot(self, period: str, entries: str) -> None:
        await self.db.execute(
            "INSERT INTO listening_charts (period, computed_at, entries)"
            " VALUES (%s, UTC_TIMESTAMP(6), %s) ON DUPLICATE KEY UPDATE"
            " computed_at = VALUES(computed_at), entries = VALUES(entries)",
            (period, entries), idempotent=True,
        )

    async def now(self) -> dt.datetime:
        return await self.db.fetchval("SELECT UTC_TIMESTAMP(6)")
