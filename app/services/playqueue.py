"""Each user's saved play queue (Subsonic savePlayQueue / getPlayQueue): the songs, the current
one and the position in it, so an app can pick up where another left off.

A stopgap until SPEC 16's queue lands (the web player's, `GET/PUT /api/player/queue`, kept in
MySQL and shared with these methods): until then the queue lives in the key-value store for
QUEUE_DAYS after its last save, one small JSON value per user. Losing it (Redis flushed) loses a
queue, which an app saves again at its next change; Redis down means saving fails with a clear
error and reading answers the empty queue.
"""

from __future__ import annotations

import json
import time
from typing import TypedDict

from app.adapters.kv import KeyValue, KVUnavailable
from app.errors import InvalidInput, Unavailable
from app.services.catalog import CatalogService

QUEUE_DAYS = 30
MAX_SONGS = 1000
CLIENT_MAX = 64


class SavedQueue(TypedDict):
    song_ids: list[int]
    current: int | None  # a song id of the queue
    position_ms: int
    changed_at: float  # epoch seconds
    changed_by: str  # the client that saved it


class PlayQueueService:
    """Saved play queues, one per user."""

    def __init__(self, kv: KeyValue, catalog: CatalogService) -> None:
        self.kv = kv
        self.catalog = catalog

    @staticmethod
    def _key(user_id: int) -> str:
        return f"playqueue:{user_id}"

    async def save(self, user_id: int, song_ids: list[int], current: int | None,
                   position_ms: int, changed_by: str) -> None:
        """Replace the user's queue (an empty list clears it); every song must exist (404),
        the current one be in the queue (422)."""
        if len(song_ids) > MAX_SONGS:
            raise InvalidInput(details={"fields": {"id": f"at most {MAX_SONGS} songs"}})
        if current is not None and current not in song_ids:
            raise InvalidInput(details={"fields": {"current": "must be a song of the queue"}})
        wanted = sorted(set(song_ids))
        if wanted:
            found, _ = await self.catalog.songs({"ids": wanted}, len(wanted), 0)
            if len(found) != len(wanted):
                await self.catalog.song(min(set(wanted) - {s["id"] for s in found}))  # 404
        try:
            if not song_ids:
                await self.kv.delete(self._key(user_id))
                return
            value: SavedQueue = {"song_ids": song_ids, "current": current,
                                 "position_ms": position_ms, "changed_at": time.time(),
                                 "changed_by": changed_by[:CLIENT_MAX]}
            await self.kv.set(self._key(user_id), json.dumps(value).encode(),
                              QUEUE_DAYS * 86400)
        except KVUnavailable as exc:
            raise Unavailable("The play queue cannot be saved right now; try again shortly") from exc

    async def get(self, user_id: int) -> SavedQueue | None:
        """The user's saved queue (None when there is none, or the store is unavailable)."""
        try:
            raw = await self.kv.get(self._key(user_id))
        except KVUnavailable:
            return None
        if raw is None:
            return None
        try:
            value: SavedQueue = json.loads(raw)
        except ValueError:
            return None
        return value
