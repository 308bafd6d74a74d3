"""/api/image: covers, artist pictures and avatars at fixed sizes, cached for a long time."""

from __future__ import annotations

from aiohttp import web

from app.errors import InvalidInput, NotFound
from app.media.images import SIZES
from app.web import keys
from app.web.params import path_id
from app.web.routing import ApiRoutes

routes = ApiRoutes("images")


@routes.get(r"/api/image/{id:[0-9]+}", name="api_image", auth="public",
            summary="An image at a fixed size (64, 300 or 640 pixels square)",
            params=[{"name": "size", "in": "query", "schema": {"enum": list(SIZES)}}])
async def image(request: web.Request) -> web.StreamResponse:
    raw = request.query.get("size", "300")
    if not (raw.isascii() and raw.isdigit()) or int(raw) not in SIZES:
        raise InvalidInput(details={"fields": {"size": "must be 64, 300 or 640"}})
    path = await request.app[keys.INGEST].image_path(path_id(request), int(raw))
    if path is None or not path.is_file():
        raise NotFound("No such image")
    # Image ids never change content, so the answer can be kept for a year.
    return web.FileResponse(path, headers={
        "Cache-Control": "public, max-age=31536000, immutable", "Content-Type": "image/jpeg",
    })
