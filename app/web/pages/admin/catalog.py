"""/admin/songs, /admin/albums, /admin/artists: the catalogue (edits, uploads, pictures, deletion with
a confirmation page). Every handler checks admin rights first, in the server; the forms work
without JavaScript."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from app.errors import AppError, Conflict, InvalidInput, NotFound, TooLarge, UnsupportedMediaType
from app.media.store import TooLargeUpload
from app.services.catalog import ALBUM_TYPES, Actor, Cursor
from app.services.types import Listing
from app.web import keys
from app.web.admin_lists import confirm_delete, delete_and_return, keyset_list_page
from app.web.params import admin_actor, path_id, require_admin
from app.web.render import (
    back_to_list,
    error_line,
    field_errors,
    form_summary,
    form_text,
    link,
    redirect_flash,
    render,
)
from app.web.uploads import CHUNK, Upload, read_image

routes = web.RouteTableDef()
# ---------------------------------------------------------------- the catalogue: shared helpers

CHOICES_MAX = 500  # past this many artists/albums, forms ask for an id instead of a select
MAX_FILES = 50


async def _artist_choices(request: web.Request) -> list[dict[str, Any]] | None:
    """Artists for a select ({id, label}), or None when there are too many for one."""
    items, total = await request.app[keys.CATALOG].artists("", CHOICES_MAX, 0)
    return [{"id": a["id"], "label": a["name"]} for a in items] if total <= CHOICES_MAX else None


async def _album_choices(request: web.Request) -> list[dict[str, Any]] | None:
    items, total = await request.app[keys.CATALOG].albums({}, CHOICES_MAX, 0, "title")
    if total > CHOICES_MAX:
        return None
    return [{"id": a["id"], "label": f"{a['title']} — {a['artist']['name']}"} for a in items]


def _form_values(row: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """An edit form's fields as the stored row has them ("" for none)."""
    return {k: "" if row[k] is None else str(row[k]) for k in names}


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


@dataclass
class Received:
    """One file of a multi-file upload: on disk in a temporary place, or refused while reading."""

    filename: str
    upload: Upload | None = None
    error: AppError | None = None


async def _receive_one(request: web.Request, filename: str, chunks: AsyncIterator[bytes],
                       max_bytes: int) -> Received:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1][:255] or "upload"
    try:
        temp, size, sha = await request.app[keys.MEDIA].receive(chunks, max_bytes)
    except TooLargeUpload:
        return Received(name, error=TooLarge(
            f"The file is larger than {max_bytes // (1024 * 1024)} MiB"))
    if size == 0:
        temp.unlink(missing_ok=True)  # noqa: ASYNC240 - one unlink
        return Received(name, error=InvalidInput("The file is empty"))
    return Received(name, Upload(temp, size, sha, name))


async def _receive_audio(request: web.Request, max_bytes: int) -> list[Received]:
    """Every `file` part of a multipart form, each streamed to a temporary file under the cap; a
    file refused while reading does not stop the others."""
    out: list[Received] = []
    if request.content_type != "multipart/form-data":
        return out  # a form without a file input: nothing was sent
    too_many = UnsupportedMediaType(f"At most {MAX_FILES} files per upload")
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name == "file" and part.filename:
                out.append(Received(part.filename, error=too_many) if len(out) >= MAX_FILES
                           else await _receive_one(request, part.filename, _part_chunks(part),
                                                   max_bytes))
    except BaseException:
        for received in out:
            if received.upload:
                received.upload.temp.unlink(missing_ok=True)  # noqa: ASYNC240
        raise
    return out


async def _save_picture(request: web.Request, here: str, what: str, name: str,
                        attach: Callable[[int], Awaitable[object]]) -> web.Response:
    """An uploaded picture (`what`: "picture", "cover") checked, kept and attached to `name`'s
    artist or album by `attach(image_id)`; back to its edit page (`here`) saying how it went."""
    try:
        image_id = await request.app[keys.INGEST].save_image(await read_image(request))
        await attach(image_id)
    except (InvalidInput, UnsupportedMediaType, TooLarge) as exc:
        return redirect_flash(request, here, f"{what.capitalize()} not saved: {error_line(exc)}",
                              "error")
    return redirect_flash(request, here, f"New {what} for {name}.")


