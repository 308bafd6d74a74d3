"""The search service: asks the backend for ranked ids, hydrates them from MySQL.

Items are hydrated (one query per type, rank order kept) rather than served from the documents,
so they have exactly the shapes the rest of the API returns and fresh values (play counts, covers)
that never go into documents; an id whose row is gone by then is dropped. Playlists are hydrated
through the same visibility rule in SQL, a second guard behind the backend's filter.

A page of one catalogue type (songs, albums, artists: public, the same for every viewer) is cached
like a list page: under its catalogue group's generation (a write starts a new one) and the
backend's `version` (the index committed since), so apps repeating a search (typing, paging back,
a sync asking again) read it once. Playlists, whose answer depends on the viewer, are not cached;
nor is anything when the backend cannot give a version.
"""

from __future__ import annotations

from typing import Any

from app.adapters.cache import Cache
from app.adapters.search.port import TYPES, Filters, Hit, HitPage, SearchPort, SearchQuery, normalise_text
from app.repos.db import Database
from app.repos.search import SearchRepo
from app.services.catalog import LIST_TTL, album_json, artist_json, song_json_featured
from app.services.playlists import playlist_json
from app.services.types import Album, Artist, Links, Page, Playlist, Song, Suggestion

SUGGEST_LIMIT = 8
# Ties for the top result go to the type listed first.
TOP_ORDER = {"artist": 0, "song": 1, "album": 2, "playlist": 3}
Item = Song | Album | Artist | Playlist
# The catalogue list group whose generation a cached page of each type is kept under.
CACHED_TYPES = {"song": "songs", "album": "albums", "artist": "artists"}


class SearchService:
    """Search over the backend's documents, answered with the API's own shapes."""

    def __init__(self, db: Database, backend: SearchPort, links: Links,
                 cache: Cache | None = None) -> None:
        self.db = db
        self.backend = backend
        self.links = links
        self.cache = cache
        self.repo = SearchRepo(db)

    async def search_type(self, type_: str, text: str, viewer_id: int, filters: Filters,
                          limit: int, offset: int) -> Page[Item]:
        """One type, paged: `{items, total, limit, offset}`."""
        query = SearchQuery(normalise_text(text), type_, viewer_id, filters, limit, offset)

        async def load() -> Page[Item]:
            [page] = await self.backend.search([query])
            items = await self._hydrate(type_, page.hits, viewer_id)
            return {"items": items, "total": page.total, "limit": limit, "offset": offset}

        group = CACHED_TYPES.get(type_)
        version = self.backend.version() if group and self.cache is not None else None
        if self.cache is None or group is None or version is None:
            return await load()
        # The text last, quoted: no text can make another search's key.
        key = await self.cache.list_key(group, "search", version, type_, limit, offset,
                                        sorted(filters.for_type(type_).items()), repr(query.text))
        if key is None:  # the store is down
            return await load()
        page: Page[Item] = await self.cache.get_or_load(key, load, LIST_TTL)
        return page

    async def search_all(self, text: str, viewer_id: int, limit: int, offset: int = 0
                         ) -> dict[str, Any]:
        """Every type at once, each paged, and the best hit of all as `top_result`."""
        text = normalise_text(text)
        out: dict[str, Any] = {}
        if not text:
            for type_ in TYPES:
                out[f"{type_}s"] = {"items": [], "total": 0, "limit": limit, "offset": offset}
            out["top_result"] = None
            return out
        queries = [SearchQuery(text, t, viewer_id, Filters(), limit, offset) for t in TYPES]
        pages: list[HitPage] = await self.backend.search(queries)
        best: tuple[Hit, Item] | None = None
        for type_, page in zip(TYPES, pages, strict=True):
            items = await self._hydrate(type_, page.hits, viewer_id)
            out[f"{type_}s"] = {"items": items, "total": page.total, "limit": limit,
                                "offset": offset}
            by_id = {item["id"]: item for item in items}
            for hit in page.hits[:1]:
                if hit.id in by_id and (best is None or _better(hit, best[0])):
                    best = (hit, by_id[hit.id])
        out["top_result"] = {"type": best[0].type, "item": best[1]} if best else None
        return out

    async def suggest(self, text: str, viewer_id: int, limit: int = SUGGEST_LIMIT
                      ) -> list[Suggestion]:
        hits = await self.backend.suggest(normalise_text(text), viewer_id, limit)
        return [{"type": h.type, "id": h.id, "text": h.text, "subtitle": h.subtitle} for h in hits]

    async def _hydrate(self, type_: str, hits: list[Hit], viewer_id: int) -> list[Item]:
        ids = [h.id for h in hits]
        if not ids:
            return []
        made: dict[int, Item]
        if type_ == "song":
            rows = await self.repo.songs(ids)
            made = {int(r["id"]): song_json_featured(r, self.links) for r in rows}
        elif type_ == "album":
            made = {int(r["id"]): album_json(r, self.links) for r in await self.repo.albums(ids)}
        elif type_ == "artist":
            made = {int(r["id"]): artist_json(r, self.links) for r in await self.repo.artists(ids)}
        else:
            rows = await self.repo.playlists(ids, viewer_id)
            made = {int(r["id"]): playlist_json(r, self.links) for r in rows}
        return [made[i] for i in ids if i in made]


def _better(hit: Hit, other: Hit) -> bool:
    if hit.score != other.score:
        return hit.score > other.score
    return TOP_ORDER[hit.type] < TOP_ORDER[other.type]

