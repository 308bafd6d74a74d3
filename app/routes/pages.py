"""Listener pages (placeholder until the pages land)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app import keys

routes = web.RouteTableDef()


def base_context(request: web.Request) -> dict[str, Any]:
    return {"principal": request.get(keys.PRINCIPAL)}


@routes.get("/login", name="login_page")
async def login_page(request: web.Request) -> web.Response:
    return web.Response(text="login", content_type="text/html")
