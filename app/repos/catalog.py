"""SQL for the catalogue: images, artists, albums, songs and featured artists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import orjson
import pymysql

from app.repos.db import Database, Row, Tx

DUPLICATE_KEY = 1062

SONG_SELECT = (
    "SELECT s.id, s.title, s.artist_id, ar.name AS artist_name, s.album_id,"
    " al.title AS album_title, s.track_number, s.disc_number, s.duration_ms, s.bitrate,"
    " s.sample_rate, s.codec, s.mime_type, s.size, s.year, s.genre, s.explicit, s.play_count,"
    " COALESCE(s.cover_image_id, al.cover_image_id) AS cover_image_id, s.created_at"
    " FROM songs s JOIN artists ar ON ar.id = s.artist_id LEFT JOIN albums al ON al.id = s.album_id"
)
# An album's and an artist's counts are maintained in their rows (sql/0007_catalog_at_scale.sql).
ALBUM_SELECT = (
    "SELECT al.id, al.title, al.artist_id, ar.name AS artist_name, al.album_type, al.year,"
    " al.genre, al.cover_image_id, al.created_at, al.song_count, al.duration_ms"
    " FROM albums al JOIN artists ar ON ar.id = al.artist_id"
)
ARTIST_SELECT = "SELECT ar.id, ar.name, ar.bio, ar.image_id, ar.created_at FROM artists ar"
ARTIST_INDEX_SELECT = "SELECT ar.id, ar.name, ar.image_id, ar.album_count FROM artists ar"

# Each order as its sort keys, (column, descending), the last one unique. Every list reads its
# page from an index in this order (or exactly its reverse), see sql/0007_catalog_at_scale.sql.
SortKeys = tuple[tuple[str, bool], ...]
SONG_ORDERS: dict[str, SortKeys] = {
    "newest": (("s.created_at", True), ("s.id", True)),
    "title": (("s.title", False), ("s.id", False)),
    "popular": (("s.play_count", True), ("s.id", False)),
    "album": (("s.album_id", False), ("s.disc_number", False), ("s.track_number", False),
              ("s.id", False)),
    "id": (("s.id", False),),
}
ALBUM_ORDERS: dict[str, SortKeys] = {
    "newest": (("al.created_at", True), ("al.id", True)),
    "year": (("al.year", True), ("al.id", True)),
    "title": (("al.title_canon", False), ("al.id", False)),
}
# name_canon is unique: it orders alone (with an id after it the optimizer would sort).
ARTIST_ORDERS: dict[str, SortKeys] = {"name": (("ar.name_canon", False),)}
COUNT_CAP = 10_000  # past this many rows a filtered count is an estimate, not a scan

Query = tuple[str, list[Any]]


# A song's featured artists in credit order as one JSON value ([{"id", "name"}…], NULL for none).
FEATURED_JSON = (
    "(SELECT JSON_ARRAYAGG(JSON_OBJECT('id', fa.id, 'name', fa.name) ORDER BY sa.position)"
    " FROM song_artists sa JOIN artists fa ON fa.id = sa.artist_id WHERE sa.song_id = s.id)"
    " AS featured_json"
)
SONG_FEATURED_SELECT = SONG_SELECT.replace(" FROM songs s", f", {FEATURED_JSON} FROM songs s", 1)


# An album's songs as one JSON value: an array per song holding these fields, in this order, in
# play order (MariaDB keeps a nested JSON value, the featured artists, as JSON). One value parses
# several times as fast as rows of twenty columns (no column descriptions, no per-field decoding).
ALBUM_SONG_FIELDS = (
    "id", "title", "artist_id", "artist_name", "album_id", "album_title", "track_number",
    "disc_number", "duration_ms", "bitrate", "sample_rate", "codec", "mime_type", "size", "year",
    "genre", "explicit", "play_count", "cover_image_id", "created_at", "featured",
)
ALBUM_SONGS_JSON = (
    "(SELECT JSON_ARRAYAGG(JSON_ARRAY(s.id, s.title, s.artist_id, sar.name, s.album_id, al.title,"
    " s.track_number, s.disc_number, s.duration_ms, s.bitrate, s.sample_rate, s.codec,"
    " s.mime_type, s.size, s.year, s.genre, s.explicit, s.play_count,"
    " COALESCE(s.cover_image_id, al.cover_image_id), s.created_at,"
    " (SELECT JSON_ARRAYAGG(JSON_OBJECT('id', fa.id, 'name', fa.name) ORDER BY sa.position)"
    " FROM song_artists sa JOIN artists fa ON fa.id = sa.artist_id WHERE sa.song_id = s.id))"
    " ORDER BY s.disc_number, s.track_number, s.id LIMIT %s)"
    " FROM songs s JOIN artists sar ON sar.id = s.artist_id WHERE s.album_id = al.id)"
)
# An album with its songs as one JSON array: ALBUM_FIELDS, then the songs (ALBUM_SONGS_JSON).
ALBUM_FIELDS = ("id", "title", "artist_id", "artist_name", "album_type", "year", "genre",
                "cover_image_id", "created_at", "song_count", "duration_ms")
ALBUM_WITH_SONGS_JSON = (
    "SELECT JSON_ARRAY(al.id, al.title, al.artist_id, ar.name, al.album_type, al.year, al.genre,"
    f" al.cover_image_id, al.created_at, al.song_count, al.duration_ms, {ALBUM_SONGS_JSON})"
    " FROM albums al JOIN artists ar ON ar.id = al.artist_id WHERE al.id = %s"
)


def album_songs_sql(album_id: int, limit: int) -> Query:
    """An album's songs, whole rows with their featured artists (`featured_json`), in play order
    along the (album, disc, track) index: an album answer in one statement."""
    return (f"{SONG_FEATURED_SELECT} WHERE s.album_id = %s"
            " ORDER BY s.album_id, s.disc_number, s.track_number, s.id LIMIT %s", [album_id, limit])


@dataclass(frozen=True)
class PageSpec:
    """Which page of a list: `limit` rows after `offset` of them, or after the row whose sort key
    is `after` (a keyset cursor, ignoring `offset`); `reverse` reads the order backwards."""

    limit: int
    offset: int = 0
    after: tuple[Any, ...] | None = None
    reverse: bool = False


@dataclass
class Listed:
    """A page of rows, the list's total (`estimated` when not counted exactly) and the sort key
    of the page's last row (for the next page's `after`)."""

    rows: list[Row]
    total: int
    estimated: bool = False
    last_key: tuple[Any, ...] | None = None
    first_key: tuple[Any, ...] | None = None


def order_by(keys: SortKeys, reverse: bool = False) -> str:
    """The ORDER BY list of sort keys (each direction flipped when `reverse`)."""
    return ", ".join(f"{col} {'DESC' if desc != reverse else 'ASC'}" for col, desc in keys)


def after_clause(keys: SortKeys, after: Sequence[Any], reverse: bool = False) -> Query:
    """Rows past the key `after` in this order, as an OR of prefixes (the range optimizer reads
    each as one range of the order's index; a row constructor comparison it would scan)."""
    parts, params = [], []
    for i, (col, desc) in enumerate(keys):
        op = "<" if desc != reverse else ">"
        eqs = [f"{c} = %s" for c, _ in keys[:i]]
        parts.append("(" + " AND ".join([*eqs, f"{col} {op} %s"]) + ")")
        params += [*after[:i], after[i]]
    return "(" + " OR ".join(parts) + ")", params


def page_sql(select: str, where: list[str], params: list[Any], keys: SortKeys,
             spec: PageSpec) -> Query:
    """`select` (ids from one table) filtered by `where`, in the order `keys`, one page."""
    where, params = list(where), list(params)
    if spec.after is not None:
        clause, extra = after_clause(keys, spec.after, spec.reverse)
        where.append(clause)
        params += extra
    sql = f"{select}{(' WHERE ' + ' AND '.join(where)) if where else ''}"
    sql += f" ORDER BY {order_by(keys, spec.reverse)} LIMIT %s"
    params.append(spec.limit)
    if spec.after is None and spec.offset:
        sql += " OFFSET %s"
        params.append(spec.offset)
    return sql, params


def song_filter_sql(filters: dict[str, Any]) -> Query:
    """The WHERE terms of a song list's filters (each served by an index of the migration)."""
    where: list[str] = []
    params: list[Any] = []
    for key in ("artist_id", "album_id", "year"):
        if filters.get(key):
            where.append(f"s.{key} = %s")
            params.append(filters[key])
    if filters.get("genre"):
        where.append("s.genre_canon = %s")
        params.append(filters["genre"].lower())
    if filters.get("q"):
        where.append("LOWER(s.title) LIKE %s")
        params.append(like_pattern(filters["q"]))
    if filters.get("ids"):
        where.append(f"s.id IN ({', '.join(['%s'] * len(filters['ids']))})")
        params.extend(filters["ids"])
    return " AND ".join(where), params


def song_ids_sql(filters: dict[str, Any], order: str, spec: PageSpec) -> Query:
    """The ids (and sort keys) of one page of songs: read from an index, no join (the rows
    are fetched by id afterwards: a deferred join)."""
    keys = SONG_ORDERS[order]
    where, params = song_filter_sql(filters)
    cols = ", ".join(dict.fromkeys(["s.id", *(c for c, _ in keys)]))
    return page_sql(f"SELECT {cols} FROM songs s", [where] if where else [], params, keys, spec)


def album_filter_sql(filters: dict[str, Any]) -> Query:
    """The WHERE terms of an album list's filters."""
    where: list[str] = []
    params: list[Any] = []
    if filters.get("artist_id"):
        where.append("al.artist_id = %s")
        params.append(filters["artist_id"])
    if filters.get("year"):
        where.append("al.year = %s")
        params.append(filters["year"])
    if filters.get("genre"):
        where.append("al.genre_canon = %s")
        params.append(filters["genre"].lower())
    if filters.get("album_type"):
        where.append("al.album_type = %s")
        params.append(filters["album_type"])
    if filters.get("q"):
        where.append("al.title_canon LIKE %s")
        params.append(like_pattern(filters["q"]))
    return " AND ".join(where), params


def album_ids_sql(filters: dict[str, Any], order: str, spec: PageSpec) -> Query:
    """The ids (and sort keys) of one page of albums."""
    keys = ALBUM_ORDERS[order]
    where, params = album_filter_sql(filters)
    cols = ", ".join(dict.fromkeys(["al.id", *(c for c, _ in keys)]))
    return page_sql(f"SELECT {cols} FROM albums al", [where] if where else [], params, keys, spec)


def artist_ids_sql(q: str, spec: PageSpec) -> Query:
    """The ids (and names) of one page of artists by name, those matching `q` when given."""
    where, params = ([], []) if not q else (["ar.name_canon LIKE %s"], [like_pattern(q)])
    return page_sql("SELECT ar.id, ar.name_canon FROM artists ar", where, params,
                    ARTIST_ORDERS["name"], spec)


def artist_index_sql() -> str:
    """Every artist as one JSON array the server builds, `[id, name, image_id, album_count,
    name_canon]` each, the table read once: 20,000 artists parse in the driver three times as
    fast as one value as they do as 20,000 rows. No order is asked (MySQL's JSON_ARRAYAGG takes
    none, and a sort on the server would cost as much): the caller sorts by name_canon, the
    order of the name index."""
    return ("SELECT JSON_ARRAYAGG(JSON_ARRAY(ar.id, ar.name, ar.image_id, ar.album_count,"
            " ar.name_canon)) FROM artists ar")


INDEX_MAX_BYTES = 256 * 1024**2  # the artist index's JSON value (JSON_ARRAYAGG obeys this limit)


def albums_by_artist_sql(limit: int, offset: int) -> Query:
    """One page of album ids by artist name, then title (Subsonic's alphabeticalByArtist): the
    artists are read along their name index and each one's albums along (artist_id,
    title_canon), so the rows come in order and no more are read than the page and its offset.
    Only the first table's column may be in ORDER BY for the join to be read in index order;
    the albums' own order within an artist is the order of the index they are read by."""
    return ("SELECT al.id FROM artists ar FORCE INDEX (uq_artists_name)"
            " STRAIGHT_JOIN albums al FORCE INDEX (uq_albums_artist_title) ON al.artist_id = ar.id"
            " ORDER BY ar.name_canon LIMIT %s OFFSET %s", [limit, offset])


def albums_by_years_sql(first: int, last: int, limit: int, offset: int) -> Query:
    """One page of album ids with a year from `first` to `last`, in that direction (Subsonic's
    byYear: a reverse range lists the newest first), then by id, along the year index."""
    direction = "ASC" if first <= last else "DESC"
    lo, hi = min(first, last), max(first, last)
    return (f"SELECT al.id FROM albums al FORCE INDEX (ix_albums_year)"
            f" WHERE al.year BETWEEN %s AND %s ORDER BY al.year {direction}, al.id {direction}"
            f" LIMIT %s OFFSET %s", [lo, hi, limit, offset])


GENRE_ALBUMS_SQL = ("SELECT al.genre_canon AS genre, COUNT(*) AS albums FROM albums al"
                    " FORCE INDEX (ix_albums_genre_title) WHERE al.genre_canon IS NOT NULL"
                    " GROUP BY al.genre_canon")
RANDOM_TABLES = ("songs", "albums")  # the tables random picks read ids from, fixed here


def existing_ids_sql(table: str, ids: Sequence[int]) -> Query:
    """Those of `ids` that are rows of `table` (songs or albums), by primary key."""
    assert table in RANDOM_TABLES
    return f"SELECT id FROM {table} WHERE id IN ({', '.join(['%s'] * len(ids))})", list(ids)


def ids_from_sql(table: str, start: int, limit: int) -> Query:
    """Up to `limit` ids of `table` (songs or albums) from `start` on, along the primary key."""
    assert table in RANDOM_TABLES
    return f"SELECT id FROM {table} WHERE id >= %s ORDER BY id LIMIT %s", [start, limit]


def capped_count_sql(table: str, where: str, params: list[Any]) -> Query:
    """Count at most COUNT_CAP + 1 matching rows: exact below the cap, bounded work above it."""
    clause = f" WHERE {where}" if where else ""
    return (f"SELECT COUNT(*) FROM (SELECT 1 FROM {table}{clause} LIMIT {COUNT_CAP + 1}) capped",
            params)


# `repair-counts`: each statement sets a maintained figure from the rows, touching (and so
# counting) only the rows that were wrong.
ID_BLOCK = 10_000  # the ids a row of song_id_blocks counts (sql/0012)
REPAIRS: tuple[tuple[str, str], ...] = (
    ("albums",
     "UPDATE albums al LEFT JOIN (SELECT album_id, COUNT(*) AS n, SUM(duration_ms) AS ms"
     " FROM songs WHERE album_id IS NOT NULL GROUP BY album_id) s ON s.album_id = al.id"
     " SET al.song_count = COALESCE(s.n, 0), al.duration_ms = COALESCE(s.ms, 0)"
     " WHERE al.song_count <> COALESCE(s.n, 0) OR al.duration_ms <> COALESCE(s.ms, 0)"),
    ("artists",
     "UPDATE artists ar"
     " LEFT JOIN (SELECT artist_id, COUNT(*) AS n FROM songs GROUP BY artist_id) s"
     " ON s.artist_id = ar.id"
     " LEFT JOIN (SELECT artist_id, COUNT(*) AS n FROM albums GROUP BY artist_id) al"
     " ON al.artist_id = ar.id"
     " SET ar.song_count = COALESCE(s.n, 0), ar.album_count = COALESCE(al.n, 0)"
     " WHERE ar.song_count <> COALESCE(s.n, 0) OR ar.album_count <> COALESCE(al.n, 0)"),
    ("totals",
     "UPDATE catalog_totals t JOIN (SELECT COUNT(*) AS songs, COALESCE(SUM(size), 0) AS bytes,"
     " COALESCE(SUM(duration_ms), 0) AS ms FROM songs) s"
     " JOIN (SELECT COUNT(*) AS n FROM albums) al JOIN (SELECT COUNT(*) AS n FROM artists) ar"
     " SET t.songs = s.songs, t.bytes = s.bytes, t.duration_ms = s.ms, t.albums = al.n,"
     " t.artists = ar.n WHERE t.id = 1 AND (t.songs <> s.songs OR t.bytes <> s.bytes"
     " OR t.duration_ms <> s.ms OR t.albums <> al.n OR t.artists <> ar.n)"),
    ("genres",
     "UPDATE genre_song_counts g LEFT JOIN (SELECT genre, COUNT(*) AS n FROM songs"
     " GROUP BY genre) c ON c.genre = g.genre SET g.songs = COALESCE(c.n, 0)"
     " WHERE g.songs <> COALESCE(c.n, 0)"),
    ("genres",
     "INSERT INTO genre_song_counts (genre, songs) SELECT genre, COUNT(*) FROM songs"
     " WHERE genre IS NOT NULL AND genre <> ''"
     " AND genre NOT IN (SELECT genre FROM genre_song_counts) GROUP BY genre"),
    ("years",
     "UPDATE year_song_counts y LEFT JOIN (SELECT year, COUNT(*) AS n FROM songs"
     " GROUP BY year) c ON c.year = y.year SET y.songs = COALESCE(c.n, 0)"
     " WHERE y.songs <> COALESCE(c.n, 0)"),
    ("years",
     "INSERT INTO year_song_counts (year, songs) SELECT year, COUNT(*) FROM songs"
     " WHERE year IS NOT NULL AND year NOT IN (SELECT year FROM year_song_counts) GROUP BY year"),
    ("id blocks",
     f"UPDATE song_id_blocks b LEFT JOIN (SELECT id DIV {ID_BLOCK} AS block, COUNT(*) AS n"
     f" FROM songs GROUP BY id DIV {ID_BLOCK}) c ON c.block = b.block SET b.songs = COALESCE(c.n, 0)"
     " WHERE b.songs <> COALESCE(c.n, 0)"),
    ("id blocks",
     f"INSERT INTO song_id_blocks (block, songs) SELECT id DIV {ID_BLOCK}, COUNT(*) FROM songs"
     f" WHERE id DIV {ID_BLOCK} NOT IN (SELECT block FROM song_id_blocks) GROUP BY id DIV {ID_BLOCK}"),
)


def rows_sql(select: str, alias: str, ids: Sequence[int]) -> Query:
    """The second half of a deferred join: the page's rows by primary key."""
    return f"{select} WHERE {alias}.id IN ({', '.join(['%s'] * len(ids))})", list(ids)


def _in_order(rows: list[Row], ids: list[int]) -> list[Row]:
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


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
        listed = await self.artist_page(q, PageSpec(limit, offset))
        return listed.rows, listed.total

    async def artist_page(self, q: str, spec: PageSpec) -> Listed:
        """A page of artists by name (those matching `q`), the total and the last row's key."""
        if q:
            where, params = "ar.name_canon LIKE %s", [like_pattern(q)]
            total, estimated = await self._capped_count("artists ar", where, params)
        else:
            total, estimated = await self.total("artists"), False
        used = self._deep(spec, total, estimated)
        return await self._page(artist_ids_sql(q, used), used, total, estimated,
                                ARTIST_ORDERS["name"], self.artist_rows)

    async def artist_rows(self, ids: list[int]) -> list[Row]:
        """The artists of `ids` (in no order; ids that are gone are left out)."""
        return await self.db.fetchall(*rows_sql(ARTIST_SELECT, "ar", ids))

    async def artist_counts(self, artist_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """Each artist's (albums, songs), as maintained in its row."""
        if not artist_ids:
            return {}
        marks = ", ".join(["%s"] * len(artist_ids))
        rows = await self.db.fetchall(
            f"SELECT id, album_count, song_count FROM artists WHERE id IN ({marks})",
            tuple(artist_ids),
        )
        return {r["id"]: (int(r["album_count"]), int(r["song_count"])) for r in rows}

    # pages of a list ---------------------------------------------------------------------
    @staticmethod
    def _deep(spec: PageSpec, total: int, estimated: bool) -> PageSpec:
        """An offset past the middle of an exactly counted list reads the page from the end
        (the reverse order, the rows flipped back): no page skips more than half the list."""
        if spec.after is not None or spec.reverse or estimated or spec.offset * 2 <= total:
            return spec
        end = min(total, spec.offset + spec.limit)
        return PageSpec(limit=max(0, end - spec.offset), offset=total - end, reverse=True)

    async def _page(self, query: Query, used: PageSpec, total: int, estimated: bool,
                    keys: SortKeys, fetch: Callable[[list[int]], Awaitable[list[Row]]]) -> Listed:
        """Run the ids query `query` (for the page `used`, which `_deep` may have reversed), then
        fetch those rows by id: the page in the list's order, with its first and last keys."""
        found = await self.db.fetchall(*query) if used.limit > 0 else []
        if used.reverse:
            found.reverse()
        ids = [int(r["id"]) for r in found]
        rows = _in_order(await fetch(ids), ids) if ids else []
        names = [c.split(".", 1)[1] for c, _ in keys]
        if not found:
            return Listed(rows, total, estimated)
        return Listed(rows, total, estimated, tuple(found[-1][n] for n in names),
                      tuple(found[0][n] for n in names))

    async def _capped_count(self, table: str, where: str, params: list[Any]) -> tuple[int, bool]:
        """The rows matching `where`: exact up to COUNT_CAP, above it the optimizer's estimate."""
        sql, args = capped_count_sql(table, where, params)
        counted = int(await self.db.fetchval(sql, args))
        if counted <= COUNT_CAP:
            return counted, False
        plan = await self.db.fetchone(f"EXPLAIN SELECT 1 FROM {table} WHERE {where}", params)
        return max(counted, int((plan or {}).get("rows") or 0)), True

    async def total(self, name: str) -> int:
        """One of the library totals maintained in catalog_totals."""
        column = {"songs": "songs", "albums": "albums", "artists": "artists"}[name]
        return int(await self.db.fetchval(f"SELECT {column} FROM catalog_totals WHERE id = 1")
                   or 0)

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
        # A plain INSERT, not ON DUPLICATE KEY UPDATE: the albums' BEFORE INSERT trigger would
        # count an album that a duplicate then turns into an update. A failed statement rolls
        # its trigger back, and the transaction goes on.
        try:
            return await tx.execute(
                "INSERT INTO albums (title, title_canon, artist_id, year, genre, album_type)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (title, title.lower(), artist_id, year, genre, album_type),
            ), True
        except pymysql.err.IntegrityError as exc:
            if exc.args[0] != DUPLICATE_KEY:
                raise
        # A locking read: it sees the duplicate even when a concurrent writer committed it
        # after this transaction's snapshot.
        row = await tx.fetchone(
            "SELECT id FROM albums WHERE artist_id = %s AND title_canon = %s LOCK IN SHARE MODE",
            (artist_id, title.lower()),
        )
        assert row is not None
        return int(row["id"]), False

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
        listed = await self.album_page(filters, order, PageSpec(limit, offset))
        return listed.rows, listed.total

    async def album_page(self, filters: dict[str, Any], order: str, spec: PageSpec) -> Listed:
        """A page of albums, filtered, in `order`, with the total and the last row's key."""
        total, estimated = await self.album_total(filters)
        used = self._deep(spec, total, estimated)
        return await self._page(album_ids_sql(filters, order, used), used, total, estimated,
                                ALBUM_ORDERS[order], self.album_rows)

    async def album_total(self, filters: dict[str, Any]) -> tuple[int, bool]:
        """How many albums match: maintained figures where one fits, else a capped count."""
        used = {k for k, value in filters.items() if value}
        if not used:
            return await self.total("albums"), False
        if used == {"artist_id"}:
            value = await self.db.fetchval(
                "SELECT album_count FROM artists WHERE id = %s", (filters["artist_id"],))
            return int(value or 0), False
        where, params = album_filter_sql(filters)
        return await self._capped_count("albums al", where, params)

    async def album_rows(self, ids: list[int]) -> list[Row]:
        """The albums of `ids` (in no order; ids that are gone are left out)."""
        return await self.db.fetchall(*rows_sql(ALBUM_SELECT, "al", ids))

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

    async def insert_song(self, tx: Tx, fields: dict[str, Any]) -> int:
        columns = list(fields)
        marks = ", ".join(["%s"] * len(columns))
        return await tx.execute(
            f"INSERT INTO songs ({', '.join(columns)}) VALUES ({marks})",
            tuple(fields[c] for c in columns),
        )

    async def insert_songs(self, tx: Tx, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Several songs (the same columns each) in one statement; their ids in the rows' order,
        read back by content hash (unique), so nothing assumes the ids came out consecutive."""
        columns = list(rows[0])
        if any(list(r) != columns for r in rows):
            raise ValueError("the rows of one insert have the same columns")
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
        await tx.execute(
            f"INSERT INTO songs ({', '.join(columns)}) VALUES {', '.join([one] * len(rows))}",
            tuple(r[c] for r in rows for c in columns),
        )
        found = await tx.fetchall(
            f"SELECT id, sha256 FROM songs WHERE sha256 IN ({', '.join(['%s'] * len(rows))})",
            tuple(r["sha256"] for r in rows))
        ids = {r["sha256"]: int(r["id"]) for r in found}
        return [ids[r["sha256"]] for r in rows]

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
            "SELECT id, title, file_path, in_place, album_id, artist_id FROM songs"
            " WHERE id = %s FOR UPDATE",
            (song_id,),
        )
        if row:
            await tx.execute("DELETE FROM songs WHERE id = %s", (song_id,))
        return row

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
        listed = await self.song_page(filters, order, PageSpec(limit, offset))
        return listed.rows, listed.total

    async def song_page(self, filters: dict[str, Any], order: str, spec: PageSpec) -> Listed:
        """A page of songs, filtered, in `order`: ids from an index, then those rows (a deferred
        join), with the total (see `song_total`) and the last row's key."""
        total, estimated = await self.song_total(filters)
        keys = SONG_ORDERS[order]
        if total >= 0:
            used = self._deep(spec, total, estimated)
            return await self._page(song_ids_sql(filters, order, used), used, total, estimated,
                                    keys, self._song_rows)
        # A search over the whole catalogue, which no index counts: one row more than the page
        # says whether more follow, and the total is what is known so far (an estimate).
        ask = PageSpec(spec.limit + 1, spec.offset, spec.after, spec.reverse)
        listed = await self._page(song_ids_sql(filters, order, ask), ask, 0, True, keys,
                                  self._song_rows)
        more = len(listed.rows) > spec.limit
        names = [c.split(".", 1)[1] for c, _ in keys]
        if more and spec.reverse:  # read backwards, the extra row is the first
            listed.rows = listed.rows[1:]
            listed.first_key = tuple(listed.rows[0][n] for n in names)
        elif more:
            listed.rows = listed.rows[:spec.limit]
            listed.last_key = tuple(listed.rows[-1][n] for n in names)
        elif not spec.reverse:
            listed.last_key = None  # nothing follows: no cursor
        listed.total = spec.offset + len(listed.rows) + (1 if more else 0)
        return listed

    async def song_total(self, filters: dict[str, Any]) -> tuple[int, bool]:
        """How many songs match: a maintained figure for no filter or one of artist, album,
        genre or year; a capped count when another filter bounds the rows; -1 (estimated) for a
        text search over the whole catalogue, which no index can count."""
        used = {k for k, value in filters.items() if value}
        if not used:
            return await self.total("songs"), False
        one = {
            "artist_id": "SELECT song_count FROM artists WHERE id = %s",
            "album_id": "SELECT song_count FROM albums WHERE id = %s",
            "year": "SELECT songs FROM year_song_counts WHERE year = %s",
            "genre": "SELECT SUM(songs) FROM genre_song_counts WHERE LOWER(genre) = %s",
        }
        if len(used) == 1 and (key := next(iter(used))) in one:
            value = filters[key].lower() if key == "genre" else filters[key]
            return int(await self.db.fetchval(one[key], (value,)) or 0), False
        if "q" in used and not used & {"artist_id", "album_id", "ids"}:
            return -1, True
        where, params = song_filter_sql(filters)
        return await self._capped_count("songs s", where, params)

    async def album_with_songs(self, album_id: int, limit: int) -> str | None:
        """An album and its first `limit` songs as one JSON array (ALBUM_FIELDS, then an array of
        songs, ALBUM_SONG_FIELDS each, in play order), None when there is no such album: one
        statement, one value to parse. The songs' part is cut (invalid JSON) past the session's
        group_concat_max_len; `album` and `album_songs` read such an album as rows."""
        value = await self.db.fetchval(ALBUM_WITH_SONGS_JSON, (limit, album_id))
        return None if value is None else str(value)

    async def album_songs(self, album_id: int, limit: int) -> list[Row]:
        """An album's songs in play order, read in one statement along its (album, disc, track)
        index."""
        return await self.db.fetchall(*album_songs_sql(album_id, limit))

    async def _song_rows(self, ids: list[int]) -> list[Row]:
        return await self.db.fetchall(*rows_sql(SONG_SELECT, "s", ids))

    async def songs_by_id(self, after_id: int, limit: int) -> list[Row]:
        """Every song in id order, `limit` at a time after `after_id` (a listing with no query,
        as Subsonic's search3 asks for it, paged by the primary key)."""
        ids = await self.db.fetchall(*song_ids_sql({}, "id", PageSpec(limit, after=(after_id,))))
        keys = [int(r["id"]) for r in ids]
        return _in_order(await self._song_rows(keys), keys) if keys else []

    async def song_id_at(self, position: int, total: int) -> int:
        """The id of the song at `position` (from 0) in id order, or -1 past the end; counted
        along the primary key from whichever end of the catalogue is nearer."""
        if position >= total:
            return -1
        # The block holding it, from the maintained counts (sql/0012), then counted inside that
        # block along ix_songs_position (sql/0010), whose entries are the ids and a constant: the
        # primary key's leaves are whole rows.
        blocks = await self.db.fetchall("SELECT block, songs FROM song_id_blocks WHERE songs > 0"
                                        " ORDER BY block")
        before = 0
        for row in blocks:
            if position < before + int(row["songs"]):
                block, at = int(row["block"]), position - before
                value = await self.db.fetchval(
                    "SELECT id FROM songs FORCE INDEX (ix_songs_position) WHERE position_key = 0"
                    " AND id >= %s AND id < %s ORDER BY id LIMIT 1 OFFSET %s",
                    (block * ID_BLOCK, (block + 1) * ID_BLOCK, at))
                if value is not None:
                    return int(value)
                break  # the counts are behind the rows (a bulk load before repair-counts)
            before += int(row["songs"])
        return await self._counted_id_at(position, total)

    async def _counted_id_at(self, position: int, total: int) -> int:
        """`song_id_at` by counting from the nearer end, for when the block counts are off."""
        order, at = ("", position) if position < total - position else ("DESC", total - 1 - position)
        sql = (f"SELECT id FROM songs FORCE INDEX (ix_songs_position) WHERE position_key = 0"
               f" ORDER BY id {order} LIMIT 1 OFFSET %s")
        value = await self.db.fetchval(sql, (at,))
        return -1 if value is None else int(value)

    async def artist_index(self) -> list[list[Any]]:
        """Every artist by name with its album count (Subsonic's artist index): each as
        `[id, name, image_id, album_count, name_canon]`, 20,000 of them too many for a dict
        apiece on the way to the caller's own shape."""
        async with self.db.session() as session:
            # A session's own limit: JSON_ARRAYAGG is cut at group_concat_max_len (1 MiB here
            # by default, some 25,000 artists).
            await session.execute("SET SESSION group_concat_max_len = %s", (INDEX_MAX_BYTES,))
            raw = await session.fetchval(artist_index_sql())
        found: list[list[Any]] = orjson.loads(raw) if raw else []
        # The name index's order, name_canon then id: two stable sorts on one key each cost a
        # third of one sort on the pair (the first is nearly free: the table comes in id order).
        found.sort(key=itemgetter(0))
        found.sort(key=itemgetter(4))
        return found

    async def genres(self) -> list[Row]:
        """Genres by song count (maintained per genre as spelled)."""
        return await self.db.fetchall(
            "SELECT genre, songs FROM genre_song_counts WHERE songs > 0"
            " ORDER BY songs DESC, genre LIMIT 200"
        )

    async def years(self) -> list[Row]:
        """Years, newest first, with their song counts (maintained per year)."""
        return await self.db.fetchall(
            "SELECT year, songs FROM year_song_counts WHERE songs > 0 ORDER BY year DESC LIMIT 200"
        )

    async def counts(self) -> dict[str, int]:
        """The library totals, as maintained in catalog_totals."""
        row = await self.db.fetchone(
            "SELECT songs, albums, artists, bytes, duration_ms FROM catalog_totals WHERE id = 1"
        )
        assert row is not None
        return {k: int(v) for k, v in row.items()}

    async def repair_counts(self, tx: Tx) -> dict[str, int]:
        """Recompute every maintained count and sum from the rows (`repair-counts`); returns how
        many rows of each figure were wrong."""
        fixed: dict[str, int] = {}
        for name, sql in REPAIRS:
            fixed[name] = fixed.get(name, 0) + await tx.rowcount(sql)
        return fixed

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

    async def album_ids_by_artist(self, limit: int, offset: int) -> list[int]:
        """A page of album ids by artist name, then title."""
        return [int(r["id"]) for r in await self.db.fetchall(*albums_by_artist_sql(limit, offset))]

    async def album_ids_by_years(self, first: int, last: int, limit: int, offset: int
                                 ) -> list[int]:
        """A page of album ids from year `first` to `last` (either direction)."""
        query = albums_by_years_sql(first, last, limit, offset)
        return [int(r["id"]) for r in await self.db.fetchall(*query)]

    async def genre_album_counts(self) -> dict[str, int]:
        """How many albums each genre has (by its lower-case name), read along a genre index."""
        rows = await self.db.fetchall(GENRE_ALBUMS_SQL)
        return {str(r["genre"]): int(r["albums"]) for r in rows}

    async def artist_id_by_name(self, name: str) -> int | None:
        """The artist of that name, in any letter case."""
        value = await self.db.fetchval("SELECT id FROM artists WHERE name_canon = %s",
                                       (name.lower(),))
        return int(value) if value is not None else None

    async def id_bounds(self, table: str) -> tuple[int, int] | None:
        """The lowest and highest id of `songs` or `albums` (the ends of the primary key), or
        None when the table is empty."""
        assert table in RANDOM_TABLES
        row = await self.db.fetchone(f"SELECT MIN(id) AS lo, MAX(id) AS hi FROM {table}")
        if row is None or row["lo"] is None:
            return None
        return int(row["lo"]), int(row["hi"])

    async def existing_ids(self, table: str, ids: Sequence[int]) -> list[int]:
        """Those of `ids` that are rows of `songs` or `albums` (primary key lookups)."""
        if not ids:
            return []
        return [int(r["id"]) for r in await self.db.fetchall(*existing_ids_sql(table, ids))]

    async def ids_from(self, table: str, start: int, limit: int) -> list[int]:
        """Up to `limit` ids of `songs` or `albums` from `start` on, along the primary key."""
        return [int(r["id"]) for r in await self.db.fetchall(*ids_from_sql(table, start, limit))]

    async def album_id_by_title(self, artist_id: int, title: str) -> int | None:
        """The artist's album with this title (case-insensitively), if any."""
        value = await self.db.fetchval(
            "SELECT id FROM albums WHERE artist_id = %s AND title_canon = %s", (artist_id, title.lower()),
        )
        return int(value) if value is not None else None
