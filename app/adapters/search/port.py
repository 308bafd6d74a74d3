"""The search port: what the API asks of a search backend, whichever it is (SPEC 8).

Two backends implement it — Meilisearch (`meili.py`) and the embedded tantivy index
(`embedded.py`) — and tests/test_search_contract.py runs the same cases on both. Documents are
plain dicts made by `documents.py`; a backend only ranks and filters them and answers ids, which
the search service hydrates from MySQL (so items have the API's shapes and fresh counts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.errors import Unavailable

TYPES = ("song", "artist", "album", "playlist")
# The filters of `GET /api/song` each type's documents carry; others are ignored for that type.
TYPE_FILTERS: dict[str, tuple[str, ...]] = {
    "song": ("artist_id", "album_id", "genre", "year"),
    "album": ("artist_id", "genre", "year"),
    "artist": (),
    "playlist": (),
}
Doc = dict[str, Any]


class SearchUnavailable(Unavailable):
    """The search backend cannot answer (down, unreachable, or failing); the API answers 503."""

    default_message = "Search is unavailable right now; try again shortly"


@dataclass(frozen=True)
class Filters:
    """Typed filters; values come from validated parameters, never raw strings for numbers."""

    artist_id: int | None = None
    album_id: int | None = None
    genre: str | None = None  # compared without regard to case
    year: int | None = None

    def for_type(self, type_: str) -> dict[str, Any]:
        allowed = TYPE_FILTERS[type_]
        values = {"artist_id": self.artist_id, "album_id": self.album_id,
                  "genre": self.genre.lower() if self.genre else None, "year": self.year}
        return {k: v for k, v in values.items() if k in allowed and v is not None}


@dataclass(frozen=True)
class SearchQuery:
    """One ranked, paged search over one document type, as seen by `viewer_id`.

    `viewer_id` is never optional: the visibility rule (public, or owned by, or shared with the
    viewer) is part of every backend query, for every type.
    """

    text: str
    type: str
    viewer_id: int
    filters: Filters = field(default_factory=Filters)
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class Hit:
    type: str
    id: int
    text: str
    score: float
    subtitle: str = ""


@dataclass(frozen=True)
class HitPage:
    hits: list[Hit]
    total: int


class Target(Protocol):
    """Where documents go: the live index, or a fresh one being rebuilt."""

    async def upsert(self, docs: Sequence[Doc]) -> None: ...
    async def delete(self, doc_ids: Sequence[str]) -> None: ...


Fill = Callable[[Target], Awaitable[None]]


class SearchPort(Target, Protocol):
    """A search backend. Writes (`upsert`, `delete`) are durable and visible when they return."""

    name: str

    async def start(self) -> None:
        """Open the index (apply settings); never fails start-up when the backend is down."""

    async def close(self) -> None: ...

    async def search(self, queries: Sequence[SearchQuery]) -> list[HitPage]:
        """Answer several queries at once (one round trip where the backend allows)."""

    async def suggest(self, text: str, viewer_id: int, limit: int) -> list[Hit]:
        """Best completions across every type, for the search box."""

    async def dump(self) -> list[Doc]:
        """Every document, sorted by id (tests compare live indexing with a rebuild)."""

    async def rebuild(self, fill: Fill, catch_up: Fill) -> None:
        """Build a fresh index with `fill`, bring it up to date with `catch_up`, then swap it in
        atomically; searches keep using the old one until the swap."""

    async def healthy(self) -> bool: ...

    def version(self) -> str | None:
        """A token that changes whenever what `search` answers may change (the index this
        process reads committed or was swapped), so answers can be cached under it; None when
        the backend cannot tell (then nothing is cached)."""


def normalise_text(text: str, max_len: int = 200) -> str:
    """The query as searched: control characters dropped, whitespace collapsed, bounded."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text[:max_len])
    return " ".join(cleaned.split())