# ---------------------------------------------------------------- songs


@routes.get("/admin/songs", name="admin_songs")
async def songs_list(request: web.Request) -> web.Response:
    require_admin(request)
    catalog = request.app[keys.CATALOG]

    async def newest(q: str, limit: int, offset: int, cursor: Cursor) -> Listing[Any]:
        return await catalog.song_list({"q": q or None}, limit, offset, "newest", cursor)

    return await keyset_list_page(request, "admin_songs", "admin/songs.html", "songs", newest)


SONG_FORM = ("title", "artist_id", "album_id", "track_number", "disc_number", "year", "genre")


async def _song_form(request: web.Request, song: Mapping[str, Any], values: dict[str, Any],
                     errors: dict[str, str] | None = None, error: str | None = None,
                     status: int = 200) -> web.Response:
    return await render(request, "admin/song_edit.html", {
        "song": song, "values": values, "errors": errors or {}, "error": error,
        "artists": await _artist_choices(request), "albums": await _album_choices(request),
        "back": back_to_list(request, values.get("back"), "admin_songs"),
    }, status=status)


@routes.get(r"/admin/songs/{id:[0-9]+}/edit", name="admin_song_edit")
async def song_edit(request: web.Request) -> web.Response:
    require_admin(request)
    song = await request.app[keys.CATALOG].song(path_id(request))
    values: dict[str, Any] = _form_values(song, SONG_FORM)
    values.update(explicit=song["explicit"], back=request.query.get("back", ""))
    return await _song_form(request, song, values)


@routes.post(r"/admin/songs/{id:[0-9]+}/edit", name="admin_song_update")
async def song_update(request: web.Request) -> web.Response:
    who = admin_actor(request)
    catalog = request.app[keys.CATALOG]
    song = await catalog.song(path_id(request))
    form = await request.post()
    values: dict[str, Any] = {k: form_text(form, k, 600).strip() for k in SONG_FORM}
    values.update(explicit=form.get("explicit") == "1", back=form_text(form, "back"))
    body = {k: (values[k] or None) for k in SONG_FORM}
    body.update(title=values["title"], explicit=values["explicit"])
    try:
        saved = await catalog.update_song(song["id"], body, who)
    except InvalidInput as exc:
        return await _song_form(request, song, values, field_errors(exc), form_summary(exc), 422)
    return redirect_flash(request, back_to_list(request, values["back"], "admin_songs"),
                          f"Saved “{saved['title']}”.")


@routes.get(r"/admin/songs/{id:[0-9]+}/delete", name="admin_song_delete_confirm")
async def song_delete_confirm(request: web.Request) -> web.Response:
    require_admin(request)
    song = await request.app[keys.CATALOG].song(path_id(request))
    return await confirm_delete(request, "song", song, "admin_songs")


@routes.post(r"/admin/songs/{id:[0-9]+}/delete", name="admin_song_delete")
async def song_delete(request: web.Request) -> web.Response:
    who = admin_actor(request)
    catalog = request.app[keys.CATALOG]

    async def delete() -> str:
        song = await catalog.song(path_id(request))
        row = await catalog.delete_song(song["id"], who)
        request.app[keys.INGEST].remove_file(row["file_path"], bool(row["in_place"]))
        return f"Deleted “{song['title']}”."

    return await delete_and_return(request, "admin_songs", "song", delete)


@routes.get("/admin/songs/upload", name="admin_song_upload_form")
async def song_upload_form(request: web.Request) -> web.Response:
    require_admin(request)
    return await render(request, "admin/song_upload.html", {
        "results": None, "error": None, "max_mb": request.app[keys.CONFIG].max_upload_mb})


