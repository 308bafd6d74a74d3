"""The home page: new albums, popular songs, genres and one's recent plays."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from app.web import keys
from app.web.params import require_user
from app.web.render import (
    render,
)

routes = web.RouteTableDef()


def greeting(hour: int) -> str:
    if 5 <= hour < 12:
        return "Good morning"
    if 12 <= hour < 18:
        return "Good afternoon"
    return "Good evening"


HOME_ALBUMS = 12
HOME_SONGS = 10
HOME_GENRES = 16
HOME_RECENT = 6


@routes.get("/", name="home")
async def home(request: web.Request) -> web.Response:
    principal = require_user(request)
    catalog = request.app[keys.CATALOG]
    albums, _ = await catalog.albums({}, HOME_ALBUMS, 0, "newest")
    songs, _ = await catalog.songs({}, HOME_SONGS, 0, "popular")
    popular = [s for s in songs if s["play_count"] > 0]  # by play count: the unplayed come last
    browse = await catalog.browse()
    recent = await request.app[keys.LISTENING].recent(principal.user_id, HOME_RECENT)
    return await render(request, "home.html", {
        "greeting": greeting(dt.datetime.now().hour),
        "new_albums": albums, "popular_songs": popular, "genres": browse["genres"][:HOME_GENRES],
        "recent_plays": recent,
    })
