"""A library the size the big self-hosters have, as rows (no files): artists, albums, songs,
featured artists, listeners and plays, and for every page to have something to show, playlists
with entries (one of 5,000), each listener's liked songs, saved albums and followed artists, and
the audit log, generated inside MariaDB from its `seq_1_to_N` tables in a few minutes. Used by
`bench/scale.py` (issue 12) and by hand:

    .venv/bin/python -m bench.scale_data --songs 1000000 --database sonora_scale

The shape follows a real library: about 12 songs an album and 4 albums an artist, 20 genres,
75 years, one song in 20 with a featured artist, play counts skewed towards a few songs, plays
spread over the last year. Titles are `Song <n> <word>` so a search for `Song 777` finds a handful.
The listeners (`listener1`...) cannot log in (no password); `give_listener_data` hands one's rows
to an account made with `python -m app create-user`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

from app.repos.db import Database
from app.repos.migrate import migrate
from bench.common import MYSQL_URL, admin_sql

GENRES = ("Rock", "Pop", "Jazz", "Blues", "Classical", "Electronic", "Hip-Hop", "Folk", "Metal",
          "Soul", "Reggae", "Country", "Punk", "Funk", "Ambient", "Latin", "World", "R&B", "Indie",
          "Soundtrack")
WORDS = ("harbour", "lights", "quiet", "yesterday", "morning", "river", "golden", "silver",
         "shadow", "dancing", "summer", "winter", "midnight", "ocean", "thunder", "velvet",
         "crimson", "electric", "paper", "garden")
CHUNK = 100_000  # rows per INSERT ... SELECT: bounded transactions, steady memory
BIG_PLAYLIST = 5_000
AUDIT_ACTIONS = (("song.uploaded", "song", "uploaded Song "), ("song.updated", "song", "updated song Song "),
                 ("album.updated", "album", "updated album Album "),
                 ("artist.created", "artist", "created artist Artist "),
                 ("song.deleted", "song", "deleted song Song "),
                 ("user.role_changed", "user", "changed the role of listener"),
                 ("playlist.deleted", "playlist", "deleted playlist Playlist "),
                 ("catalog.imported", "song", "imported Song "))


@dataclass(frozen=True)
class Size:
    songs: int
    albums: int
    artists: int
    listeners: int = 50
    plays: int = 200_000
    playlists: int = 300  # playlist 1 holds BIG_PLAYLIST entries, the others 20 to 199
    likes: int = 2_000  # liked songs per listener (and a tenth as many saved albums, followed artists)
    audit: int = 100_000  # audit_log rows

    @classmethod
    def for_songs(cls, songs: int) -> Size:
        """The issue's proportions: 1,000,000 songs, 80,000 albums, 20,000 artists."""
        return cls(songs=songs, albums=max(1, songs * 2 // 25), artists=max(1, songs // 50),
                   plays=min(200_000, songs // 5 or 1), likes=min(2_000, songs // 100 or 1),
                   audit=min(100_000, max(1_000, songs // 10)))


def _elt(values: tuple[str, ...], expr: str) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"ELT(1 + ({expr}) % {len(values)}, {quoted})"


def statements(size: Size) -> list[str]:
    """The INSERT ... SELECT statements that fill an empty, migrated database."""
    s = size
    out = [
        f"INSERT INTO artists (id, name, name_canon, created_at) SELECT seq, CONCAT('Artist ', seq),"
        f" CONCAT('artist ', seq), NOW(6) - INTERVAL ({s.artists} - seq) MINUTE"
        f" FROM seq_1_to_{s.artists}",
    ]
    for lo in range(1, s.albums + 1, CHUNK):
        hi = min(s.albums, lo + CHUNK - 1)
        out.append(
            "INSERT INTO albums (id, title, title_canon, artist_id, album_type, year, genre, created_at)"
            f" SELECT seq, CONCAT('Album ', seq), CONCAT('album ', seq), 1 + (seq - 1) % {s.artists},"
            f" ELT(1 + seq % 7, 'album', 'album', 'album', 'single', 'ep', 'album', 'compilation'),"
            f" 1950 + seq % 75, {_elt(GENRES, 'seq')},"
            f" NOW(6) - INTERVAL ({s.albums} - seq) * 7 MINUTE FROM seq_{lo}_to_{hi}")
    # Songs fill their albums in order (about 12 each); the album's artist is the song's.
    album_of = f"(1 + FLOOR((seq - 1) * {s.albums} / {s.songs}))"
    for lo in range(1, s.songs + 1, CHUNK):
        hi = min(s.songs, lo + CHUNK - 1)
        out.append(
            "INSERT INTO songs (id, title, artist_id, album_id, track_number, disc_number, duration_ms,"
            " bitrate, sample_rate, codec, mime_type, size, sha256, file_path, genre, year, explicit,"
            " play_count, created_at)"
            f" SELECT seq, CONCAT('Song ', seq, ' ', {_elt(WORDS, 'seq * 7')}),"
            f" 1 + ({album_of} - 1) % {s.artists}, {album_of}, 1 + (seq - 1) % 12, 1,"
            f" 120000 + (seq * 7919) % 240000, 320000, 44100, 'mp3', 'audio/mpeg',"
            f" 4000000 + seq % 1000000, SHA2(seq, 256), CONCAT('gen/', seq, '.mp3'),"
            f" {_elt(GENRES, album_of)}, 1950 + {album_of} % 75, seq % 11 = 0,"
            # Skewed: most songs were played a little, a few a lot.
            f" IF(seq % 97 = 0, 1000 + seq % 5000, seq % 13),"
            f" NOW(6) - INTERVAL ({s.songs} - seq) MINUTE FROM seq_{lo}_to_{hi}")
        out.append(
            "INSERT INTO song_artists (song_id, artist_id, position)"
            f" SELECT seq, 1 + ((1 + ({album_of} - 1) % {s.artists}) % {s.artists}), 1"
            f" FROM seq_{lo}_to_{hi} WHERE seq % 20 = 0 AND {s.artists} > 1")
    out.append(
        "INSERT INTO users (email, email_canon, username, username_canon, display_name,"
        " password_hash, role) SELECT CONCAT('listener', seq, '@scale.invalid'),"
        " CONCAT('listener', seq, '@scale.invalid'), CONCAT('listener', seq), CONCAT('listener', seq),"
        " CONCAT('Listener ', seq), '!', 'member'"
        f" FROM seq_1_to_{s.listeners}")
    for lo in range(1, s.plays + 1, CHUNK):
        hi = min(s.plays, lo + CHUNK - 1)
        out.append(
            "INSERT INTO plays (user_id, song_id, play_id, played_ms, played_at)"
            f" SELECT u.id, 1 + (seq * 104729) % {s.songs}, CONCAT('scale-', seq), 60000,"
            f" UTC_TIMESTAMP(6) - INTERVAL (seq * 31) % 525600 MINUTE"
            f" FROM seq_{lo}_to_{hi} JOIN users u ON u.username_canon = {_listener('seq', s)}")
    # What the app keeps beside each play (sql/0008): the song's artist at play time.
    out.append("UPDATE plays p JOIN songs s ON s.id = p.song_id SET p.artist_id = s.artist_id"
               " WHERE p.artist_id IS NULL")
    return out + library_statements(size)


def _listener(n_expr: str, s: Size) -> str:
    return f"CONCAT('listener', 1 + ({n_expr}) % {s.listeners})"


def library_statements(size: Size) -> list[str]:
    """Playlists with entries, each listener's library, the audit log (after `statements`'
    users and songs; ids of songs, albums and artists are 1..N as generated)."""
    s = size
    most = max(BIG_PLAYLIST, 199)
    out = [
        # A third private, the rest public; owned round-robin by the listeners.
        "INSERT INTO playlists (id, owner_id, name, description, is_public, created_at, updated_at)"
        f" SELECT seq, u.id, CONCAT('Playlist ', seq, ' ', {_elt(WORDS, 'seq * 3')}),"
        " CONCAT('Generated playlist ', seq), seq % 3 <> 0,"
        f" NOW(6) - INTERVAL seq * 97 MINUTE, NOW(6) - INTERVAL seq * 13 MINUTE"
        f" FROM seq_1_to_{s.playlists} JOIN users u ON u.username_canon = {_listener('seq - 1', s)}",
        "INSERT INTO playlist_songs (playlist_id, sort_key, song_id, added_by, added_at)"
        f" SELECT p.id, q.seq * 1048576, 1 + (p.id * 7919 + q.seq * 104729) % {s.songs}, p.owner_id,"
        " p.created_at + INTERVAL q.seq MINUTE"
        f" FROM playlists p JOIN seq_1_to_{most} q"
        f" ON q.seq <= IF(p.id = 1, {BIG_PLAYLIST}, 20 + (p.id * 37) % 180)",
        # Each listener follows a few public playlists of others.
        "INSERT IGNORE INTO followed_playlists (user_id, item_id, added_at)"
        " SELECT u.id, p.id, p.created_at FROM users u JOIN playlists p"
        " ON p.is_public = 1 AND p.owner_id <> u.id AND (p.id + u.id) % 25 = 0"
        " WHERE u.username_canon LIKE 'listener%'",
    ]
    for table, count, modulo, prime in (("liked_songs", s.likes, s.songs, 104729),
                                        ("saved_albums", max(1, s.likes // 10), s.albums, 7919),
                                        ("followed_artists", max(1, s.likes // 10), s.artists, 613)):
        out.append(
            f"INSERT IGNORE INTO {table} (user_id, item_id, added_at)"
            f" SELECT u.id, 1 + (u.id * 15485863 + q.seq * {prime}) % {modulo},"
            " UTC_TIMESTAMP(6) - INTERVAL q.seq * 67 MINUTE"
            f" FROM users u JOIN seq_1_to_{count} q WHERE u.username_canon LIKE 'listener%'")
    for lo in range(1, s.audit + 1, CHUNK):
        hi = min(s.audit, lo + CHUNK - 1)
        out.append(
            "INSERT INTO audit_log (event_id, actor_id, actor_username, action, target_type,"
            " target_id, summary, details, occurred_at)"
            f" SELECT UUID(), NULL, 'scale-admin', {_elt(tuple(a[0] for a in AUDIT_ACTIONS), 'seq')},"
            f" {_elt(tuple(a[1] for a in AUDIT_ACTIONS), 'seq')}, 1 + seq % {s.songs},"
            f" CONCAT({_elt(tuple(a[2] for a in AUDIT_ACTIONS), 'seq')}, 1 + seq % {s.songs}),"
            f" '{{}}', UTC_TIMESTAMP(6) - INTERVAL ({s.audit} - seq) * 5 MINUTE FROM seq_{lo}_to_{hi}")
    # The audit log's maintained totals per action (sql/0008), as the app keeps them.
    out.append("INSERT INTO audit_action_counts (action, entries) SELECT action, COUNT(*)"
               " FROM audit_log GROUP BY action ON DUPLICATE KEY UPDATE entries = VALUES(entries)")
    return out


USER_TABLES = (("plays", "user_id"), ("liked_songs", "user_id"), ("saved_albums", "user_id"),
               ("followed_artists", "user_id"), ("followed_playlists", "user_id"),
               ("playlists", "owner_id"), ("playlist_songs", "added_by"))


async def give_listener_data(database: str, username: str, listener: int = 1, *,
                             mysql_url: str = MYSQL_URL) -> None:
    """Hand `listener<listener>`'s plays, library and playlists to the account `username` (one
    made with `python -m app create-user`, which can log in)."""
    db = Database(f"{mysql_url}/{database}", maxsize=1)
    await db.connect()
    try:
        to = await db.fetchval("SELECT id FROM users WHERE username_canon = %s", (username.lower(),))
        src = await db.fetchval("SELECT id FROM users WHERE username_canon = %s", (f"listener{listener}",))
        if to is None or src is None:
            raise ValueError(f"no user {username!r} or listener{listener} in {database}")
        for table, column in USER_TABLES:
            await db.execute(f"UPDATE {table} SET {column} = %s WHERE {column} = %s", (to, src))
    finally:
        await db.close()


async def drop_triggers(db: Database, database: str) -> list[tuple[str, str]]:
    """Drop the database's triggers; returns each one's sql_mode and CREATE statement, in order."""
    names = await db.fetchall(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s"
        " ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER", (database,))
    out = []
    for row in names:
        name = row["TRIGGER_NAME"]
        shown = await db.fetchone(f"SHOW CREATE TRIGGER `{name}`")
        assert shown is not None
        out.append((str(shown["sql_mode"]), str(shown["SQL Original Statement"])))
        await db.execute(f"DROP TRIGGER `{name}`")
    return out


async def restore_triggers(db: Database, triggers: list[tuple[str, str]]) -> None:
    async with db.session() as tx:
        for sql_mode, create in triggers:
            await tx.execute("SET SESSION sql_mode = %s", (sql_mode,))
            await tx.execute(create)


async def _repair_counts(url: str) -> object:
    """The catalogue's maintained counts recomputed by the app's own service method."""
    from app.cli.context import catalog_context
    from app.config import load_config

    config = load_config(environ={}, env_file=None, database_url=url, redis_url="", amqp_url="")
    async with catalog_context(config) as services:
        repair = getattr(services.catalog, "repair_counts", None)
        if repair is None:
            print("  warning: no CatalogService.repair_counts: maintained counts left at 0")
            return None
        return await repair()


async def generate(database: str, size: Size, *, mysql_url: str = MYSQL_URL,
                   progress: bool = True) -> float:
    """Drop `database`, migrate it afresh and fill it; returns the seconds taken."""
    started = time.monotonic()
    await admin_sql(f"DROP DATABASE IF EXISTS `{database}`", mysql_url)
    db = Database(f"{mysql_url}/{database}", maxsize=2)
    await db.connect()
    try:
        await migrate(db)
        # Row triggers (the maintained counts of sql/0007) make a bulk load ~9× slower: they are
        # set aside for the load, put back as they were, and the counts recomputed from the rows.
        triggers = await drop_triggers(db, database)
        try:
            for sql in statements(size):
                t0 = time.monotonic()
                await db.execute(sql)
                if progress:
                    print(f"  {time.monotonic() - t0:6.1f} s  {sql[:70]}...", flush=True)
        finally:
            await restore_triggers(db, triggers)
        if triggers:
            t0 = time.monotonic()
            fixed = await _repair_counts(f"{mysql_url}/{database}")
            if progress:
                print(f"  {time.monotonic() - t0:6.1f} s  {len(triggers)} triggers put back,"
                      f" counts recomputed: {fixed}", flush=True)
        await db.execute("ANALYZE TABLE artists, albums, songs, song_artists, plays, users, playlists,"
                         " playlist_songs, liked_songs, saved_albums, followed_artists,"
                         " followed_playlists, audit_log")
    finally:
        await db.close()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=1_000_000)
    parser.add_argument("--database", default="sonora_scale")
    args = parser.parse_args()
    size = Size.for_songs(args.songs)
    print(f"generating {size} into {args.database}", flush=True)
    seconds = asyncio.run(generate(args.database, size))
    print(f"done in {seconds:.0f} s")


if __name__ == "__main__":
    main()
