"""/api/health and /api/openapi.json."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from app.web import keys
from app.web.routing import ApiRoutes

routes = ApiRoutes("meta")


async def _check(coro: Any, timeout: float = 2.0) -> bool:
    try:
        return bool(await asyncio.wait_for(coro, timeout))
    except Exception:  # noqa: BLE001 - any failure means down
        return False


@routes.get("/api/health", name="api_health", auth="public",
            summary="State of every dependency and each event consumer's lag (queue depth, oldest"
                    " unacknowledged delivery); `degraded` when an optional dependency is down or a"
                    " consumer has work waiting and stopped acknowledging; 503 when a required one"
                    " is down")
async def health(request: web.Request) -> web.Response:
    app = request.app
    kv, bus = app[keys.KV], app[keys.BUS]
    db_ok, kv_ok, bus_ok, consumers = await asyncio.gather(
        _check(app[keys.DB].ping()), _check(kv.ping()), _check(bus.healthy()),
        app[keys.BACKBONE].liveness(),
    )
    deps = {
        "database": {"status": "up" if db_ok else "down", "required": True, "backend": "mysql"},
        "cache": {"status": "up" if kv_ok else "down", "required": False, "backend": kv.name},
        "broker": {"status": "up" if bus_ok else "down", "required": False, "backend": bus.name},
        "search": {"status": "up", "required": False,
                   "backend": "meilisearch" if app[keys.CONFIG].meili_url else "embedded"},
    }
    ok = db_ok
    flowing = consumers["status"] != "stalled"
    return web.json_response(
        {"status": "ok" if ok and kv_ok and bus_ok and flowing else ("degraded" if ok else "down"),
         "dependencies": deps, "consumers": consumers},
        status=200 if ok else 503,
    )


@routes.get("/api/openapi.json", name="api_openapi", auth="public",
            summary="This API's OpenAPI description")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[keys.OPENAPI])
