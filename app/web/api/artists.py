"""/api/artist."""

from __future__ import annotations

from aiohttp import web

from app.web import keys
from app.web.handlers import (
    CURSOR_PARAMS,
    LIST_NOTE,
    admin_change,
    admin_create,
    admin_delete,
    admin_picture,
    listed,
    paged,
)
from app.web.params import int_param, path_id, query_text, require_user
from app.web.routing import PAGING, STR, ApiRoutes, obj

routes = ApiRoutes("artists")


@routes.get("/api/artist", name="api_artists", summary="List artists by name." + LIST_NOTE,
            params=[{"name": "q", "in": "query", "schema": STR}, *PAGING, *CURSOR_PARAMS])
async def list_artists(request: web.Request) -> web.Response:
    require_user(request)
    catalog = request.app[keys.CATALOG]
    return await listed(request, lambda limit, offset, cursor: catalog.artist_list(
        query_text(request), limit, offset, cursor))


@routes.get(r"/api/artist/{id:[0-9]+}", name="api_artist", summary="One artist")
async def get_artist(request: web.Request) -> web.Response:
    require_user(request)
    return web.json_response(await request.app[keys.CATALOG].artist(path_id(request)))


@routes.get(r"/api/artist/{id:[0-9]+}/albums", name="api_artist_albums",
            summary="An artist's albums, newest first", params=PAGING)
async def artist_albums(request: web.Request) -> web.Response:
    require_user(request)
    catalog = request.app[keys.CATALOG]
    return await paged(request, lambda limit, offset: catalog.artist_albums(
        path_id(request), limit, offset))


@routes.get(r"/api/artist/{id:[0-9]+}/top-songs", name="api_artist_top_songs",
            summary="An artist's most played songs",
            params=[{"name": "limit", "in": "query", "schema": {"type": "integer"}}])
async def artist_top_songs(request: web.Request) -> web.Response:
    require_user(request)
    limit = int_param(request.query.get("limit"), "limit", 10, 1, 50)
    items = await request.app[keys.CATALOG].artist_top_songs(path_id(request), limit)
    return web.json_response({"items": items})


@routes.post("/api/artist", name="api_artist_create", auth="admin", status=201,
             summary="Create an artist", body=obj(["name"], name=STR, bio=STR))
async def create_artist(request: web.Request) -> web.Response:
    return await admin_create(request, request.app[keys.CATALOG].create_artist)


@routes.put(r"/api/artist/{id:[0-9]+}", name="api_artist_update", auth="admin",
            summary="Change an artist", body=obj(name=STR, bio=STR))
async def update_artist(request: web.Request) -> web.Response:
    return await admin_change(request, request.app[keys.CATALOG].update_artist)


@routes.delete(r"/api/artist/{id:[0-9]+}", name="api_artist_delete", auth="admin", status=204,
               summary="Delete an artist that has no songs or albums left")
async def delete_artist(request: web.Request) -> web.Response:
    return await admin_delete(request, request.app[keys.CATALOG].delete_artist)


@routes.put(r"/api/artist/{id:[0-9]+}/image", name="api_artist_image", auth="admin",
            summary="Upload an artist picture (image body or multipart `image`)")
async def artist_image(request: web.Request) -> web.Response:
    catalog = request.app[keys.CATALOG]
    return await admin_picture(request, catalog.artist, catalog.set_artist_image)
