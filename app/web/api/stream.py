"""Audio: `GET|HEAD /api/stream/:song_id` and signed stream URLs (SPEC §6)."""

from __future__ import annotations

from aiohttp import web

from app.web import keys
from app.web.params import path_id, public_origin, require_user
from app.web.routing import ApiRoutes
from app.web.stream import grant_for, serve

# ASCII digits only: `\d` would also take other scripts' digits as ids.
STREAM_PATH = r"/api/stream/{song_id:[0-9]+}"
STREAM_PARAMS = [
    {"name": "Range", "in": "header", "schema": {"type": "string"},
     "description": "RFC 9110 byte ranges; several are answered as multipart/byteranges"},
    {"name": "If-Range", "in": "header", "schema": {"type": "string"}},
    {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
    {"name": "If-Modified-Since", "in": "header", "schema": {"type": "string"}},
    *({"name": n, "in": "query", "schema": {"type": "string"},
       "description": "signed URL part, from /api/song/{id}/stream-url"}
      for n in ("uid", "sid", "song", "exp", "sig")),
]


class StreamRoutes(ApiRoutes):
    """The API table, plus `HEAD` beside the stream `GET` (answered by the same handler)."""

    def install(self, app: web.Application) -> None:
        super().install(app)
        app.router.add_route("HEAD", STREAM_PATH, stream_song, name="api_stream_head")


routes = StreamRoutes("stream")


@routes.get(STREAM_PATH, name="api_stream", params=STREAM_PARAMS, auth="user",
            summary="The song's audio, byte for byte, with ranges (also HEAD); bearer, "
                    "session cookie or a signed URL")
async def stream_song(request: web.Request) -> web.StreamResponse:
    song_id = path_id(request, "song_id")
    grant = await grant_for(request, song_id)  # 401/403 before the file is looked at
    request[keys.LOG_USER] = grant.user_id  # a signed URL's user too, for the access log
    return await serve(request, song_id, grant)


@routes.get(r"/api/song/{id:[0-9]+}/stream-url", name="api_song_stream_url",
            summary="A signed URL that streams this song with no header or cookie, "
                    "valid SONORA_STREAM_URL_TTL seconds: {url, expires_at}")
async def stream_url(request: web.Request) -> web.Response:
    p = require_user(request)
    song_id = path_id(request)
    service = request.app[keys.STREAMING].service
    await service.files.get(song_id)  # 404 for an unknown song
    signed = service.sign_url(song_id, p.user_id, p.session_id)
    path = request.app.router["api_stream"].url_for(song_id=str(song_id)).with_query(signed.query)
    # Absolute, for players handed the URL alone; behind a trusted proxy, the address clients use.
    url = public_origin(request).join(path)
    return web.json_response({"url": str(url), "expires_at": signed.expires_at_rfc3339})
