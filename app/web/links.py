"""The API's URLs for the services' shapes, built from the router's named routes (never by string
concatenation), so a route's path is written once: where the route is declared."""

from __future__ import annotations

from aiohttp import web

from app.services.types import Links


class RouterLinks:
    """`Links` over an application's router: what the web app gives the services it wires."""

    def __init__(self, router: web.UrlDispatcher) -> None:
        self.router = router

    def image(self, image_id: int, size: int = 300) -> str:
        """`GET /api/image/{id}?size=` (route `api_image`)."""
        return str(self.router["api_image"].url_for(id=str(image_id)).with_query(size=size))

    def stream(self, song_id: int) -> str:
        """`GET /api/stream/{song_id}` (route `api_stream`)."""
        return str(self.router["api_stream"].url_for(song_id=str(song_id)))


def links(request: web.Request) -> Links:
    """The links of the application serving `request`."""
    return RouterLinks(request.app.router)
