"""What listeners are playing right now ("now playing"), as apps report it (Subsonic `scrobble`
with submission=false) and `getNowPlaying` lists it.

Kept in the key-value store, not MySQL: it is a few entries that are worthless after a few
minutes and rewritten at every song change, and every web process must see the same (Redis; the
in-process store when there is one process). One hash holds an entry per player (user and app
password); each entry carries its own expiry, the song's length plus a grace, so a player that
stopped drops off by itself, and the hash expires as a whole when nobody reports any more.
Losing them (Redis down) loses nothing that matters: reports are then dropped and the list is
empty, never an error.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TypedDict

from app.adapters.kv import KeyValue, KVUnavailable
from app.services.catalog import CatalogService
from app.services.types import Song

log = logging.getLogger(__name__)
KEY = "nowplaying"
#: An entry outlives its song by this long (a pause, a slow network) before it drops off.
GRACE_SECONDS = 60.0
#: The longest an entry is kept, whatever the song's length (a 3-hour mix is not "now" all along).
MAX_SECONDS = 3600.0
PLAYER_NAME_MAX = 64


class NowPlaying(TypedDict):
    """One player's current song."""

    user_id: int
    username: str
    player_id: int
    player_name: str
    started_at: float  # epoch seconds
    song: Song


class NowPlayingService:
    """Each player's current song, shared by every process through the key-value store."""

    def __init__(self, kv: KeyValue, catalog: CatalogService) -> None:
        self.kv = kv
        self.catalog = catalog

    async def playing(self, user_id: int, username: str, player_id: int, player_name: str,
                      song_id: int, now: float | None = None) -> None:
        """`player_id` of this user started `song_id` (404 for an unknown song)."""
        song = await self.catalog.song(song_id)
        at = time.time() if now is None else now
        keep = min(MAX_SECONDS, song["duration_ms"] / 1000 + GRACE_SECONDS)
        value = json.dumps({"user_id": user_id, "username": username, "player_id": player_id,
                            "player_name": player_name[:PLAYER_NAME_MAX], "song_id": song_id,
                            "started_at": at, "expires_at": at + keep})
        try:
            await self.kv.hash_put(KEY, f"{user_id}:{player_id}", value.encode(), MAX_SECONDS)
        except KVUnavailable:
            log.warning("now playing not recorded: the key-value store is unavailable")

    async def entries(self, now: float | None = None) -> list[NowPlaying]:
        """Every player's current song, the latest started first (stale entries are dropped)."""
        at = time.time() if now is None else now
        try:
            raw = await self.kv.hash_all(KEY)
        except KVUnavailable:
            return []
        live: list[dict[str, object]] = []
        stale: list[str] = []
        for field, value in raw.items():
            try:
                entry = json.loads(value)
                fresh = float(entry["expires_at"]) > at
            except (ValueError, KeyError, TypeError):
                fresh = False
            if fresh:
                live.append(entry)
            else:
                stale.append(field)
        if stale:
            try:
                await self.kv.hash_drop(KEY, *stale)
            except KVUnavailable:
                pass
        found, _ = await self.catalog.songs(
            {"ids": sorted({int(str(e["song_id"])) for e in live})}, len(live), 0) if live else ([], 0)
        songs = {s["id"]: s for s in found}
        out: list[NowPlaying] = [
            {"user_id": int(str(e["user_id"])), "username": str(e["username"]),
             "player_id": int(str(e["player_id"])), "player_name": str(e["player_name"]),
             "started_at": float(str(e["started_at"])), "song": songs[int(str(e["song_id"]))]}
            for e in live if int(str(e["song_id"])) in songs]
        out.sort(key=lambda e: e["started_at"], reverse=True)
        return out
