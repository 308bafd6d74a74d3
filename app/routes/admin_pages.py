"""Admin pages (placeholder until the pages land)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
