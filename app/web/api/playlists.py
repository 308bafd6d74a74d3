"""/api/playlist: playlists, their songs and order, collaborators and share links (SPEC 5.1, 5.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from app.errors import Forbidden
from app.web import keys
from app.web.handlers import paged, picture
from app.web.params import json_body, paging, path_id, query_text, require_user
from app.web.routing import BOOL, INT, PAGING, STR, ApiRoutes, obj

routes = ApiRoutes("playlists")
IDS = {"type": "array", "items": INT, "maxItems": 100}
FIELDS = {"name": STR, "title": STR, "description": STR, "is_public": BOOL, "is_collaborative": BOOL}
Q = [{"name": "q", "in": "query", "schema": STR}]
PID = r"/api/playlist/{id:[0-9]+}"


async def _change(request: web.Request, change: Callable[[int, int, dict[str, Any]], Awaitable[object]],
                  status: int = 200) -> web.Response:
    """`change(playlist_id, viewer_id, body)` with the path's playlist and the JSON body (the
    service checks the viewer's rights): the playlist as it is now."""
    user = require_user(request)
    body = await json_body(request)
    return web.json_response(await change(path_id(request), user.user_id, body), status=status)


@routes.get("/api/playlist", name="api_playlists", params=PAGING,
            summary="Your playlists (your own and those you collaborate on)")
async def list_playlists(request: web.Request) -> web.Response:
    user = require_user(request)
    playlists = request.app[keys.PLAYLISTS]
    return await paged(request, lambda limit, offset: playlists.mine(user.user_id, limit, offset))


@routes.get("/api/playlist/public", name="api_playlists_public", params=[*Q, *PAGING],
            summary="Public playlists, most recently changed first")
async def public_playlists(request: web.Request) -> web.Response:
    require_user(request)
    playlists = request.app[keys.PLAYLISTS]
    return await paged(request, lambda limit, offset: playlists.public(
        query_text(request), limit, offset))


@routes.post("/api/playlist", name="api_playlist_create", status=201, body=obj(**FIELDS),
             summary="Create a playlist (private unless is_public)")
async def create_playlist(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await json_body(request)
    return web.json_response(await request.app[keys.PLAYLISTS].create(user.user_id, body), status=201)


@routes.get(PID, name="api_playlist", params=PAGING,
            summary="A playlist with a page of its songs ({position, added_at, added_by, song})")
async def get_playlist(request: web.Request) -> web.Response:
    user = require_user(request)
    limit, offset = paging(request)
    playlist = await request.app[keys.PLAYLISTS].get(path_id(request), user.user_id, limit, offset)
    return web.json_response(playlist)


@routes.put(PID, name="api_playlist_update", body=obj(**FIELDS),
            summary="Rename, describe, or change visibility (owner only)")
async def update_playlist(request: web.Request) -> web.Response:
    return await _change(request, request.app[keys.PLAYLISTS].update)


@routes.delete(PID, name="api_playlist_delete", status=204, summary="Delete a playlist (owner only)")
async def delete_playlist(request: web.Request) -> web.Response:
    user = require_user(request)
    await request.app[keys.PLAYLISTS].delete(path_id(request), user.user_id)
    return web.Response(status=204)


@routes.post(PID + "/songs", name="api_playlist_add", status=201,
             body=obj(["song_ids"], song_ids=IDS, position=INT),
             summary="Add songs, inserted before `position` (appended without it)")
async def add_songs(request: web.Request) -> web.Response:
    return await _change(request, request.app[keys.PLAYLISTS].add_songs, status=201)


@routes.delete(PID + "/songs", name="api_playlist_remove", body=obj(song_ids=IDS, positions=IDS),
               summary="Remove every occurrence of `song_ids`, or the entries at `positions`")
async def remove_songs(request: web.Request) -> web.Response:
    return await _change(request, request.app[keys.PLAYLISTS].remove_songs)


@routes.put(PID + "/songs/order", name="api_playlist_order",
            body=obj(["range_start", "insert_before"], range_start=INT, insert_before=INT,
                     range_length=INT),
            summary="Move `range_length` entries from `range_start` to before `insert_before`")
async def reorder(request: web.Request) -> web.Response:
    return await _change(request, request.app[keys.PLAYLISTS].reorder)


@routes.put(PID + "/cover", name="api_playlist_cover",
            summary="Upload a cover image (image body or multipart `image`; owner only)")
async def cover(request: web.Request) -> web.Response:
    user = require_user(request)
    service = request.app[keys.PLAYLISTS]
    playlist_id = path_id(request)
    access = await service.access(playlist_id, user.user_id)
    if not access.is_owner:
        raise Forbidden("Only the playlist's owner can change its cover")
    return await picture(request, lambda image_id: service.set_cover(
        playlist_id, user.user_id, image_id))


@routes.get(PID + "/collaborators", name="api_playlist_collaborators",
            summary="A playlist's collaborators")
async def collaborators(request: web.Request) -> web.Response:
    user = require_user(request)
    items = await request.app[keys.PLAYLISTS].collaborators(path_id(request), user.user_id)
    return web.json_response({"items": items})


@routes.post(PID + "/collaborators", name="api_playlist_collaborator_add", status=201,
             body=obj(["username"], username=STR),
             summary="Add a collaborator by username (owner only)")
async def add_collaborator(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await json_body(request)
    items = await request.app[keys.PLAYLISTS].add_collaborator(path_id(request), user.user_id, body)
    return web.json_response({"items": items}, status=201)


@routes.delete(PID + r"/collaborators/{username:[A-Za-z0-9_.-]+}",
               name="api_playlist_collaborator_remove", status=204,
               summary="Remove a collaborator (the owner), or leave (the collaborator)")
async def remove_collaborator(request: web.Request) -> web.Response:
    user = require_user(request)
    await request.app[keys.PLAYLISTS].remove_collaborator(
        path_id(request), user.user_id, request.match_info["username"])
    return web.Response(status=204)


@routes.post(PID + "/share", name="api_playlist_share", status=201,
             summary="A new share link {token, url}; any earlier link stops working (owner only)")
async def share(request: web.Request) -> web.Response:
    user = require_user(request)
    token = await request.app[keys.PLAYLISTS].share(path_id(request), user.user_id)
    url = request.app.router["shared_playlist_page"].url_for(token=token)
    return web.json_response({"token": token, "url": str(url)}, status=201)


@routes.delete(PID + "/share", name="api_playlist_unshare", status=204,
               summary="Revoke the share link (it then answers 404)")
async def unshare(request: web.Request) -> web.Response:
    user = require_user(request)
    await request.app[keys.PLAYLISTS].unshare(path_id(request), user.user_id)
    return web.Response(status=204)
