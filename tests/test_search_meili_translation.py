"""The Meilisearch adapter's translation, checked against the request and response shapes of
Meilisearch's documented REST API (settings, search / multi-search, documents, tasks, swap), using
`FakeMeilisearch`: an aiohttp test server that records every request and answers as the API does.
A live Meilisearch cannot be installed on these machines; tests/test_search_contract.py runs the
behavioural contract against one when SONORA_MEILI_URL is set."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.adapters.search.meili import MeiliSearch, build_filter, quote
from app.adapters.search.port import Filters, SearchQuery, SearchUnavailable

NOW = "2025-01-01T00:00:00.000000Z"


class FakeMeilisearch:
    """Records requests; answers with Meilisearch's documented shapes (tasks succeed at once)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.indexes: dict[str, dict[str, Any]] = {}
        self.tasks = itertools.count(1)
        self.hits: list[dict[str, Any]] = []
        self.down = False
        app = web.Application(middlewares=[self.record])
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app)

    @web.middleware
    async def record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request.method, request.path_qs, json.loads(body) if body else None))
        if self.down:
            return web.json_response({"message": "down", "code": "internal", "type": "internal",
                                      "link": ""}, status=503)
        return await handler(request)

    def task(self, uid: str | None, kind: str) -> web.Response:
        return web.json_response({"taskUid": next(self.tasks), "indexUid": uid, "status": "enqueued",
                                  "type": kind, "enqueuedAt": NOW}, status=202)

    async def handle(self, request: web.Request) -> web.Response:
        parts = request.path.strip("/").split("/")
        method = request.method
        raw = await request.read()
        body = json.loads(raw) if raw else None
        if parts == ["health"]:
            return web.json_response({"status": "available"})
        if parts[0] == "tasks" and len(parts) == 2:
            return web.json_response({"uid": int(parts[1]), "indexUid": None, "status": "succeeded",
                                      "type": "settingsUpdate", "details": {}, "duration": "PT0S",
                                      "enqueuedAt": NOW, "startedAt": NOW, "finishedAt": NOW})
        if parts == ["indexes"] and method == "POST":
            self.indexes[body["uid"]] = {"uid": body["uid"], "primaryKey": body.get("primaryKey"),
                                         "createdAt": NOW, "updatedAt": NOW}
            return self.task(body["uid"], "indexCreation")
        if parts == ["multi-search"]:
            return web.json_response({"results": [self.result(q, q["indexUid"]) for q in body["queries"]]})
        if parts == ["swap-indexes"]:
            return self.task(None, "indexSwap")
        if parts[0] == "indexes" and len(parts) >= 2:
            uid = parts[1]
            if len(parts) == 2 and method == "GET":
                if uid not in self.indexes:
                    return web.json_response({"message": f"Index `{uid}` not found.", "code": "index_not_found",
                                              "type": "invalid_request", "link": ""}, status=404)
                return web.json_response(self.indexes[uid])
            if len(parts) == 2 and method == "DELETE":
                return self.task(uid, "indexDeletion")
            if parts[2:] == ["settings"]:
                return self.task(uid, "settingsUpdate")
            if parts[2:] == ["search"]:
                return web.json_response(self.result(body, uid))
            if parts[2:] == ["documents"] and method == "POST":
                return self.task(uid, "documentAdditionOrUpdate")
            if parts[2:] == ["documents", "delete-batch"]:
                return self.task(uid, "documentDeletion")
        return web.json_response({"message": "unexpected", "code": "bad", "type": "invalid_request",
                                  "link": ""}, status=400)

    def result(self, query: dict[str, Any], uid: str) -> dict[str, Any]:
        return {"indexUid": uid, "hits": self.hits, "query": query.get("q", ""), "processingTimeMs": 1,
                "limit": query.get("limit", 20), "offset": query.get("offset", 0),
                "estimatedTotalHits": 57}

    def sent(self, method: str, path: str) -> list[Any]:
        return [b for m, p, b in self.requests if m == method and p.split("?")[0] == path]


@pytest.fixture
async def fake() -> Any:
    server = FakeMeilisearch()
    await server.server.start_server()
    yield server
    await server.server.close()


@pytest.fixture
async def meili(fake: FakeMeilisearch) -> Any:
    backend = MeiliSearch(str(fake.server.make_url("")).rstrip("/"), "masterKey", "ns1")
    yield backend
    await backend.close()


