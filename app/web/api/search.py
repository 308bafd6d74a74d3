"""/api/search: songs, artists, albums and playlists in one answer, per type, and suggestions."""

from __future__ import annotations

from aiohttp import web

from app.adapters.search.port import Filters
from app.web import keys
from app.web.params import int_param, paging, require_user
from app.web.routing import PAGING, STR, ApiRoutes
from app.web.song_query import FILTERS, song_filters

routes = ApiRoutes("search")
Q = [{"name": "q", "in": "query", "schema": STR, "description": "what to look for (typos forgiven)"}]
TYPED_FILTERS = [f for f in FILTERS if f["name"] in ("artist_id", "album_id", "genre", "year")]


def _q(request: web.Request) -> str:
    return request.query.get("q", "")


@routes.get("/api/search", name="api_search", params=[*Q, *PAGING],
            summary="Search songs, artists, albums and playlists at once, with a top result")
async def search_all(request: web.Request) -> web.Response:
    viewer = require_user(request)
    limit, offset = paging(request)
    return web.json_response(await request.app[keys.SEARCH].search_all(
        _q(request), viewer.user_id, limit, offset))


def _typed(type_: str) -> None:
    plural = f"{type_}s"

    async def handler(request: web.Request) -> web.Response:
        viewer = require_user(request)
        limit, offset = paging(request)
        f = song_filters(request)
        filters = Filters(artist_id=f["artist_id"], album_id=f["album_id"], genre=f["genre"],
                          year=f["year"])
        return web.json_response(await request.app[keys.SEARCH].search_type(
            type_, _q(request), viewer.user_id, filters, limit, offset))

    routes.get(f"/api/search/{plural}", name=f"api_search_{plural}", params=[*Q, *TYPED_FILTERS, *PAGING],
               summary=f"Search {plural}, paged, with the filters of GET /api/song")(handler)


for _type in ("song", "artist", "album", "playlist"):
    _typed(_type)


@routes.get("/api/search/suggest", name="api_search_suggest",
            params=[*Q, {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 20}}],
            summary="Completions for the search box: [{type, id, text}]")
async def suggest(request: web.Request) -> web.Response:
    viewer = require_user(request)
    limit = int_param(request.query.get("limit"), "limit", 8, 1, 20)
    suggestions = await request.app[keys.SEARCH].suggest(_q(request), viewer.user_id, limit)
    return web.json_response({"suggestions": suggestions})
