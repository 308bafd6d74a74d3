"""Each listener's library (SPEC 5.2): liked songs, saved albums, followed artists and playlists.

Answers depend on the viewer, so none is cached; the catalogue items inside them come from the
catalogue's own (shared, cacheable) reads. A playlist can be followed only when the viewer can see
it, and one made private since is left out of every answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, overload

from app.errors import InvalidInput
from app.repos.db import Row
from app.repos.library import TABLES, LibraryRepo
from app.services import validation as v
from app.services.catalog import CatalogService
from app.services.playlists import PlaylistService
from app.services.types import (
    FollowedArtist,
    FollowedPlaylist,
    LibraryEntry,
    LikedSong,
    SavedAlbum,
    Song,
)

KINDS = tuple(TABLES)
MAX_CONTAINS = 50


def parse_ids(raw: str | None) -> list[int]:
    """`1,2,3` → [1, 2, 3]: 1 to 50 positive ids, else 422."""
    parts = [p.strip() for p in (raw or "").split(",")]
    if not raw or not 1 <= len(parts) <= MAX_CONTAINS or not all(
        p.isascii() and p.isdigit() and len(p) <= 19 and 0 < int(p) < 2**63 for p in parts
    ):
        raise InvalidInput(details={"fields": {"ids": f"1 to {MAX_CONTAINS} comma-separated ids"}})
    return [int(p) for p in parts]


class LibraryService:
    """Each listener's library; answers depend on the viewer, so none is cached."""

    def __init__(self, catalog: CatalogService, playlists: PlaylistService) -> None:
        self.catalog = catalog
        self.playlists = playlists
        self.repo = LibraryRepo(catalog.db)

    async def _check(self, kind: str, user_id: int, item_id: int) -> None:
        """404 unless the item exists (and, for a playlist, the viewer can see it)."""
        if kind == "songs":
            await self.catalog.song(item_id)
        elif kind == "albums":
            await self.catalog.album(item_id, with_songs=False)
        elif kind == "artists":
            await self.catalog.artist(item_id)
        else:
            await self.playlists.access(item_id, user_id)

    async def add(self, kind: str, user_id: int, item_id: int) -> None:
        """Like, save or follow (harmless when already done)."""
        await self._check(kind, user_id, item_id)
        await self.repo.add(kind, user_id, item_id)

    async def remove(self, kind: str, user_id: int, item_id: int) -> None:
        await self.repo.remove(kind, user_id, item_id)

    async def add_all(self, user_id: int, items: Sequence[tuple[str, int]]) -> None:
        """Like, save or follow several items (kind, id) at once, as Subsonic's `star` asks:
        every item is checked first, so one that does not exist (404) adds none of them."""
        for kind, item_id in items:
            await self._check(kind, user_id, item_id)
        for kind, item_id in items:
            await self.repo.add(kind, user_id, item_id)

    async def remove_all(self, user_id: int, items: Sequence[tuple[str, int]]) -> None:
        """Take several items (kind, id) out of the library (those not in it are ignored)."""
        for kind, item_id in items:
            await self.repo.remove(kind, user_id, item_id)

    async def contains(self, kind: str, user_id: int, ids: Sequence[int]) -> list[bool]:
        found = await self.repo.contains(kind, user_id, ids)
        return [i in found for i in ids]

    async def counts(self, user_id: int) -> dict[str, int]:
        return await self.repo.counts(user_id)

    async def added_at_each(self, user_id: int, wanted: Mapping[str, Sequence[int]]
                            ) -> dict[str, dict[int, str]]:
        """`added_at` for several kinds (songs, albums, artists…) in one read, by kind."""
        known = {kind: sorted(set(ids)) for kind, ids in wanted.items() if kind in TABLES}
        return _by_kind(await self.repo.added_at_each(user_id, known), wanted)

    async def album_stars(self, user_id: int, album_id: int) -> dict[str, dict[int, str]]:
        """`added_at` of an album and of its songs, by kind, without reading the album first (so
        it can run beside the album's own read)."""
        return _by_kind(await self.repo.album_stars(user_id, album_id), ("songs", "albums"))

    async def everything_added(self, kind: str, user_id: int, most: int = 10_000
                               ) -> dict[int, str]:
        """Every item of one kind in the user's library (up to `most`, newest first) with when
        it was added: for answers listing more catalogue items than a library holds."""
        rows, _ = await self.repo.page(kind, user_id, most, 0)
        return {int(r["item_id"]): v.rfc3339(r["added_at"]) for r in rows}

    @overload
    async def page(self, kind: Literal["songs"], user_id: int, limit: int, offset: int
                   ) -> tuple[list[LikedSong], int]: ...
    @overload
    async def page(self, kind: Literal["albums"], user_id: int, limit: int, offset: int
                   ) -> tuple[list[SavedAlbum], int]: ...
    @overload
    async def page(self, kind: Literal["artists"], user_id: int, limit: int, offset: int
                   ) -> tuple[list[FollowedArtist], int]: ...
    @overload
    async def page(self, kind: Literal["playlists"], user_id: int, limit: int, offset: int
                   ) -> tuple[list[FollowedPlaylist], int]: ...
    @overload
    async def page(self, kind: str, user_id: int, limit: int, offset: int
                   ) -> tuple[list[LibraryEntry], int]: ...

    async def page(self, kind: str, user_id: int, limit: int, offset: int
                   ) -> tuple[Sequence[LibraryEntry], int]:
        """A page of the library, newest first: `{added_at, <song|album|artist|playlist>}`
        (an item deleted while this read is left out)."""
        rows, total = await self.repo.page(kind, user_id, limit, offset)
        added = [(int(r["item_id"]), v.rfc3339(r["added_at"])) for r in rows]
        ids = [item_id for item_id, _ in added]
        out: list[LibraryEntry]
        if kind == "songs":
            songs = await self._songs(ids)
            out = [{"added_at": at, "song": songs[i]} for i, at in added if i in songs]
        elif kind == "albums":
            albums = await self.catalog.albums_by_ids(ids)
            out = [{"added_at": at, "album": albums[i]} for i, at in added if i in albums]
        elif kind == "artists":
            artists = await self.catalog.artists_by_ids(ids)
            out = [{"added_at": at, "artist": artists[i]} for i, at in added if i in artists]
        else:
            found = await self.playlists.many(ids) if ids else {}
            out = [{"added_at": at, "playlist": found[i]} for i, at in added if i in found]
        return out, total

    async def _songs(self, ids: list[int]) -> dict[int, Song]:
        if not ids:
            return {}
        songs, _ = await self.catalog.songs({"ids": sorted(set(ids))}, len(ids), 0)
        return {s["id"]: s for s in songs}


def _by_kind(rows: list[Row], kinds: Iterable[str]) -> dict[str, dict[int, str]]:
    """Rows of (kind, item_id, added_at) as {kind: {item id: when added (RFC 3339)}}."""
    out: dict[str, dict[int, str]] = {kind: {} for kind in kinds}
    for r in rows:
        out[str(r["kind"])][int(r["item_id"])] = v.rfc3339(r["added_at"])
    return out
