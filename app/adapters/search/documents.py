"""One document builder per entity, used by live indexing and `reindex` alike.

A document is a flat dict (Meilisearch's shape; the embedded index stores it as is):
`id` ("song-12", the primary key), `type`, `entity_id`, `name` (title or name, ranked first),
the context it is also found by (`artist_name`, `album_title`, `owner_username`, `description`),
the filter fields (`artist_id`, `album_id`, `genre` lower-cased, `year`) and the visibility fields
(`is_public`, `owner_id`, `collaborator_ids`) — catalogue entities are public with owner 0.
Nothing that changes without a `catalog.*` event (play counts) goes into a document, so what live
indexing produces equals what a rebuild produces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.adapters.search.port import Doc
from app.repos.db import Executor, Row
from app.repos.search import SearchRepo

FIELDS = ("id", "type", "entity_id", "name", "artist_name", "album_title", "featured",
          "owner_username", "description", "artist_id", "album_id", "genre", "year",
          "is_public", "owner_id", "collaborator_ids", "song_count")


def doc_id(entity: str, entity_id: int) -> str:
    return f"{entity}-{int(entity_id)}"


def parse_doc_id(value: str) -> tuple[str, int]:
    entity, _, number = value.partition("-")
    return entity, int(number)


def _doc(entity: str, entity_id: int, name: str, **fields: Any) -> Doc:
    doc: Doc = {key: None for key in FIELDS}
    doc.update(id=doc_id(entity, entity_id), type=entity, entity_id=int(entity_id), name=name,
               is_public=True, owner_id=0, collaborator_ids=[])
    doc.update(fields)
    return doc


def _genre(value: str | None) -> str | None:
    return value.strip().lower() or None if value else None


def song_doc(row: Row, featured: Sequence[str] = ()) -> Doc:
    return _doc("song", row["id"], row["title"], artist_name=row["artist_name"],
                album_title=row["album_title"], featured=" ".join(featured) or None,
                artist_id=int(row["artist_id"]),
                album_id=int(row["album_id"]) if row["album_id"] else None,
                genre=_genre(row["genre"]), year=row["year"])


def album_doc(row: Row) -> Doc:
    return _doc("album", row["id"], row["title"], artist_name=row["artist_name"],
                artist_id=int(row["artist_id"]), genre=_genre(row["genre"]), year=row["year"])


def artist_doc(row: Row) -> Doc:
    return _doc("artist", row["id"], row["name"])


def playlist_doc(row: Row) -> Doc:
    collaborators = sorted(int(x) for x in str(row["collaborator_ids"] or "").split(",") if x)
    return _doc("playlist", row["id"], row["name"], description=row["description"] or None,
                owner_username=row["owner_username"], owner_id=int(row["owner_id"]),
                is_public=bool(row["is_public"]), collaborator_ids=collaborators,
                song_count=int(row["song_count"]))


async def docs_from_rows(repo: SearchRepo, entity: str, rows: list[Row]) -> list[Doc]:
    if entity == "song":
        featured = await repo.featured_names([int(r["id"]) for r in rows])
        return [song_doc(r, featured.get(int(r["id"]), ())) for r in rows]
    build = {"album": album_doc, "artist": artist_doc, "playlist": playlist_doc}[entity]
    return [build(r) for r in rows]


async def build(db: Executor, entity: str, ids: Sequence[int]) -> list[Doc]:
    """The documents of these entities as MySQL has them now (absent ones are left out); `db` may
    be the transaction of the caller, which then asks the pool for nothing."""
    repo = SearchRepo(db)
    return await docs_from_rows(repo, entity, await repo.doc_rows_by_ids(entity, ids))


def subtitle(doc: Doc) -> str:
    """The second line of a suggestion: who made it."""
    kind = doc["type"]
    if kind in ("song", "album"):
        return str(doc.get("artist_name") or "")
    if kind == "playlist":
        return f"by {doc.get('owner_username') or ''}".strip()
    return "Artist"