@routes.post("/admin/songs/upload", name="admin_song_upload")
async def song_upload(request: web.Request) -> web.Response:
    """Several files at once: each is added, found to be a duplicate, or refused on its own."""
    who = admin_actor(request)
    max_mb = request.app[keys.CONFIG].max_upload_mb
    received = await _receive_audio(request, max_mb * 1024 * 1024)
    if not received:
        return await render(request, "admin/song_upload.html", {
            "results": None, "error": "Choose one or more audio files to upload.", "max_mb": max_mb,
        }, status=422)
    results = []
    try:
        for item in received:
            results.append(await _ingest_one(request, item, who))
    finally:
        for item in received[len(results):]:  # only after an unexpected error
            if item.upload:
                item.upload.temp.unlink(missing_ok=True)  # noqa: ASYNC240
    counts = {k: sum(1 for r in results if r["outcome"] == k)
              for k in ("added", "duplicate", "refused")}
    return await render(request, "admin/song_upload.html", {
        "results": results, "counts": counts, "error": None, "max_mb": max_mb})


async def _ingest_one(request: web.Request, item: Received, who: Actor) -> dict[str, Any]:
    result: dict[str, Any] = {"filename": item.filename, "song": None, "existing": None}
    if item.error is not None or item.upload is None:
        error = item.error or InvalidInput()
        return {**result, "outcome": "refused", "status": error.status, "message": error.message}
    upload = item.upload
    try:
        song = await request.app[keys.INGEST].upload(upload.temp, upload.size, upload.sha256, {}, who,
                                                     filename=upload.filename)
    except Conflict as exc:
        existing_id = (exc.details or {}).get("existing_id")
        existing = None
        if existing_id:
            try:
                existing = await request.app[keys.CATALOG].song(int(existing_id))
            except NotFound:
                existing = None
        return {**result, "outcome": "duplicate", "status": 409, "message": exc.message,
                "existing": existing}
    except (UnsupportedMediaType, InvalidInput, TooLarge) as exc:
        return {**result, "outcome": "refused", "status": exc.status, "message": error_line(exc)}
    return {**result, "outcome": "added", "status": 201, "message": "Added", "song": song}


# ---------------------------------------------------------------- artists


@routes.get("/admin/artists", name="admin_artists")
async def artists_list(request: web.Request) -> web.Response:
    require_admin(request)
    catalog = request.app[keys.CATALOG]

    async def with_counts(q: str, limit: int, offset: int, cursor: Cursor) -> Listing[Any]:
        page: Listing[Any] = await catalog.artist_list(q, limit, offset, cursor)
        # Each artist with its counts, for the list and the delete buttons.
        page["items"] = await catalog.with_counts(page["items"])
        return page

    return await keyset_list_page(request, "admin_artists", "admin/artists.html", "artists",
                                  with_counts)


async def _artist_form(request: web.Request, artist: Mapping[str, Any] | None,
                       values: dict[str, str], errors: dict[str, str] | None = None,
                       error: str | None = None, status: int = 200) -> web.Response:
    return await render(request, "admin/artist_form.html", {
        "artist": artist, "values": values, "errors": errors or {}, "error": error,
        "back": back_to_list(request, values.get("back"), "admin_artists"),
    }, status=status)


@routes.get("/admin/artists/new", name="admin_artist_new")
async def artist_new(request: web.Request) -> web.Response:
    require_admin(request)
    return await _artist_form(request, None, {"name": "", "bio": ""})


@routes.post("/admin/artists/new", name="admin_artist_create")
async def artist_create(request: web.Request) -> web.Response:
    who = admin_actor(request)
    form = await request.post()
    values = {"name": form_text(form, "name", 300), "bio": form_text(form, "bio", 6000)}
    try:
        artist = await request.app[keys.CATALOG].create_artist(values, who)
    except (InvalidInput, Conflict) as exc:
        errors = field_errors(exc) if isinstance(exc, InvalidInput) else {"name": "already exists"}
        return await _artist_form(request, None, values, errors, form_summary(exc), exc.status)
    return redirect_flash(request, link(request, "admin_artist_edit", id=str(artist["id"])),
                          f"Artist {artist['name']} created. Add a picture if you have one.")


