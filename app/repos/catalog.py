"""SQL for the catalogue: images, artists, albums, songs and featured artists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.repos.db import Database, Row, Tx

SONG_SELECT = (
    "SELECT s.id, s.title, s.artist_id, ar.name AS artist_name, s.album_id,"
    " al.title AS album_title, s.track_number, s.disc_number, s.duration_ms, s.bitrate,"
    " s.sample_rate, s.codec, s.mime_type, s.size, s.year, s.genre, s.explicit, s.play_count,"
    " COALESCE(s.cover_image_id, al.cover_image_id) AS cover_image_id, s.created_at"
    " FROM songs s JOIN artists ar ON ar.id = s.artist_id LEFT JOIN albums al ON al.id = s.album_id"
)
ALBUM_SELECT = (
    "SELECT al.id, al.title, al.artist_id, ar.name AS artist_name, al.album_type, al.year,"
    " al.genre, al.cover_image_id, al.created_at,"
    " (SELECT COUNT(*) FROM songs s WHERE s.album_id = al.id) AS song_count,"
    " (SELECT COALESCE(SUM(s.duration_ms), 0) FROM songs s WHERE s.album_id = al.id) AS duration_ms"
    " FROM albums al JOIN artists ar ON ar.id = al.artist_id"
)
ARTIST_SELECT = "SELECT ar.id, ar.name, ar.bio, ar.image_id, ar.created_at FROM artists ar"

SONG_ORDER = {
    "newest": "s.created_at DESC, s.id DESC",
    "title": "s.title, s.id",
    "popular": "s.play_count DESC, s.id",
    "album": "s.album_id, s.disc_number, s.track_number, s.id",
}


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` as a plain substring (wildcards in it escaped)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class CatalogRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # images
    async def image_sha(self, image_id: int) -> str | None:
        value = await self.db.fetchval("SELECT sha256 FROM images WHERE id = %s", (image_id,))
        return str(value) if value else None

    async def image_size(self, sha256: str) -> tuple[int, int] | None:
        """The stored image with these bytes: (width, height), or None."""
        row = await self.db.fetchone("SELECT width, height FROM images WHERE sha256 = %s", (sha256,))
        return None if row is None else (int(row["width"]), int(row["height"]))

    async def upsert_image(self, tx: Tx, sha256: str, width: int, height: int) -> int:
        row = await tx.fetchone("SELECT id FROM images WHERE sha256 = %s", (sha256,))
        if row:
            return int(row["id"])
        return await tx.execute(
            "INSERT INTO images (sha256, width, height) VALUES (%s, %s, %s)", (sha256, width, height)
        )

    # artists
    async def artist(self, artist_id: int) -> Row | None:
        return await self.db.fetchone(f"{ARTIST_SELECT} WHERE ar.id = %s", (artist_id,))

    async def artist_by_name(self, tx: Tx, name: str) -> Row | None:
        return await tx.fetchone(
            "SELECT id, name FROM artists WHERE name_canon = %s", (name.lower(),)
        )

    async def insert_artist(self, tx: Tx, name: str, bio: str | None = None) -> int:
        return await tx.execute(
            "INSERT INTO artists (name, name_canon, bio) VALUES (%s, %s, %s)",
            (name, name.lower(), bio),
        )

    async def find_or_create_artist(self, tx: Tx, name: str) -> tuple[int, bool]:
        """The artist of that name (any letter case), created when missing."""
        row = await self.artist_by_name(tx, name)
        if row:
            return int(row["id"]), False
        await tx.execute(
            "INSERT INTO artists (name, name_canon) VALUES (%s, %s)"
            " ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)",
            (name, name.lower()),
        )
        new_id = int(await tx.fetchval("SELECT LAST_INSERT_ID()"))
        return new_id, True

    async def update_artist(self, tx: Tx, artist_id: int, changes: dict[str, Any]) -> None:
        sets, params = [], []
        for key, value in changes.items():
            if key == "name":
                sets += ["name = %s", "name_canon = %s"]
                params += [value, value.lower()]
            elif key in ("bio", "image_id"):
                sets.append(f"{key} = %s")
                params.append(value)
        if sets:
            await tx.execute(f"UPDATE artists SET {', '.join(sets)} WHERE id = %s", (*params, artist_id))

    async def artist_usage(self, tx: Tx, artist_id: int) -> tuple[int, int]:
        songs = await tx.fetchval("SELECT COUNT(*) FROM songs WHERE artist_id = %s", (artist_id,))
        albums = await tx.fetchval("SELECT COUNT(*) FROM albums WHERE artist_id = %s", (artist_id,))
        return int(songs), int(albums)

    async def delete_artist(self, tx: Tx, artist_id: int) -> int:
        return await tx.rowcount("DELETE FROM artists WHERE id = %s", (artist_id,))

    async def artists(self, q: str, limit: int, offset: int) -> tuple[list[Row], int]:
        where, params = "", []
        if q:
            where, params = " WHERE ar.name_canon LIKE %s", [like_pattern(q)]
        rows = await self.db.fetchall(
            f"{ARTIST_SELECT}{where} ORDER BY ar.name_canon, ar.id LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        total = await self.db.fetchval(f"SELECT COUNT(*) FROM artists ar{where}", params)
        return rows, int(total)

    async def artist_counts(self, artist_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        if not artist_ids:
            return {}
        marks = ", ".join(["%s"] * len(artist_ids))
        rows = await self.db.fetchall(
            f"SELECT ar.id, (SELECT COUNT(*) FROM albums al WHERE al.artist_id = ar.id) AS albums,"
            f" (SELECT COUNT(*) FROM songs s WHERE s.artist_id = ar.id) AS songs"
            f" FROM artists ar WHERE ar.id IN ({marks})",
            tuple(artist_ids),
        )
        return {r["id"]: (int(r["albums"]), int(r["songs"])) for r in rows}

    # albums
    async def album(self, album_id: int) -> Row | None:
        return await self.db.fetchone(f"{ALBUM_SELECT} WHERE al.id = %s", (album_id,))

    async def find_or_create_album(
        self, tx: Tx, title: str, artist_id: int, year: int | None, genre: str | None,
        album_type: str = "album",
    ) -> tuple[int, bool]:
        row = await tx.fetchone(
            "SELECT id FROM albums WHERE artist_id = %s AND title_canon = %s",
            (artist_id, title.lower()),
        )
        if row:
            return int(row["id"]), False
        await tx.execute(
            "INSERT INTO albums (title, title_canon, artist_id, year, genre, album_type)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)",
            (title, title.lower(), artist_id, year, genre, album_type),
        )
        return int(await tx.fetchval("SELECT LAST_INSERT_ID()")), True

    async def insert_album(
        self, tx: Tx, title: str, artist_id: int, album_type: str, year: int | None,
        genre: str | None,
    ) -> int:
        return await tx.execute(
            "INSERT INTO albums (title, title_canon, artist_id, album_type, year, genre)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (title, title.lower(), artist_id, album_type, year, genre),
        )

    async def update_album(self, tx: Tx, album_id: int, changes: dict[str, Any]) -> None:
        sets, params = [], []
        for key, value in changes.items():
            if key == "title":
                sets += ["title = %s", "title_canon = %s"]
                params += [value, value.lower()]
            elif key in ("artist_id", "album_type", "year", "genre", "cover_image_id"):
                sets.append(f"{key} = %s")
                params.append(value)
        if sets:
            await tx.execute(f"UPDATE albums SET {', '.join(sets)} WHERE id = %s", (*params, album_id))

    async def set_album_cover_if_missing(self, tx: Tx, album_id: int, image_id: int) -> None:
        await tx.execute(
            "UPDATE albums SET cover_image_id = %s WHERE id = %s AND cover_image_id IS NULL",
            (image_id, album_id),
        )

    async def delete_album(self, tx: Tx, album_id: int) -> int:
        return await tx.rowcount("DELETE FROM albums WHERE id = %s", (album_id,))

    async def albums(
        self, filters: dict[str, Any], limit: int, offset: int, order: str = "newest"
    ) -> tuple[list[Row], int]:
        where, params = [], []
        if filters.get("artist_id"):
            where.append("al.artist_id = %s")
            params.append(filters["artist_id"])
        if filters.get("year"):
            where.append("al.year = %s")
            params.append(filters["year"])
        if filters.get("genre"):
            where.append("LOWER(al.genre) = %s")
            params.append(filters["genre"].lower())
        if filters.get("album_type"):
            where.append("al.album_type = %s")
            params.append(filters["album_type"])
        if filters.get("q"):
            where.append("al.title_canon LIKE %s")
            params.append(like_pattern(filters["q"]))
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        order_by = {
            "newest": "al.created_at DESC, al.id DESC",
            "year": "al.year DESC, al.id DESC",
            "title": "al.title_canon, al.id",
        }[order]
        rows = await self.db.fetchall(
            f"{ALBUM_SELECT}{clause} ORDER BY {order_by} LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        total = await self.db.fetchval(f"SELECT COUNT(*) FROM albums al{clause}", params)
        return rows, int(total)

    # songs
    async def song(self, song_id: int) -> Row | None:
        return await self.db.fetchone(f"{SONG_SELECT} WHERE s.id = %s", (song_id,))

    async def song_file(self, song_id: int) -> Row | None:
        return await self.db.fetchone(
            "SELECT id, file_path, in_place, size, mime_type, sha256, bitrate, duration_ms"
            " FROM songs WHERE id = %s",
            (song_id,),
        )

    async def song_by_sha(self, sha256: str) -> int | None:
        value = await self.db.fetchval("SELECT id FROM songs WHERE sha256 = %s", (sha256,))
        return int(value) if value else None

    async def known_hashes(self) -> set[str]:
        rows = await self.db.fetchall("SELECT sha256 FROM songs")
        return {r["sha256"] for r in rows}

    async def insert_song(self, tx: Tx, fields: dict[str, Any]) -> int:
        columns = list(fields)
        marks = ", ".join(["%s"] * len(columns))
        return await tx.execute(
            f"INSERT INTO songs ({', '.join(columns)}) VALUES ({marks})",
            tuple(fields[c] for c in columns),
        )

    async def update_song(self, tx: Tx, song_id: int, changes: dict[str, Any]) -> None:
        allowed = {"title", "artist_id", "album_id", "track_number", "disc_number", "genre",
                   "year", "explicit", "cover_image_id", "file_path", "size", "sha256",
                   "source_mtime", "duration_ms", "bitrate", "sample_rate", "codec", "mime_type",
                   "audio_sha256"}
        sets = [f"{k} = %s" for k in changes if k in allowed]
        params = [v for k, v in changes.items() if k in allowed]
        if sets:
            await tx.execute(f"UPDATE songs SET {', '.join(sets)} WHERE id = %s", (*params, song_id))

    async def songs_featuring(self, tx: Tx, artist_id: int) -> list[int]:
        """The songs crediting this artist as a featured one, their links locked in `tx`."""
        rows = await tx.fetchall(
            "SELECT song_id FROM song_artists WHERE artist_id = %s ORDER BY song_id FOR UPDATE",
            (artist_id,),
        )
        return [int(r["song_id"]) for r in rows]

    async def set_featured(self, tx: Tx, song_id: int, artist_ids: list[int]) -> None:
        await tx.execute("DELETE FROM song_artists WHERE song_id = %s", (song_id,))
        for position, artist_id in enumerate(artist_ids):
            await tx.execute(
                "INSERT INTO song_artists (song_id, artist_id, position) VALUES (%s, %s, %s)"
                " ON DUPLICATE KEY UPDATE position = position",
                (song_id, artist_id, position),
            )

    async def featured(self, song_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        if not song_ids:
            return {}
        marks = ", ".join(["%s"] * len(song_ids))
        rows = await self.db.fetchall(
            f"SELECT sa.song_id, ar.id, ar.name FROM song_artists sa"
            f" JOIN artists ar ON ar.id = sa.artist_id WHERE sa.song_id IN ({marks})"
            f" ORDER BY sa.song_id, sa.position",
            tuple(song_ids),
        )
        out: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(r["song_id"], []).append({"id": r["id"], "name": r["name"]})
        return out

    async def delete_song(self, tx: Tx, song_id: int) -> Row | None:
        row = await tx.fetchone(
            "SELECT id, file_path, in_place, album_id, artist_id FROM songs WHERE id = %s FOR UPDATE",
            (song_id,),
        )
        if row:
            await tx.execute("DELETE FROM songs WHERE id = %s", (song_id,))
        return row

    async def delete_song_tx(self, tx: Tx, song_id: int) -> None:
        await tx.execute("DELETE FROM songs WHERE id = %s", (song_id,))

    async def song_refs(self, tx: Tx, song_id: int) -> dict[str, Any] | None:
        """A song's artist, album and featured artists, the row locked for an update in `tx`."""
        row = await tx.fetchone(
            "SELECT id, artist_id, album_id FROM songs WHERE id = %s FOR UPDATE", (song_id,)
        )
        if row is None:
            return None
        featured = await tx.fetchall(
            "SELECT artist_id FROM song_artists WHERE song_id = %s", (song_id,)
        )
        return {**row, "featured": [int(r["artist_id"]) for r in featured]}

    async def merge_into(self, tx: Tx, entity: str, keep_id: int, new_id: int) -> dict[str, Any] | None:
        """Give album or artist `keep_id` (left empty) the name and everything of `new_id`, then
        delete `new_id`. None, changing nothing, when `keep_id` is not empty or either is gone.
        Returns the songs, albums and artists whose shown data changed."""
        table = {"album": "albums", "artist": "artists"}[entity]
        rows = await tx.fetchall(
            f"SELECT * FROM {table} WHERE id IN (%s, %s) ORDER BY id FOR UPDATE", (keep_id, new_id)
        )
        new = next((r for r in rows if r["id"] == new_id), None)
        if len(rows) != 2 or new is None:
            return None
        if entity == "album":
            if await tx.fetchone("SELECT id FROM songs WHERE album_id = %s LIMIT 1", (keep_id,)):
                return None
            songs = await tx.fetchall("SELECT id FROM songs WHERE album_id = %s", (new_id,))
            await tx.execute("UPDATE songs SET album_id = %s WHERE album_id = %s", (keep_id, new_id))
            await tx.execute("DELETE FROM albums WHERE id = %s", (new_id,))
            await tx.execute(
                "UPDATE albums SET title = %s, title_canon = %s, artist_id = %s, album_type = %s,"
                " year = COALESCE(%s, year), genre = COALESCE(%s, genre),"
                " cover_image_id = COALESCE(cover_image_id, %s) WHERE id = %s",
                (new["title"], new["title_canon"], new["artist_id"], new["album_type"], new["year"],
                 new["genre"], new["cover_image_id"], keep_id),
            )
            return {"songs": [int(r["id"]) for r in songs], "albums": [],
                    "artists": [int(new["artist_id"])]}
        for sql in ("SELECT id FROM songs WHERE artist_id = %s LIMIT 1",
                    "SELECT id FROM albums WHERE artist_id = %s LIMIT 1",
                    "SELECT song_id FROM song_artists WHERE artist_id = %s LIMIT 1"):
            if await tx.fetchone(sql, (keep_id,)):
                return None
        songs = await tx.fetchall(
            "SELECT id FROM songs WHERE artist_id = %s UNION"
            " SELECT song_id FROM song_artists WHERE artist_id = %s", (new_id, new_id)
        )
        albums = await tx.fetchall("SELECT id FROM albums WHERE artist_id = %s", (new_id,))
        await tx.execute("UPDATE songs SET artist_id = %s WHERE artist_id = %s", (keep_id, new_id))
        await tx.execute("UPDATE albums SET artist_id = %s WHERE artist_id = %s", (keep_id, new_id))
        await tx.execute("UPDATE song_artists SET artist_id = %s WHERE artist_id = %s", (keep_id, new_id))
        await tx.execute("DELETE FROM artists WHERE id = %s", (new_id,))
        await tx.execute(
            "UPDATE artists SET name = %s, name_canon = %s, bio = COALESCE(bio, %s),"
            " image_id = COALESCE(image_id, %s) WHERE id = %s",
            (new["name"], new["name_canon"], new["bio"], new["image_id"], keep_id),
        )
        return {"songs": [int(r["id"]) for r in songs], "albums": [int(r["id"]) for r in albums],
                "artists": []}

    async def move_song_file(self, tx: Tx, song_id: int, file_path: str, mtime: float) -> None:
        """An in-place file found at a new path (same content): the song follows it."""
        await tx.execute(
            "UPDATE songs SET file_path = %s, source_mtime = %s WHERE id = %s",
            (file_path, mtime, song_id),
        )

    async def songs(
        self, filters: dict[str, Any], limit: int, offset: int, order: str = "newest"
    ) -> tuple[list[Row], int]:
        where, params = [], []
        for key in ("artist_id", "album_id", "year"):
            if filters.get(key):
                where.append(f"s.{key} = %s")
                params.append(filters[key])
        if filters.get("genre"):
            where.append("LOWER(s.genre) = %s")
            params.append(filters["genre"].lower())
        if filters.get("q"):
            where.append("LOWER(s.title) LIKE %s")
            params.append(like_pattern(filters["q"]))
        if filters.get("ids"):
            marks = ", ".join(["%s"] * len(filters["ids"]))
            where.append(f"s.id IN ({marks})")
            params.extend(filters["ids"])
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        rows = await self.db.fetchall(
            f"{SONG_SELECT}{clause} ORDER BY {SONG_ORDER[order]} LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        total = await self.db.fetchval(f"SELECT COUNT(*) FROM songs s{clause}", params)
        return rows, int(total)

    async def genres(self) -> list[Row]:
        return await self.db.fetchall(
            "SELECT genre, COUNT(*) AS songs FROM songs WHERE genre IS NOT NULL AND genre <> ''"
            " GROUP BY genre ORDER BY songs DESC, genre LIMIT 200"
        )

    async def years(self) -> list[Row]:
        return await self.db.fetchall(
            "SELECT year, COUNT(*) AS songs FROM songs WHERE year IS NOT NULL"
            " GROUP BY year ORDER BY year DESC LIMIT 200"
        )

    async def counts(self) -> dict[str, int]:
        row = await self.db.fetchone(
            "SELECT (SELECT COUNT(*) FROM songs) AS songs, (SELECT COUNT(*) FROM albums) AS albums,"
            " (SELECT COUNT(*) FROM artists) AS artists,"
            " (SELECT COALESCE(SUM(size), 0) FROM songs) AS bytes,"
            " (SELECT COALESCE(SUM(duration_ms), 0) FROM songs) AS duration_ms"
        )
        assert row is not None
        return {k: int(v) for k, v in row.items()}

    async def in_place_files(self) -> dict[str, Row]:
        rows = await self.db.fetchall(
            "SELECT s.id, s.file_path, s.size, s.source_mtime, s.sha256, s.audio_sha256, s.title,"
            " s.track_number, s.disc_number, ar.name AS artist_name, al.title AS album_title"
            " FROM songs s JOIN artists ar ON ar.id = s.artist_id"
            " LEFT JOIN albums al ON al.id = s.album_id WHERE s.in_place = 1"
        )
        return {r["file_path"]: r for r in rows}

    async def artist_dependents(self, artist_id: int) -> tuple[list[int], list[int]]:
        """The ids of the songs (by or featuring the artist) and albums that show its name."""
        rows = await self.db.fetchall(
            "SELECT id FROM songs WHERE artist_id = %s UNION"
            " SELECT song_id FROM song_artists WHERE artist_id = %s", (artist_id, artist_id)
        )
        albums = await self.db.fetchall("SELECT id FROM albums WHERE artist_id = %s", (artist_id,))
        return [int(r["id"]) for r in rows], [int(r["id"]) for r in albums]

    async def album_id_by_title(self, artist_id: int, title: str) -> int | None:
        """The artist's album with this title (case-insensitively), if any."""
        value = await self.db.fetchval(
            "SELECT id FROM albums WHERE artist_id = %s AND title_canon = %s", (artist_id, title.lower()),
        )
        return int(value) if value is not None else None
