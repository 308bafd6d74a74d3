"""/api/album."""

from __future__ import annotations

from aiohttp import web

from app.web import keys
from app.web.params import admin_actor, int_param, json_body, page_json, paging, path_id, require_user
from app.web.routing import INT, PAGING, STR, ApiRoutes, obj
from app.web.uploads import read_image

routes = ApiRoutes("albums")
ALBUM_FIELDS = {"title": STR, "artist_id": INT, "year": INT, "genre": STR,
                "album_type": {"enum": ["album", "single", "ep", "compilation"]}}


@routes.get("/api/album", name="api_albums", summary="List albums, with filters", params=[
    *[{"name": n, "in": "query", "schema": s} for n, s in (
        ("artist_id", INT), ("year", INT), ("genre", STR), ("q", STR), ("album_type", STR))],
    *PAGING])
async def list_albums(request: web.Request) -> web.Response:
    require_user(request)
    limit, offset = paging(request)
    q = request.query
    album_type = q.get("album_type")
    filters = {
        "artist_id": int_param(q.get("artist_id"), "artist_id", 0, 1, 2**63 - 1) or None,
        "year": int_param(q.get("year"), "year", 0, 1000, 9999) or None,
        "genre": q.get("genre", "").strip()[:100] or None,
        "q": q.get("q", "").strip()[:200] or None,
        "album_type": album_type if album_type in ("album", "single", "ep", "compilation") else None,
    }
    order = q.get("sort", "newest")
    items, total = await request.app[keys.CATALOG].albums(
        filters, limit, offset, order if order in ("newest", "year", "title") else "newest"
    )
    return web.json_response(page_json(items, total, limit, offset))


@routes.get(r"/api/album/{id:[0-9]+}", name="api_album", summary="One album with its songs")
async def get_album(request: web.Request) -> web.Response:
    require_user(request)
    return web.json_response(await request.app[keys.CATALOG].album(path_id(request)))


@routes.post("/api/album", name="api_album_create", auth="admin", status=201,
             summary="Create an album", body=obj(["title", "artist_id"], **ALBUM_FIELDS))
async def create_album(request: web.Request) -> web.Response:
    who = admin_actor(request)
    album = await request.app[keys.CATALOG].create_album(await json_body(request), who)
    return web.json_response(album, status=201)


@routes.put(r"/api/album/{id:[0-9]+}", name="api_album_update", auth="admin",
            summary="Change an album", body=obj(**ALBUM_FIELDS))
async def update_album(request: web.Request) -> web.Response:
    who = admin_actor(request)
    album = await request.app[keys.CATALOG].update_album(path_id(request), await json_body(request), who)
    return web.json_response(album)


@routes.delete(r"/api/album/{id:[0-9]+}", name="api_album_delete", auth="admin", status=204,
               summary="Delete an album (its songs stay, without an album)")
async def delete_album(request: web.Request) -> web.Response:
    who = admin_actor(request)
    await request.app[keys.CATALOG].delete_album(path_id(request), who)
    return web.Response(status=204)


@routes.put(r"/api/album/{id:[0-9]+}/cover", name="api_album_cover", auth="admin",
            summary="Upload an album cover (image body or multipart `image`)")
async def album_cover(request: web.Request) -> web.Response:
    who = admin_actor(request)
    album_id = path_id(request)
    await request.app[keys.CATALOG].album(album_id)
    image_id = await request.app[keys.INGEST].save_image(await read_image(request))
    return web.json_response(await request.app[keys.CATALOG].set_album_cover(album_id, image_id, who))
