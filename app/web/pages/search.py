"""/search: results as you type (static/js/search.js), rendered by the server on a full load too,
so the page works without JavaScript."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.adapters.search.port import SearchUnavailable, normalise_text
from app.web import keys
from app.web.params import require_user
from app.web.render import render

routes = web.RouteTableDef()
PAGE_LIMIT = 10


@routes.get("/search", name="search_page")
async def search_page(request: web.Request) -> web.Response:
    viewer = require_user(request)
    q = normalise_text(request.query.get("q", ""))
    results: dict[str, Any] | None = None
    unavailable = False
    if q:
        try:
            results = await request.app[keys.SEARCH].search_all(q, viewer.user_id, PAGE_LIMIT)
        except SearchUnavailable:
            unavailable = True
    return await render(request, "search.html", {
        "q": q, "results": results, "unavailable": unavailable,
    }, status=503 if unavailable else 200)
