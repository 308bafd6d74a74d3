"""A library the size the big self-hosters have, as rows (no files): artists, albums, songs,
featured artists, listeners and plays, generated inside MariaDB from its `seq_1_to_N` tables in a
few minutes. Used by `bench/scale.py` (issue 12) and by hand:

    .venv/bin/python -m bench.scale_data --songs 1000000 --database sonora_scale

The shape follows a real library: about 12 songs an album and 4 albums an artist, 20 genres,
75 years, one song in 20 with a featured artist, play counts skewed towards a few songs, plays
spread over the last year. Titles are `Song <n> <word>` so a search for `Song 777` finds a handful.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

import aiomysql

from app.repos.db import Database, DbTarget
from app.repos.migrate import migrate

MYSQL_URL = "mysql://root@127.0.0.1:3306"
GENRES = ("Rock", "Pop", "Jazz", "Blues", "Classical", "Electronic", "Hip-Hop", "Folk", "Metal",
          "Soul", "Reggae", "Country", "Punk", "Funk", "Ambient", "Latin", "World", "R&B", "Indie",
          "Soundtrack")
WORDS = ("harbour", "lights", "quiet", "yesterday", "morning", "river", "golden", "silver",
         "shadow", "dancing", "summer", "winter", "midnight", "ocean", "thunder", "velvet",
         "crimson", "electric", "paper", "garden")
CHUNK = 100_000  # rows per INSERT ... SELECT: bounded transactions, steady memory


@dataclass(frozen=True)
class Size:
    songs: int
    albums: int
    artists: int
    listeners: int = 50
    plays: int = 200_000

    @classmethod
    def for_songs(cls, songs: int) -> Size:
        """The issue's proportions: 1,000,000 songs, 80,000 albums, 20,000 artists."""
        return cls(songs=songs, albums=max(1, songs * 2 // 25), artists=max(1, songs // 50),
                   plays=min(200_000, songs // 5 or 1))


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
            f" FROM seq_{lo}_to_{hi} JOIN users u ON u.username_canon = CONCAT('listener', 1 + seq % {s.listeners})")
    return out


async def _admin(sql: str) -> None:
    t = DbTarget.parse(f"{MYSQL_URL}/x")
    conn = await aiomysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                  autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
    finally:
        conn.close()


async def generate(database: str, size: Size, *, mysql_url: str = MYSQL_URL,
                   progress: bool = True) -> float:
    """Drop `database`, migrate it afresh and fill it; returns the seconds taken."""
    started = time.monotonic()
    await _admin(f"DROP DATABASE IF EXISTS `{database}`")
    db = Database(f"{mysql_url}/{database}", maxsize=2)
    await db.connect()
    try:
        await migrate(db)
        for sql in statements(size):
            t0 = time.monotonic()
            await db.execute(sql)
            if progress:
                print(f"  {time.monotonic() - t0:6.1f} s  {sql[:70]}...", flush=True)
        await db.execute("ANALYZE TABLE artists, albums, songs, song_artists, plays, users")
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
