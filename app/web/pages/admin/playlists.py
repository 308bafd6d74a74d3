"""Admin moderation of playlists: `/admin/playlists` (list, search, delete with a confirmation
page). Deleting records `catalog.playlist.deleted` and an audited `admin.playlist.deleted`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app.errors import NotFound
from app.services.catalog import Actor
from app.web import keys
from app.web.admin_lists import confirm_delete, delete_and_return, list_page
from app.web.params import path_id, require_admin

routes = web.RouteTableDef()


@routes.get("/admin/playlists", name="admin_playlists")
async def playlists_list(request: web.Request) -> web.Response:
    require_admin(request)
    return await list_page(request, "admin_playlists", "admin/playlists.html", "playlists",
                           request.app[keys.PLAYLISTS].every)


async def _playlist(request: web.Request, playlist_id: int) -> Mapping[str, Any]:
    found = await request.app[keys.PLAYLISTS].many([playlist_id])
    if playlist_id not in found:
        raise NotFound("No such playlist")
    return found[playlist_id]


@routes.get(r"/admin/playlists/{id:[0-9]+}/delete", name="admin_playlist_delete_confirm")
async def delete_confirm(request: web.Request) -> web.Response:
    require_admin(request)
    playlist = await _playlist(request, path_id(request))
    return await confirm_delete(request, "playlist", playlist, "admin_playlists")


@routes.post(r"/admin/playlists/{id:[0-9]+}/delete", name="admin_playlist_delete")
async def delete(request: web.Request) -> web.Response:
    admin = require_admin(request)

    async def delete_playlist() -> str:
        playlist = await _playlist(request, path_id(request))
        await request.app[keys.PLAYLISTS].delete(playlist["id"], admin.user_id,
                                                 admin=Actor(admin.user_id, admin.username))
        return f"Deleted {playlist['name']}."

    return await delete_and_return(request, "admin_playlists", "playlist", delete_playlist)