async def test_meili_translation_settings_at_start_up(fake, meili):
    await meili.start()
    assert fake.sent("POST", "/indexes")[0] == {"uid": "ns1_search", "primaryKey": "id"}
    [settings] = fake.sent("PATCH", "/indexes/ns1_search/settings")
    assert settings["searchableAttributes"][0] == "name"
    assert set(settings["filterableAttributes"]) >= {"type", "is_public", "owner_id", "collaborator_ids",
                                                     "artist_id", "album_id", "genre", "year"}
    assert "year" in settings["sortableAttributes"]
    assert settings["typoTolerance"]["enabled"] is True
    assert settings["typoTolerance"]["minWordSizeForTypos"] == {"oneTypo": 4, "twoTypos": 8}
    assert settings["rankingRules"][:2] == ["words", "typo"]


async def test_meili_translation_filters_escape_quotes_and_operators():
    assert quote('Rock" OR type = "song') == '"Rock\\" OR type = \\"song"'
    assert quote("back\\slash") == '"back\\\\slash"'
    f = build_filter(7, "song", Filters(artist_id=3, genre='Ro"ck\\', year=1999).for_type("song"))
    assert f == ('type = "song" AND (is_public = true OR owner_id = 7 OR collaborator_ids = 7)'
                 ' AND artist_id = 3 AND genre = "ro\\"ck\\\\" AND year = 1999')


async def test_meili_translation_search_paging_and_visibility(fake, meili):
    fake.hits = [{"id": "song-5", "type": "song", "entity_id": 5, "name": "Quiet", "artist_name": "Hush",
                  "_rankingScore": 0.9}]
    [page] = await meili.search([SearchQuery('quite" OR is_public = false', "song", 11,
                                             Filters(genre="x' OR 1=1"), limit=10, offset=30)])
    [multi] = fake.sent("POST", "/multi-search")
    [q] = multi["queries"]
    assert q["indexUid"] == "ns1_search" and q["q"] == 'quite" OR is_public = false'
    assert (q["limit"], q["offset"]) == (10, 30)
    assert q["filter"] == ('type = "song" AND (is_public = true OR owner_id = 11 OR collaborator_ids = 11)'
                           ' AND genre = "x\' or 1=1"')
    assert q["showRankingScore"] is True
    assert page.total == 57 and page.hits[0].id == 5 and page.hits[0].text == "Quiet"
    assert page.hits[0].subtitle == "Hush"


async def test_meili_translation_suggest_filters_visibility_for_every_type(fake, meili):
    await meili.suggest("bjor", 3, 8)
    [body] = fake.sent("POST", "/indexes/ns1_search/search")
    assert body["q"] == "bjor" and body["limit"] == 8
    assert body["filter"] == "(is_public = true OR owner_id = 3 OR collaborator_ids = 3)"


async def test_meili_translation_documents_and_deletes(fake, meili):
    doc = {"id": "song-1", "type": "song", "entity_id": 1, "name": "A"}
    await meili.upsert([doc])
    assert fake.sent("POST", "/indexes/ns1_search/documents") == [[doc]]
    await meili.delete(["song-1", "artist-2"])
    assert fake.sent("POST", "/indexes/ns1_search/documents/delete-batch") == [["song-1", "artist-2"]]


async def test_meili_translation_rebuild_swaps_indexes(fake, meili):
    async def fill(target: Any) -> None:
        await target.upsert([{"id": "artist-1", "type": "artist", "entity_id": 1, "name": "X"}])

    async def catch_up(target: Any) -> None:
        await target.upsert([{"id": "artist-2", "type": "artist", "entity_id": 2, "name": "Y"}])

    await meili.rebuild(fill, catch_up)
    created = [b["uid"] for b in fake.sent("POST", "/indexes")]
    build = next(u for u in created if u.startswith("ns1_search_build_"))
    assert fake.sent("PATCH", f"/indexes/{build}/settings"), "settings applied to the rebuilt index"
    assert fake.sent("POST", f"/indexes/{build}/documents")
    [swap] = fake.sent("POST", "/swap-indexes")
    assert swap[0]["indexes"] == ["ns1_search", build]
    assert any(m == "DELETE" and p == f"/indexes/{build}" for m, p, _ in fake.requests)
    # The catch-up goes to the live name, after the swap.
    paths = [(m, p.split("?")[0]) for m, p, _ in fake.requests]
    assert paths.index(("POST", "/indexes/ns1_search/documents")) > paths.index(("POST", "/swap-indexes"))


async def test_meili_translation_down_is_unavailable(fake, meili):
    fake.down = True
    with pytest.raises(SearchUnavailable):
        await meili.search([SearchQuery("a", "song", 1)])
    with pytest.raises(SearchUnavailable):
        await meili.upsert([{"id": "song-1"}])
    assert await meili.healthy() is False
    await meili.start()  # start-up survives a down backend