@routes.get(r"/admin/artists/{id:[0-9]+}/edit", name="admin_artist_edit")
async def artist_edit(request: web.Request) -> web.Response:
    require_admin(request)
    artist = await request.app[keys.CATALOG].artist(path_id(request))
    return await _artist_form(request, artist, {"name": artist["name"], "bio": artist["bio"] or "",
                                                "back": request.query.get("back", "")})


@routes.post(r"/admin/artists/{id:[0-9]+}/edit", name="admin_artist_update")
async def artist_update(request: web.Request) -> web.Response:
    who = admin_actor(request)
    catalog = request.app[keys.CATALOG]
    artist = await catalog.artist(path_id(request))
    form = await request.post()
    values = {"name": form_text(form, "name", 300), "bio": form_text(form, "bio", 6000),
              "back": form_text(form, "back")}
    try:
        saved = await catalog.update_artist(artist["id"], {"name": values["name"],
                                                           "bio": values["bio"]}, who)
    except (InvalidInput, Conflict) as exc:
        errors = (field_errors(exc) if isinstance(exc, InvalidInput)
                  else {"name": "is taken by another artist"})
        return await _artist_form(request, artist, values, errors, form_summary(exc), exc.status)
    return redirect_flash(request, back_to_list(request, values["back"], "admin_artists"),
                          f"Saved {saved['name']}.")


@routes.post(r"/admin/artists/{id:[0-9]+}/image", name="admin_artist_image")
async def artist_image(request: web.Request) -> web.Response:
    who = admin_actor(request)
    catalog = request.app[keys.CATALOG]
    artist = await catalog.artist(path_id(request))
    return await _save_picture(
        request, link(request, "admin_artist_edit", id=str(artist["id"])), "picture",
        artist["name"], lambda image_id: catalog.set_artist_image(artist["id"], image_id, who))


@routes.get(r"/admin/artists/{id:[0-9]+}/delete", name="admin_artist_delete_confirm")
async def artist_delete_confirm(request: web.Request) -> web.Response:
    require_admin(request)
    artist = await request.app[keys.CATALOG].artist(path_id(request))
    return await confirm_delete(request, "artist", artist, "admin_artists")


@routes.post(r"/admin/artists/{id:[0-9]+}/delete", name="admin_artist_delete")
async def artist_delete(request: web.Request) -> web.Response:
    who = admin_actor(request)
    catalog = request.app[keys.CATALOG]

    async def delete() -> str:
        artist = await catalog.artist(path_id(request))
        await catalog.delete_artist(artist["id"], who)
        return f"Deleted {artist['name']}."

    return await delete_and_return(request, "admin_artists", "artist", delete)


# ---------------------------------------------------------------- albums

ALBUM_FORM = ("title", "artist_id", "album_type", "year", "genre")


@routes.get("/admin/albums", name="admin_albums")
async def albums_list(request: web.Request) -> web.Response:
    require_admin(request)
    catalog = request.app[keys.CATALOG]

    async def newest(q: str, limit: int, offset: int, cursor: Cursor) -> Listing[Any]:
        return await catalog.album_list({"q": q or None}, limit, offset, "newest", cursor)

    return await keyset_list_page(request, "admin_albums", "admin/albums.html", "albums", newest)


async def _album_form(request: web.Request, album: Mapping[str, Any] | None, values: dict[str, str],
                      errors: dict[str, str] | None = None, error: str | None = None,
                      status: int = 200) -> web.Response:
    return await render(request, "admin/album_form.html", {
        "album": album, "values": values, "errors": errors or {}, "error": error,
        "artists": await _artist_choices(request), "album_types": ALBUM_TYPES,
        "back": back_to_list(request, values.get("back"), "admin_albums"),
    }, status=status)


