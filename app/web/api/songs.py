"""/api/song: the catalogue's songs; writes are for admins."""

from __future__ import annotations

from aiohttp import web

from app.web import keys
from app.web.handlers import CURSOR_PARAMS, LIST_NOTE, admin_change, listed
from app.web.params import admin_actor, choice_param, path_id, require_user
from app.web.routing import BOOL, INT, PAGING, STR, ApiRoutes, obj
from app.web.song_query import FILTERS, song_filters
from app.web.uploads import read_audio

routes = ApiRoutes("songs")
SONG_FIELDS = {"title": STR, "artist_id": INT, "album_id": INT, "track_number": INT,
               "disc_number": INT, "genre": STR, "year": INT, "explicit": BOOL}
ORDERS = ("newest", "title", "popular", "album")


@routes.get("/api/song", name="api_songs", summary="List songs, with filters." + LIST_NOTE,
            params=[*FILTERS, *PAGING, *CURSOR_PARAMS])
async def list_songs(request: web.Request) -> web.Response:
    require_user(request)
    catalog = request.app[keys.CATALOG]
    order = choice_param(request, "sort", ORDERS)
    return await listed(request, lambda limit, offset, cursor: catalog.song_list(
        song_filters(request), limit, offset, order, cursor))


@routes.get(r"/api/song/{id:[0-9]+}", name="api_song", summary="One song")
async def get_song(request: web.Request) -> web.Response:
    require_user(request)
    body = await request.app[keys.CATALOG].song_json_bytes(path_id(request))
    return web.Response(body=body, content_type="application/json")


@routes.post("/api/song", name="api_song_create", auth="admin", status=201,
             summary="Upload a song (multipart `file` + optional fields, or JSON with file_base64"
                     " and filename); an untagged file is titled from its file name",
             body=obj(file_base64=STR, filename=STR, **SONG_FIELDS))
async def create_song(request: web.Request) -> web.Response:
    who = admin_actor(request)
    app = request.app
    form = await read_audio(request, app[keys.MEDIA], app[keys.CONFIG].max_upload_mb * 1024 * 1024)
    upload = form.files[0]
    for extra in form.files[1:]:
        extra.temp.unlink(missing_ok=True)
    try:
        overrides = app[keys.CATALOG].song_changes(form.fields)
    except BaseException:
        form.discard()
        raise
    song = await app[keys.INGEST].upload(upload.temp, upload.size, upload.sha256, overrides, who,
                                         filename=upload.filename)
    return web.json_response(song, status=201)


@routes.put(r"/api/song/{id:[0-9]+}", name="api_song_update", auth="admin",
            summary="Change a song's metadata", body=obj(**SONG_FIELDS))
async def update_song(request: web.Request) -> web.Response:
    return await admin_change(request, request.app[keys.CATALOG].update_song)


@routes.delete(r"/api/song/{id:[0-9]+}", name="api_song_delete", auth="admin", status=204,
               summary="Delete a song and its stored file")
async def delete_song(request: web.Request) -> web.Response:
    who = admin_actor(request)
    row = await request.app[keys.CATALOG].delete_song(path_id(request), who)
    request.app[keys.INGEST].remove_file(row["file_path"], bool(row["in_place"]))
    return web.Response(status=204)
