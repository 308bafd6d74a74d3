"""The Meilisearch backend (meilisearch-python-sdk `AsyncClient`).

One index, `<namespace>_search`, holds every type (`type` is a filter). Settings — searchable,
filterable and sortable attributes, typo tolerance (1 typo from 4 letters, 2 from 8, as the
embedded index) and ranking rules — are applied at start-up and to every rebuilt index. Filters
are built here from typed values only: numbers as numbers, strings double-quoted with `\\` and `"`
escaped, so nothing a user types can become filter syntax. The visibility rule is one more filter
on every query. A rebuild fills `<uid>_build_<stamp>`, swaps it with the live index
(`swap_indexes`) and drops the old one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx2
from meilisearch_python_sdk import AsyncClient
from meilisearch_python_sdk.errors import MeilisearchError
from meilisearch_python_sdk.models.search import SearchParams
from meilisearch_python_sdk.models.settings import (
    MeilisearchSettings,
    MinWordSizeForTypos,
    TypoTolerance,
)

from app.adapters.search.documents import subtitle
from app.adapters.search.port import Doc, Fill, Hit, HitPage, SearchQuery, SearchUnavailable

log = logging.getLogger(__name__)
SEARCHABLE = ["name", "artist_name", "album_title", "featured", "owner_username", "description"]
FILTERABLE = ["type", "is_public", "owner_id", "collaborator_ids", "artist_id", "album_id", "genre",
              "year", "entity_id"]
SORTABLE = ["name", "year"]
RANKING = ["words", "typo", "proximity", "attribute", "exactness", "sort"]
RETRIEVE = ["id", "type", "entity_id", "name", "artist_name", "owner_username"]
TASK_TIMEOUT_MS = 120_000
ERRORS: tuple[type[BaseException], ...] = (MeilisearchError, httpx2.HTTPError, OSError,
                                          asyncio.TimeoutError)


def settings() -> MeilisearchSettings:
    return MeilisearchSettings(
        searchable_attributes=SEARCHABLE,
        filterable_attributes=list[Any](FILTERABLE),
        sortable_attributes=SORTABLE,
        ranking_rules=RANKING,
        typo_tolerance=TypoTolerance(
            enabled=True, min_word_size_for_typos=MinWordSizeForTypos(one_typo=4, two_typos=8)),
    )


def quote(value: str) -> str:
    """A filter string literal: double quotes, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    return quote(str(value))


def build_filter(viewer_id: int, type_: str | None, filters: dict[str, Any] | None = None) -> str:
    """The filter expression of a query: type, visibility, then the typed filters."""
    viewer = int(viewer_id)
    parts = [f"(is_public = true OR owner_id = {viewer} OR collaborator_ids = {viewer})"]
    if type_:
        parts.insert(0, f"type = {quote(type_)}")
    for name, value in (filters or {}).items():
        parts.append(f"{name} = {_literal(value)}")
    return " AND ".join(parts)


def _hit(raw: dict[str, Any]) -> Hit:
    doc = {k: raw.get(k) for k in ("type", "artist_name", "owner_username")}
    return Hit(type=str(raw["type"]), id=int(raw["entity_id"]), text=str(raw.get("name") or ""),
               score=float(raw.get("_rankingScore") or 0.0), subtitle=subtitle(doc))


