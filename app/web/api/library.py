"""/api/library: liked songs, saved albums, followed artists and playlists (SPEC 5.2)."""

from __future__ import annotations

from aiohttp import web

from app.services.library import KINDS, parse_ids
from app.web import keys
from app.web.handlers import paged
from app.web.params import path_id, require_user
from app.web.routing import PAGING, STR, ApiRoutes

routes = ApiRoutes("library")
WHAT = {"songs": "liked songs", "albums": "saved albums", "artists": "followed artists",
        "playlists": "followed playlists"}
VERB = {"songs": "Like a song", "albums": "Save an album", "artists": "Follow an artist",
        "playlists": "Follow a playlist you can see"}
UNVERB = {"songs": "Unlike a song", "albums": "Remove a saved album", "artists": "Unfollow an artist",
          "playlists": "Unfollow a playlist"}


def _kind(request: web.Request) -> str:
    return request.path.split("/")[3]


async def list_items(request: web.Request) -> web.Response:
    user = require_user(request)
    library = request.app[keys.LIBRARY]
    return await paged(request, lambda limit, offset: library.page(
        _kind(request), user.user_id, limit, offset))


async def contains(request: web.Request) -> web.Response:
    user = require_user(request)
    ids = parse_ids(request.query.get("ids"))
    return web.json_response(await request.app[keys.LIBRARY].contains(_kind(request), user.user_id, ids))


async def add_item(request: web.Request) -> web.Response:
    user = require_user(request)
    await request.app[keys.LIBRARY].add(_kind(request), user.user_id, path_id(request))
    return web.Response(status=204)


async def remove_item(request: web.Request) -> web.Response:
    user = require_user(request)
    await request.app[keys.LIBRARY].remove(_kind(request), user.user_id, path_id(request))
    return web.Response(status=204)


for _k in KINDS:
    base = f"/api/library/{_k}"
    routes.get(base, name=f"api_library_{_k}", params=PAGING,
               summary=f"Your {WHAT[_k]}, newest first ({{added_at, ...}})")(list_items)
    routes.get(base + "/contains", name=f"api_library_{_k}_contains",
               params=[{"name": "ids", "in": "query", "required": True, "schema": STR}],
               summary=f"Whether each of up to 50 ids is among your {WHAT[_k]} → [bool, ...]")(contains)
    routes.put(base + r"/{id:[0-9]+}", name=f"api_library_{_k}_add", status=204,
               summary=VERB[_k])(add_item)
    routes.delete(base + r"/{id:[0-9]+}", name=f"api_library_{_k}_remove", status=204,
                  summary=UNVERB[_k])(remove_item)
