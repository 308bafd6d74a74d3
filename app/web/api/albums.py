"""/api/album."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.services.catalog import ALBUM_TYPES
from app.web import keys
from app.web.handlers import (
    CURSOR_PARAMS,
    LIST_NOTE,
    admin_change,
    admin_create,
    admin_delete,
    admin_picture,
    listed,
)
from app.web.params import choice_param, int_param, path_id, query_text, require_user
from app.web.routing import INT, PAGING, STR, ApiRoutes, obj

routes = ApiRoutes("albums")
ALBUM_FIELDS = {"title": STR, "artist_id": INT, "year": INT, "genre": STR,
                "album_type": {"enum": ["album", "single", "ep", "compilation"]}}
ORDERS = ("newest", "year", "title")


def _filters(request: web.Request) -> dict[str, Any]:
    """The filters of `GET /api/album`; unknown parameters are ignored, never turned into filters."""
    q = request.query
    album_type = q.get("album_type")
    return {
        "artist_id": int_param(q.get("artist_id"), "artist_id", 0, 1, 2**63 - 1) or None,
        "year": int_param(q.get("year"), "year", 0, 1000, 9999) or None,
        "genre": query_text(request, "genre", 100) or None,
        "q": query_text(request) or None,
        "album_type": album_type if album_type in ALBUM_TYPES else None,
    }


@routes.get("/api/album", name="api_albums", summary="List albums, with filters." + LIST_NOTE,
            params=[*[{"name": n, "in": "query", "schema": s} for n, s in (
                ("artist_id", INT), ("year", INT), ("genre", STR), ("q", STR),
                ("album_type", STR), ("sort", {"enum": list(ORDERS)}))],
                *PAGING, *CURSOR_PARAMS])
async def list_albums(request: web.Request) -> web.Response:
    require_user(request)
    catalog = request.app[keys.CATALOG]
    order = choice_param(request, "sort", ORDERS)
    return await listed(request, lambda limit, offset, cursor: catalog.album_list(
        _filters(request), limit, offset, order, cursor))


@routes.get(r"/api/album/{id:[0-9]+}", name="api_album", summary="One album with its songs")
async def get_album(request: web.Request) -> web.Response:
    require_user(request)
    return web.json_response(await request.app[keys.CATALOG].album(path_id(request)))


@routes.post("/api/album", name="api_album_create", auth="admin", status=201,
             summary="Create an album", body=obj(["title", "artist_id"], **ALBUM_FIELDS))
async def create_album(request: web.Request) -> web.Response:
    return await admin_create(request, request.app[keys.CATALOG].create_album)


@routes.put(r"/api/album/{id:[0-9]+}", name="api_album_update", auth="admin",
            summary="Change an album", body=obj(**ALBUM_FIELDS))
async def update_album(request: web.Request) -> web.Response:
    return await admin_change(request, request.app[keys.CATALOG].update_album)


@routes.delete(r"/api/album/{id:[0-9]+}", name="api_album_delete", auth="admin", status=204,
               summary="Delete an album (its songs stay, without an album)")
async def delete_album(request: web.Request) -> web.Response:
    return await admin_delete(request, request.app[keys.CATALOG].delete_album)


@routes.put(r"/api/album/{id:[0-9]+}/cover", name="api_album_cover", auth="admin",
            summary="Upload an album cover (image body or multipart `image`)")
async def album_cover(request: web.Request) -> web.Response:
    catalog = request.app[keys.CATALOG]
    return await admin_picture(request, catalog.album, catalog.set_album_cover)
