"""/api/stream/play and the listening history, tops, stats and charts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.web import keys
from app.web.handlers import paged
from app.web.params import int_param, json_body, path_id, require_user
from app.web.routing import INT, PAGING, STR, ApiRoutes, obj

routes = ApiRoutes("listening")
PERIOD = [{"name": "period", "in": "query", "schema": {"enum": ["day", "week", "month", "year", "all"]}},
          {"name": "limit", "in": "query", "schema": INT}]


@routes.post("/api/stream/play", name="api_play", status=202,
             summary="Report a play (counted after 30 s or half a shorter song; retries are harmless;"
                     " the same play_id again with a larger played_ms updates its listening time)."
                     " Also accepted as a form (application/x-www-form-urlencoded with csrf_token),"
                     " as navigator.sendBeacon sends it",
             body=obj(["song_id", "played_ms", "play_id"], song_id=INT, played_ms=INT, play_id=STR))
async def report_play(request: web.Request) -> web.Response:
    user = require_user(request)
    counted = await request.app[keys.LISTENING].report(user.user_id, await _report_body(request))
    return web.json_response({"counted": counted}, status=202)


async def _report_body(request: web.Request) -> dict[str, Any]:
    """JSON, or the form a page sends with `navigator.sendBeacon` when it is left: a beacon cannot
    set headers, so its CSRF token is the form's `csrf_token` field (checked by the middleware)."""
    if request.content_type != "application/x-www-form-urlencoded":
        return await json_body(request)
    form = await request.post()
    body: dict[str, Any] = {"play_id": form.get("play_id")}
    for name in ("song_id", "played_ms"):
        value = form.get(name)
        body[name] = value
        # ASCII digits only; anything else stays as sent and the service refuses it (422).
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
            body[name] = int(value)
    return body


@routes.get("/api/stream/history", name="api_history", summary="Your listening history, newest first",
            params=PAGING)
async def history(request: web.Request) -> web.Response:
    user = require_user(request)
    listening = request.app[keys.LISTENING]
    return await paged(request, lambda limit, offset: listening.history(user.user_id, limit, offset))


@routes.delete("/api/stream/history", name="api_history_clear", status=204,
               summary="Clear your listening history (songs' play counts stay)")
async def clear_history(request: web.Request) -> web.Response:
    user = require_user(request)
    await request.app[keys.LISTENING].clear(user.user_id)
    return web.Response(status=204)


@routes.get("/api/stream/recent", name="api_recent", summary="Songs you played recently",
            params=[{"name": "limit", "in": "query", "schema": INT}])
async def recent(request: web.Request) -> web.Response:
    user = require_user(request)
    limit = int_param(request.query.get("limit"), "limit", 20, 1, 50)
    return web.json_response({"items": await request.app[keys.LISTENING].recent(user.user_id, limit)})


@routes.get("/api/stream/top-songs", name="api_top_songs", summary="Your most played songs in a period",
            params=PERIOD)
async def top_songs(request: web.Request) -> web.Response:
    user = require_user(request)
    limit = int_param(request.query.get("limit"), "limit", 20, 1, 100)
    items = await request.app[keys.LISTENING].top_songs(
        user.user_id, request.query.get("period", "month"), limit
    )
    return web.json_response({"items": items})


@routes.get("/api/stream/stats", name="api_stats", summary="Your listening stats")
async def stats(request: web.Request) -> web.Response:
    user = require_user(request)
    return web.json_response(await request.app[keys.LISTENING].stats(user.user_id))


@routes.get("/api/stream/charts", name="api_charts", summary="Everyone's most played songs in a period",
            params=PERIOD)
async def charts(request: web.Request) -> web.Response:
    require_user(request)
    limit = int_param(request.query.get("limit"), "limit", 50, 1, 100)
    items = await request.app[keys.LISTENING].charts(request.query.get("period", "week"), limit)
    return web.json_response({"items": items})


@routes.get(r"/api/song/{id:[0-9]+}/play-count", name="api_play_count", summary="A song's play count")
async def play_count(request: web.Request) -> web.Response:
    require_user(request)
    song_id = path_id(request)
    count = await request.app[keys.LISTENING].play_count(song_id)
    return web.json_response({"song_id": song_id, "play_count": count})