def _album_errors(exc: AppError) -> dict[str, str]:
    if isinstance(exc, InvalidInput):
        return field_errors(exc)
    return {"title": "already exists for this artist"}


def _album_values(form: Any) -> dict[str, str]:
    return {k: form_text(form, k, 300).strip() for k in ALBUM_FORM} | {"back": form_text(form, "back")}


def _album_body(values: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {k: values[k] or None for k in ALBUM_FORM}
    body["title"] = values["title"]
    body["album_type"] = values["album_type"] or "album"
    return body


@routes.get("/admin/albums/new", name="admin_album_new")
async def album_new(request: web.Request) -> web.Response:
    require_admin(request)
    values = {k: "" for k in ALBUM_FORM} | {"album_type": "album",
                                             "artist_id": request.query.get("artist_id", "")}
    return await _album_form(request, None, values)


@routes.post("/admin/albums/new", name="admin_album_create")
async def album_create(request: web.Request) -> web.Response:
    who = admin_actor(request)
    values = _album_values(await request.post())
    try:
        album = await request.app[keys.CATALOG].create_album(_album_body(values), who)
    except (InvalidInput, Conflict) as exc:
        errors = _album_errors(exc)
        return await _album_form(request, None, values, errors, form_summary(exc), exc.status)
    return redirect_flash(request, link(request, "admin_album_edit", id=str(album["id"])),
                          f"Album {album['title']} created. Add a cover if you have one.")


@routes.get(r"/admin/albums/{id:[0-9]+}/edit", name="admin_album_edit")
async def album_edit(request: web.Request) -> web.Response:
    require_admin(request)
    album = await request.app[keys.CATALOG].album(path_id(request))
    values = _form_values(album, ALBUM_FORM)
    return await _album_form(request, album, values | {"back": request.query.get("back", "")})


@routes.post(r"/admin/albums/{id:[0-9]+}/edit", name="admin_album_update")
async def album_update(request: web.Request) -> web.Response:
    who = admin_actor(request)
    catalog = request.app[keys.CATALOG]
    album = await catalog.album(path_id(request))
    values = _album_values(await request.post())
    try:
        saved = await catalog.update_album(album["id"], _album_body(values), who)
    except (InvalidInput, Conflict) as exc:
        errors = _album_errors(exc)
        return await _album_form(request, album, values, errors, form_summary(exc), exc.status)
    return redirect_flash(request, back_to_list(request, values["back"], "admin_albums"),
                          f"Saved {saved['title']}.")


@routes.post(r"/admin/albums/{id:[0-9]+}/cover", name="admin_album_cover")
async def album_cover(request: web.Request) -> web.Response:
    who = admin_actor(request)
    catalog = request.app[keys.CATALOG]
    album = await catalog.album(path_id(request), with_songs=False)
    return await _save_picture(
        request, link(request, "admin_album_edit", id=str(album["id"])), "cover", album["title"],
        lambda image_id: catalog.set_album_cover(album["id"], image_id, who))


@routes.get(r"/admin/albums/{id:[0-9]+}/delete", name="admin_album_delete_confirm")
async def album_delete_confirm(request: web.Request) -> web.Response:
    require_admin(request)
    album = await request.app[keys.CATALOG].album(path_id(request))
    return await confirm_delete(request, "album", album, "admin_albums")


@routes.post(r"/admin/albums/{id:[0-9]+}/delete", name="admin_album_delete")
async def album_delete(request: web.Request) -> web.Response:
    who = admin_actor(request)
    catalog = request.app[keys.CATALOG]

    async def delete() -> str:
        album = await catalog.album(path_id(request), with_songs=False)
        await catalog.delete_album(album["id"], who)
        return f"Deleted {album['title']}; its songs stay in the catalogue."

    return await delete_and_return(request, "admin_albums", "album", delete)
