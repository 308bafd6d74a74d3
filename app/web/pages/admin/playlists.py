"""Admin moderation of playlists: `/admin/playlists` (list, search, delete with a confirmation
page). Deleting records `catalog.playlist.deleted` and an audited `admin.playlist.deleted`."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from app.errors import NotFound
from app.services.catalog import Actor
from app.web import keys
from app.web.params import paging, path_id, require_admin
from app.web.render import back_to_list, redirect_flash, render

routes = web.RouteTableDef()
PER_PAGE = 20


def _back(request: web.Request, value: Any) -> str:
    return back_to_list(request, value, "admin_playlists")


@routes.get("/admin/playlists", name="admin_playlists")
async def playlists_list(request: web.Request) -> web.Response:
    require_admin(request)
    q = request.query.get("q", "").strip()[:100]
    _, offset = paging(request)
    offset -= offset % PER_PAGE
    items, total = await request.app[keys.PLAYLISTS].every(q, PER_PAGE, offset)
    page, pages = offset // PER_PAGE + 1, max(1, math.ceil(total / PER_PAGE))
    base = request.app.router["admin_playlists"].url_for()

    def page_url(n: int) -> str:
        query = {"q": q} if q else {}
        return str(base.with_query({**query, "page": str(n)} if n > 1 else query))

    return await render(request, "admin/playlists.html", {
        "playlists": items, "q": q, "back": request.path_qs,
        "pager": {"page": page, "pages": pages, "total": total,
                  "prev_url": page_url(page - 1) if page > 1 else None,
                  "next_url": page_url(page + 1) if page < pages else None},
    })


async def _playlist(request: web.Request, playlist_id: int) -> dict[str, Any]:
    found = await request.app[keys.PLAYLISTS].many([playlist_id])
    if playlist_id not in found:
        raise NotFound("No such playlist")
    return found[playlist_id]


@routes.get(r"/admin/playlists/{id:[0-9]+}/delete", name="admin_playlist_delete_confirm")
async def delete_confirm(request: web.Request) -> web.Response:
    require_admin(request)
    playlist = await _playlist(request, path_id(request))
    return await render(request, "admin/playlist_delete.html", {
        "playlist": playlist, "back": _back(request, request.query.get("back"))})


@routes.post(r"/admin/playlists/{id:[0-9]+}/delete", name="admin_playlist_delete")
async def delete(request: web.Request) -> web.Response:
    admin = require_admin(request)
    form = await request.post()
    back = _back(request, form.get("back"))
    try:
        playlist = await _playlist(request, path_id(request))
        await request.app[keys.PLAYLISTS].delete(playlist["id"], admin.user_id,
                                                 admin=Actor(admin.user_id, admin.username))
    except NotFound:
        return redirect_flash(request, back, "That playlist no longer exists.", "error")
    return redirect_flash(request, back, f"Deleted {playlist['name']}.")
