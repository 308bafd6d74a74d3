"""The song list's query filters, shared by `GET /api/song` and `GET /api/search/songs`: their
OpenAPI parameters and their parsing (unknown parameters are ignored)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.web.params import int_param, query_text
from app.web.routing import INT, STR

Q_NOTE = ("Songs whose title holds these words as typed (case aside). The candidates are the"
          " search index's best 1,000 songs for the words (with the other filters), so the text"
          " is found from the start of a word, and a search matching more than that lists those"
          " 1,000 with `total` estimated from the index's count; while the index is down the"
          " titles are scanned, finding the text anywhere in them.")
FILTERS = [{"name": n, "in": "query", "schema": s, **({"description": Q_NOTE} if n == "q" else {})}
           for n, s in (("artist_id", INT), ("album_id", INT), ("genre", STR), ("year", INT),
                        ("q", STR), ("sort", {"enum": ["newest", "title", "popular", "album"]}))]


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
