"""Who may stream which song, signed stream URLs, per-user stream slots and pacing floors.

Framework-free (no aiohttp): the HTTP side (`app/web/stream.py`) asks this module whether a
caller may stream, which file a song is, and how fast to send it, then hands the bytes to
`streamcore`. Song ids never become paths: the path comes from the song's database row only.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from app.config import Config
from app.errors import Forbidden, NotFound, RateLimited, Unauthenticated
from app.media.store import MediaStore
from app.repos.catalog import CatalogRepo
from app.services.authstate import AuthStateCache
from app.services.security import Signer

log = logging.getLogger(__name__)

#: How long a song's file row is kept in process. A song whose file is replaced or deleted is
#: served from the old row for at most this long (a vanished file is reloaded at once).
SONG_FILE_TTL = 10.0
SONG_FILE_ENTRIES = 4096
#: A reader that accepts no bytes for this long is closed and its slot freed.
STALL_TIMEOUT = 30.0
#: What a 429 asks the player to wait before opening another stream.
SLOT_RETRY_AFTER = 1
SIGNED_PURPOSE = "stream"
SIGNED_PARAMS = ("uid", "sid", "song", "exp", "sig")


@dataclass(frozen=True, slots=True)
class SongFile:
    """What serving a song needs from its row: the resolved path, type and bitrate."""

    song_id: int
    path: str
    mime_type: str
    bitrate: int  # bits per second
    size: int


@dataclass(frozen=True, slots=True)
class Grant:
    """A caller allowed to stream a song: the user, for slots and play reporting."""

    user_id: int
    session_id: int


@dataclass(frozen=True, slots=True)
class SignedUrl:
    query: dict[str, str]
    expires_at: int

    @property
    def expires_at_rfc3339(self) -> str:
        return dt.datetime.fromtimestamp(self.expires_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SongFiles:
    """A small LRU of song file rows with a TTL, so a range request costs no database query."""

    def __init__(self, repo: CatalogRepo, media: MediaStore, ttl: float = SONG_FILE_TTL,
                 entries: int = SONG_FILE_ENTRIES) -> None:
        self.repo = repo
        self.media = media
        self.ttl = ttl
        self.entries = entries
        self._rows: OrderedDict[int, tuple[float, SongFile]] = OrderedDict()

    async def get(self, song_id: int) -> SongFile:
        """The song's file, or `NotFound`."""
        hit = self._rows.get(song_id)
        if hit is not None and hit[0] > time.monotonic():
            self._rows.move_to_end(song_id)
            return hit[1]
        row = await self.repo.song_file(song_id)
        if row is None:
            self._rows.pop(song_id, None)
            raise NotFound("No such song")
        song = SongFile(song_id, self._resolve(row), str(row["mime_type"] or "application/octet-stream"),
                        int(row["bitrate"] or 0), int(row["size"] or 0))
        if song.bitrate <= 0 and row["duration_ms"]:
            song = SongFile(song_id, song.path, song.mime_type,
                            song.size * 8000 // max(1, int(row["duration_ms"])), song.size)
        self._rows[song_id] = (time.monotonic() + self.ttl, song)
        self._rows.move_to_end(song_id)
        while len(self._rows) > self.entries:
            self._rows.popitem(last=False)
        return song

    def forget(self, song_id: int) -> None:
        self._rows.pop(song_id, None)

    def _resolve(self, row: Mapping[str, object]) -> str:
        stored = str(row["file_path"] or "")
        if row["in_place"]:
            # Imported in place: the row holds the absolute path the admin's import found.
            if not os.path.isabs(stored) or "\x00" in stored:
                raise NotFound("The song's file is missing")
            return stored
        try:
            return str(self.media.path(stored))
        except ValueError:
            log.error("song %s has a stored path outside the media root", row["id"])
            raise NotFound("The song's file is missing") from None


class StreamSlots:
    """Concurrent streaming responses per user, counted in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used: dict[int, int] = {}

    def acquire(self, user_id: int) -> None:
        """Take a slot, or `RateLimited` (429 + Retry-After) past the limit."""
        used = self._used.get(user_id, 0)
        if used >= self.limit:
            raise RateLimited(SLOT_RETRY_AFTER, "Too many streams at once; close one and retry")
        self._used[user_id] = used + 1

    def release(self, user_id: int) -> None:
        used = self._used.get(user_id, 0) - 1
        if used > 0:
            self._used[user_id] = used
        else:
            self._used.pop(user_id, None)

    def in_use(self, user_id: int) -> int:
        return self._used.get(user_id, 0)

    def total(self) -> int:
        return sum(self._used.values())


class StreamService:
    """Access to songs' audio: signed URLs, the caller's grant, the file and its pace."""

    def __init__(self, config: Config, repo: CatalogRepo, media: MediaStore, signer: Signer,
                 authstate: AuthStateCache) -> None:
        self.config = config
        self.signer = signer
        self.authstate = authstate
        self.files = SongFiles(repo, media)
        self.slots = StreamSlots(config.stream_max_per_user)

    def sign_url(self, song_id: int, user_id: int, session_id: int,
                 now: float | None = None) -> SignedUrl:
        """Query parameters that let this session stream this song for `stream_url_ttl` s."""
        exp = int(now if now is not None else time.time()) + self.config.stream_url_ttl
        sig = self.signer.sign(SIGNED_PURPOSE, f"{song_id}:{user_id}:{session_id}:{exp}")
        return SignedUrl({"uid": str(user_id), "sid": str(session_id), "song": str(song_id),
                          "exp": str(exp), "sig": sig}, exp)

    @staticmethod
    def is_signed(query: Mapping[str, str]) -> bool:
        return "sig" in query

    async def check_signed(self, song_id: int, query: Mapping[str, str],
                           now: float | None = None) -> Grant:
        """The grant a signed URL carries: 401 when malformed, tampered or expired (or its
        session was revoked), 403 when it was signed for another song."""
        values = [query.get(k, "") for k in ("uid", "sid", "song", "exp")]
        # ASCII digits only (SPEC 10): int() would also take "١" or " 1_0".
        if not all(v.isascii() and v.isdigit() and len(v) <= 19 for v in values):
            raise Unauthenticated("Malformed signed URL")
        uid, sid, song, exp = (int(v) for v in values)
        sig = query.get("sig", "")
        if not self.signer.verify(SIGNED_PURPOSE, f"{song}:{uid}:{sid}:{exp}", sig):
            raise Unauthenticated("Invalid signature")
        if exp < (now if now is not None else time.time()):
            raise Unauthenticated("This signed URL has expired")
        if song != song_id:
            raise Forbidden("This signed URL is for another song")
        # Logging out, disabling the account or changing the password ends signed URLs too.
        state = await self.authstate.get(sid, uid)
        if state is None or state.session_revoked or state.disabled or (
                state.session_version != state.user_version):
            raise Unauthenticated("This signed URL's session has ended")
        return Grant(uid, sid)

    @property
    def egress(self) -> float:
        """The byte-rate budget all streams share (bytes/s); 0.0 means no limit at all."""
        return max(0.0, self.config.stream_egress_mbps) * 1_000_000 / 8

    def pace(self, song: SongFile) -> tuple[float, int]:
        """The song's floor under a shared egress budget (SPEC §6): (bytes per second owed after
        the burst, burst bytes owed at full speed); 0 means no floor of that kind (pace or burst
        set to 0)."""
        # A song whose bitrate is unknown is taken as 128 kbit/s: every stream has a floor.
        per_second = (song.bitrate if song.bitrate > 0 else 128_000) / 8
        rate = self.config.stream_pace * per_second if self.config.stream_pace > 0 else 0.0
        burst = int(self.config.stream_burst_seconds * per_second)
        return rate, burst if burst > 0 else 0