class MeiliSearch:
    """The SearchPort over a Meilisearch server."""

    name = "meilisearch"

    def __init__(self, url: str, api_key: str, namespace: str, timeout: int = 5) -> None:
        self.client = AsyncClient(url, api_key or None, timeout=timeout)
        self.uid = f"{namespace}_search"

    async def _guard(self, work: Any) -> Any:
        try:
            return await work
        except ERRORS as exc:
            log.warning("Meilisearch failed: %s", exc)
            raise SearchUnavailable() from exc

    async def _wait(self, task_uid: int) -> None:
        result = await self.client.wait_for_task(task_uid, timeout_in_ms=TASK_TIMEOUT_MS,
                                                 raise_for_status=True)
        del result

    async def _prepare(self, uid: str) -> None:
        index = await self.client.get_or_create_index(uid, primary_key="id")
        task = await index.update_settings(settings())
        await self._wait(task.task_uid)

    async def start(self) -> None:
        try:
            await self._guard(self._prepare(self.uid))
        except SearchUnavailable:
            log.warning("Meilisearch is not reachable; search answers 503 until it is")

    async def close(self) -> None:
        await self.client.aclose()

    async def healthy(self) -> bool:
        try:
            health = await self.client.health()
        except ERRORS:
            return False
        return health.status == "available"

    def version(self) -> str | None:
        """Meilisearch applies writes as tasks of its own: no token tells when an answer
        changed, so its answers are not cached."""
        return None

    # reads
    def _params(self, q: SearchQuery) -> SearchParams:
        return SearchParams(
            index_uid=self.uid, q=q.text, offset=q.offset, limit=q.limit,
            filter=build_filter(q.viewer_id, q.type, q.filters.for_type(q.type)),
            attributes_to_retrieve=RETRIEVE, show_ranking_score=True,
        )

    async def search(self, queries: Sequence[SearchQuery]) -> list[HitPage]:
        results = await self._guard(self.client.multi_search([self._params(q) for q in queries]))
        return [HitPage([_hit(h) for h in r.hits], int(r.estimated_total_hits or r.total_hits or 0))
                for r in results]

    async def suggest(self, text: str, viewer_id: int, limit: int) -> list[Hit]:
        if not text.strip():
            return []
        index = self.client.index(self.uid)
        result = await self._guard(index.search(
            text, limit=limit, filter=build_filter(viewer_id, None),
            attributes_to_retrieve=RETRIEVE, show_ranking_score=True))
        return [_hit(h) for h in result.hits]

    async def dump(self) -> list[Doc]:
        index = self.client.index(self.uid)
        docs: list[Doc] = []
        offset = 0
        while True:
            page = await self._guard(index.get_documents(offset=offset, limit=1000))
            docs.extend(page.results)
            offset += len(page.results)
            if not page.results or offset >= page.total:
                break
        return sorted(docs, key=lambda d: str(d["id"]))

    # writes: each returns once Meilisearch has processed the task
    async def upsert(self, docs: Sequence[Doc]) -> None:
        if docs:
            await self._guard(self._add(self.uid, docs))

    async def _add(self, uid: str, docs: Sequence[Doc]) -> None:
        task = await self.client.index(uid).add_documents(list(docs), primary_key="id")
        await self._wait(task.task_uid)

    async def delete(self, doc_ids: Sequence[str]) -> None:
        if doc_ids:
            await self._guard(self._delete(self.uid, doc_ids))

    async def _delete(self, uid: str, doc_ids: Sequence[str]) -> None:
        task = await self.client.index(uid).delete_documents(list(doc_ids))
        await self._wait(task.task_uid)

    async def rebuild(self, fill: Fill, catch_up: Fill) -> None:
        build_uid = f"{self.uid}_build_{time.time_ns()}"
        await self._guard(self._prepare(self.uid))
        await self._guard(self._prepare(build_uid))
        target = _BuildTarget(self, build_uid)
        try:
            await fill(target)
            task = await self._guard(self.client.swap_indexes([(self.uid, build_uid)]))
            await self._guard(self._wait(task.task_uid))
        finally:
            # After the swap this uid holds the old documents; before it, the half-built ones.
            await self._guard(self.client.delete_index_if_exists(build_uid))
        # Writes enqueued on the old index before the swap are re-derived here.
        await catch_up(self)


class _BuildTarget:
    def __init__(self, backend: MeiliSearch, uid: str) -> None:
        self.backend = backend
        self.uid = uid

    async def upsert(self, docs: Sequence[Doc]) -> None:
        if docs:
            await self.backend._guard(self.backend._add(self.uid, docs))

    async def delete(self, doc_ids: Sequence[str]) -> None:
        if doc_ids:
            await self.backend._guard(self.backend._delete(self.uid, doc_ids))
