"""The song list's query filters, shared by `GET /api/song` and `GET /api/search/songs`: their
OpenAPI parameters and their parsing (unknown parameters are ignored)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.web.params import int_param, query_text
from app.web.routing import INT, STR

FILTERS = [{"name": n, "in": "query", "schema": s} for n, s in (
    ("artist_id", INT), ("album_id", INT), ("genre", STR), ("year", INT), ("q", STR),
    ("sort", {"enum": ["newest", "title", "popular", "album"]}),
)]


def song_filters(request: web.Request) -> dict[str, Any]:
    """The filters of `GET /api/song`; unknown parameters are ignored, never turned into filters."""
    q = request.query
    big = 2**63 - 1
    return {
        "artist_id": int_param(q.get("artist_id"), "artist_id", 0, 1, big) or None,
        "album_id": int_param(q.get("album_id"), "album_id", 0, 1, big) or None,
        "year": int_param(q.get("year"), "year", 0, 1000, 9999) or None,
        "genre": query_text(request, "genre", 100) or None,
        "q": query_text(request) or None,
    }
