"""Listening: play reports, the history, personal tops and stats, and global charts."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from app import events
from app.adapters.cache import Cache
from app.errors import InvalidInput, NotFound
from app.repos.db import Database, Tx
from app.repos.listening import ListeningRepo
from app.services.catalog import CatalogService
from app.services.types import Album, DayPlays, HistoryEntry, RecentPlay, Song, Stats, TopSong
from app.services.validation import rfc3339

PERIODS = {"day": 1, "week": 7, "month": 30, "year": 365, "all": None}
PLAY_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
THRESHOLD_MS = 30_000
# Everyone's charts of these periods group tens of thousands to millions of plays: they are kept
# in MySQL (listening_charts) and recomputed by the first request that finds them this old. The
# day's and the week's are read live from ix_plays_time_song (a week's plays at most).
SNAPSHOT_PERIODS = ("month", "year", "all")
CHART_SNAPSHOT_SECONDS = 300
CHART_DEPTH = 100  # the longest chart the API serves (its `limit` maximum)
ALBUM_SOURCE_MAX = 5000  # the most songs a list of frequent or recent albums is read from


def counts(played_ms: int, duration_ms: int) -> bool:
    """A play counts after 30 seconds, or half of a shorter song (SPEC 7)."""
    return played_ms >= min(THRESHOLD_MS, duration_ms // 2)


# A scrobble's `time` is kept as given when it lies in this window (apps replay offline plays
# days later); one outside it (a clock at 1970, a typo) is taken as now.
SCROBBLE_EARLIEST = dt.datetime(2000, 1, 1)
SCROBBLE_AHEAD = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _scrobbled_at(time_ms: int | None, now: dt.datetime) -> dt.datetime:
    """When a scrobbled song was listened to: its `time`, or `now` when absent or implausible."""
    if time_ms is None:
        return now
    try:
        at = dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return now
    return at if SCROBBLE_EARLIEST <= at <= now + SCROBBLE_AHEAD else now


def since(period: str) -> dt.datetime | None:
    if period not in PERIODS:
        raise InvalidInput(details={"fields": {"period": "must be day, week, month, year or all"}})
    days = PERIODS[period]
    return None if days is None else dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=days)


class ListeningService:
    def __init__(self, db: Database, cache: Cache, catalog: CatalogService) -> None:
        self.db = db
        self.cache = cache
        self.catalog = catalog
        self.repo = ListeningRepo(db)

    async def report(self, user_id: int, body: dict[str, Any]) -> bool:
        """A player's play report; when it counts, `play.recorded` goes through the outbox.
        Players report a listen again with the same play_id as it goes on (at the end, on a
        skip, when the page is left): the play is counted once, its time is the longest sent."""
        song_id: Any = body.get("song_id")
        played_ms: Any = body.get("played_ms")
        play_id: Any = body.get("play_id")
        fields = {}
        if isinstance(song_id, bool) or not isinstance(song_id, int) or song_id < 1:
            fields["song_id"] = "must be a song id"
        if isinstance(played_ms, bool) or not isinstance(played_ms, int) or not 0 <= played_ms <= 86_400_000:
            fields["played_ms"] = "must be milliseconds from 0 to 86400000"
        if not isinstance(play_id, str) or not PLAY_ID.match(play_id):
            fields["play_id"] = "1 to 64 letters, digits or . _ : -"
        if fields:
            raise InvalidInput(details={"fields": fields})
        song = await self.catalog.song(int(song_id))  # 404 for an unknown song
        if not counts(played_ms, int(song["duration_ms"])):
            return False
        await self._recorded(user_id, [(int(song_id), str(play_id), int(played_ms), _now())])
        return True

    async def scrobble(self, user_id: int, plays: list[tuple[int, int | None]]) -> None:
        """Plays an app reports as listened to (Subsonic `scrobble`, submission=true): each
        `(song_id, time_ms)`, `time_ms` when it was listened to (ms since 1970, None: now).
        The app has already judged the listen long enough, so each counts as a whole listen; the
        play id is made of the song and the time, so an app sending the same scrobble again
        (retries, an offline queue replayed) never counts it twice. Every song is checked first
        (404: none is recorded), then all go through the same event as `report`, together."""
        durations: dict[int, int] = {}
        for song_id, _ in plays:
            if song_id not in durations:
                durations[song_id] = int((await self.catalog.song(song_id))["duration_ms"])
        now = _now()
        now_ms = int(now.replace(tzinfo=dt.UTC).timestamp() * 1000)
        recorded: list[tuple[int, str, int, dt.datetime]] = []
        for song_id, time_ms in plays:
            stamp = now_ms if time_ms is None else time_ms
            recorded.append((song_id, f"scrobble:{song_id}:{stamp}", durations[song_id],
                             _scrobbled_at(time_ms, now)))
        await self._recorded(user_id, recorded)

    async def _recorded(self, user_id: int, plays: list[tuple[int, str, int, dt.datetime]]) -> None:
        """`play.recorded` for each (song_id, play_id, played_ms, played_at), in one
        transaction through the outbox (the play_counts consumer counts each once)."""
        async with self.db.transaction() as tx:
            for song_id, play_id, played_ms, played_at in plays:
                await events.emit(tx, events.PlayRecorded(
                    user_id=user_id, song_id=song_id, play_id=play_id, played_ms=played_ms,
                    played_at=played_at))

    async def apply(self, tx: Tx, envelope: dict[str, Any]) -> None:
        """The `play_counts` consumer's effect: history row and count, once per user and play_id;
        a later report of the same listen raises its listening time (see ListeningRepo.record)."""
        data = envelope["data"]
        played_at = events.parse_rfc3339(data["played_at"])
        await self.repo.record(tx, int(data["user_id"]), int(data["song_id"]), str(data["play_id"]),
                               int(data["played_ms"]), played_at)

    async def after_apply(self, envelope: dict[str, Any]) -> None:
        song_id = int(envelope["data"]["song_id"])
        await self.cache.changed([f"song:{song_id}"], ["charts"])

    async def _songs(self, ids: list[int]) -> dict[int, Song]:
        if not ids:
            return {}
        items, _ = await self.catalog.songs({"ids": ids}, len(ids), 0)
        return {s["id"]: s for s in items}

    async def history(self, user_id: int, limit: int, offset: int) -> tuple[list[HistoryEntry], int]:
        """A page of the user's plays, newest first, with the total."""
        rows, total = await self.repo.history(user_id, limit, offset)
        songs = await self._songs(sorted({r["song_id"] for r in rows}))
        items: list[HistoryEntry] = [
            {"played_at": rfc3339(r["played_at"]), "played_ms": r["played_ms"],
             "play_id": r["play_id"], "song": songs[r["song_id"]]}
            for r in rows if r["song_id"] in songs
        ]
        return items, total

    async def clear(self, user_id: int) -> None:
        await self.repo.clear(user_id)

    async def recent(self, user_id: int, limit: int = 20) -> list[RecentPlay]:
        """The songs the user played last, each once, newest first: the plays are read newest
        first a page at a time until `limit` songs are found, never all of them."""
        latest: dict[int, dt.datetime] = {}
        before: tuple[dt.datetime, int] | None = None
        page = max(limit * 4, 50)
        while len(latest) < limit:
            rows = await self.repo.recent_plays(user_id, page, before)
            for r in rows:
                latest.setdefault(int(r["song_id"]), r["played_at"])
            if len(rows) < page:
                break
            before = (rows[-1]["played_at"], int(rows[-1]["id"]))
            page = min(page * 4, 5000)
        chosen = list(latest.items())[:limit]
        songs = await self._songs([song_id for song_id, _ in chosen])
        return [{"played_at": rfc3339(at), "song": songs[song_id]}
                for song_id, at in chosen if song_id in songs]

    async def top_songs(self, user_id: int | None, period: str, limit: int) -> list[TopSong]:
        """The most played songs of a period: the user's, or everyone's (`user_id` None)."""
        rows = await self.repo.top_songs(user_id, since(period), limit)
        songs = await self._songs([r["song_id"] for r in rows])
        return [{"plays": int(r["plays"]), "song": songs[r["song_id"]]}
                for r in rows if r["song_id"] in songs]

    async def top_albums(self, user_id: int, limit: int, offset: int = 0) -> list[Album]:
        """The albums of the user's most played songs, most played first (Subsonic's `frequent`
        album list): read from their top songs, as many as the page needs."""
        return await self._albums_of([t["song"] for t in await self.top_songs(
            user_id, "all", min(ALBUM_SOURCE_MAX, (offset + limit) * 4))], limit, offset)

    async def recent_albums(self, user_id: int, limit: int, offset: int = 0) -> list[Album]:
        """The albums the user played last, newest first (Subsonic's `recent` album list)."""
        return await self._albums_of([r["song"] for r in await self.recent(
            user_id, min(ALBUM_SOURCE_MAX, (offset + limit) * 4))], limit, offset)

    async def _albums_of(self, songs: list[Song], limit: int, offset: int) -> list[Album]:
        ids = list(dict.fromkeys(s["album_id"] for s in songs if s["album_id"]))[offset:offset + limit]
        found = await self.catalog.albums_by_ids(ids)
        return [found[i] for i in ids if i in found]

    async def charts(self, period: str, limit: int) -> list[TopSong]:
        """Everyone's most played songs: the same for every viewer, so cached."""
        start = since(period)

        async def load() -> list[TopSong]:
            if period not in SNAPSHOT_PERIODS:
                return await self.top_songs(None, period, limit)
            entries = (await self._chart_entries(period, start))[:limit]
            songs = await self._songs([song_id for song_id, _ in entries])
            return [{"plays": plays, "song": songs[song_id]}
                    for song_id, plays in entries if song_id in songs]

        key = await self.cache.list_key("charts", period, limit)
        return await (self.cache.get_or_load(key, load, 60) if key else load())

    async def _chart_entries(self, period: str, start: dt.datetime | None) -> list[tuple[int, int]]:
        """A long period's chart as kept (song id, plays), recomputed when older than
        CHART_SNAPSHOT_SECONDS."""
        kept = await self.repo.chart_snapshot(period)
        if kept is not None:
            age = (await self.repo.now() - kept["computed_at"]).total_seconds()
            if 0 <= age < CHART_SNAPSHOT_SECONDS:
                return [(int(a), int(b)) for a, b in json.loads(kept["entries"])]
        rows = await self.repo.top_songs(None, start, CHART_DEPTH)
        entries = [(int(r["song_id"]), int(r["plays"])) for r in rows]
        await self.repo.save_chart_snapshot(period, json.dumps(entries, separators=(",", ":")))
        return entries

    async def stats(self, user_id: int) -> Stats:
        """The user's totals, top artists and songs of the month, and plays per day."""
        row = await self.repo.stats(user_id)
        artists = await self.repo.artist_plays(user_id)
        top = artists[:5]
        names = await self.repo.artist_names([int(r["artist_id"]) for r in top])
        month = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=30)
        return {
            "plays": int(row["plays"]),
            "listened_ms": int(row["played_ms"]),
            "songs": int(row["songs"]),
            "artists": len(artists),
            "top_artists": [{"id": int(r["artist_id"]), "name": names[int(r["artist_id"])],
                             "plays": int(r["plays"])}
                            for r in top if int(r["artist_id"]) in names],
            "top_songs": await self.top_songs(user_id, "month", 5),
            "per_day": await self.per_day(user_id, month),
        }

    async def per_day(self, user_id: int | None, start: dt.datetime) -> list[DayPlays]:
        """Plays per day from `start` to today, days without plays included (for charts)."""
        found = {r["day"]: int(r["plays"]) for r in await self.repo.per_day(user_id, start)}
        today = dt.datetime.now(dt.UTC).date()
        day = start.date()
        out: list[DayPlays] = []
        while day <= today:
            out.append({"day": day.isoformat(), "plays": found.get(day, 0)})
            day += dt.timedelta(days=1)
        return out

    async def play_count(self, song_id: int) -> int:
        value = await self.repo.play_count(song_id)
        if value is None:
            raise NotFound("No such song")
        return value
