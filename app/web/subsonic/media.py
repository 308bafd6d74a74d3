"""Media: stream, download, getCoverArt, getAvatar, and the lyrics methods.

`stream` and `download` are the JSON API's stream path (app/web/stream.py over the streaming
core): the same ranges, validators, per-user stream slots and pacing, and never a play counted
(plays are what `scrobble` reports). Until transcoding lands (SPEC 14) every `format` answers
the original bytes, as `format=raw` does, `maxBitRate` is ignored, and `timeOffset` too: the
reference applies it to music only with the `transcodeOffset` extension, which is therefore not
advertised. An unsatisfiable Range is HTTP 416 with `Content-Range: bytes */N`, as on
/api/stream, its body the error envelope; every other error is an envelope in the format asked.

Pictures come in the fixed sizes /api/image serves (app/media/images.py), `size` mapped to the
nearest. Sonora has lyrics from a later issue (SPEC 16): until then no song has any, and
getLyrics/getLyricsBySongId answer so, validly (`songLyrics` is advertised: getLyricsBySongId
answers by its document, an empty list for a song without lyrics).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from app import errors
from app.media.images import SIZES
from app.services.streaming import Grant
from app.web import keys
from app.web.stream import serve
from app.web.subsonic import envelope
from app.web.subsonic.envelope import Payload
from app.web.subsonic.errors import GENERIC, NOT_FOUND, SubsonicError
from app.web.subsonic.reading import shaper
from app.web.subsonic.reading import size as bounded
from app.web.subsonic.registry import Call, Methods
from app.web.subsonic.shapes import parse_id, suffix

methods = Methods()
methods.extension("songLyrics", (1,))  # getLyricsBySongId: structured lyrics (none yet) by song id

AVATAR_SIZE = 300
# Numbers past these are taken as "the most there is" (any length of digits is a number).
MAX_PIXELS = 100_000
MAX_BITRATE = 100_000
MAX_OFFSET = 10**9
# An item's current picture may change; a cover id ("im-") names one picture for good.
ITEM_PICTURE_CACHE = "private, max-age=300"
COVER_CACHE = "public, max-age=31536000, immutable"


async def _send_song(call: Call, song_id: int, extra: dict[str, str] | None = None
                     ) -> web.StreamResponse:
    """The song's original bytes through the stream path, as the caller's stream."""
    grant = Grant(call.user.user_id, call.user.app_password_id)
    try:
        return await serve(call.request, song_id, grant, extra)
    except errors.RangeNotSatisfiable as exc:
        # An HTTP-level answer to a Range header, as /api/stream gives: 416 and the length.
        fmt, _ = envelope.resolve_format(call.params.values)
        answer = envelope.failed(SubsonicError(GENERIC, exc.message, headers=exc.headers), fmt,
                                 call.api.server_version)
        answer.set_status(416)
        return answer


def _song(call: Call) -> int:
    return parse_id(call.params.text("id"), "song")[1]


@methods.method("stream")
async def stream(call: Call) -> web.StreamResponse:
    song_id = _song(call)
    # Read so that a value that is not a number is refused as the reference's error 10, and
    # otherwise ignored until transcoding lands (SPEC 14): the original bytes for any format.
    bounded(call, "maxBitRate", 0, MAX_BITRATE)
    bounded(call, "timeOffset", 0, MAX_OFFSET)
    return await _send_song(call, song_id)


@methods.method("download")
async def download(call: Call) -> web.StreamResponse:
    song_id = _song(call)
    song = await call.app[keys.CATALOG].song(song_id)  # unknown: 70
    name = f"{song['artist']['name']} - {song['title']}.{suffix(song)}"
    return await _send_song(call, song_id, {"Content-Disposition": attachment(name)})


def attachment(name: str) -> str:
    """Content-Disposition for a file name of any script: an ASCII fallback and the UTF-8 name
    (RFC 6266), with nothing that could end the header or a path part."""
    clean = "".join(c if c.isprintable() and c not in '/\\"' else "_" for c in name)[:200]
    fallback = "".join(c if c.isascii() and c not in ";%" else "_" for c in clean)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(clean, safe='')}"


def nearest_size(size: int) -> int:
    """The fixed size nearest to `size` (the larger of two as near)."""
    return min(SIZES, key=lambda s: (abs(s - size), -s))


async def _picture(call: Call, image_id: int | None, size: int, cache: str) -> web.StreamResponse:
    path: Path | None = None
    if image_id is not None:
        path = await call.app[keys.INGEST].image_path(image_id, nearest_size(size))
    if path is None or not path.is_file():
        raise SubsonicError(NOT_FOUND, "No such picture")
    return web.FileResponse(path, headers={"Cache-Control": cache, "Content-Type": "image/jpeg"})


def _size(call: Call) -> int:
    return bounded(call, "size", max(SIZES), MAX_PIXELS)


@methods.method("getCoverArt")
async def get_cover_art(call: Call) -> web.StreamResponse:
    kind, number = parse_id(call.params.text("id"))
    size = _size(call)
    if kind == "cover":
        return await _picture(call, number, size, COVER_CACHE)
    # Some apps send the item's own id when it has no coverArt: its current picture, if any.
    catalog, shapes = call.app[keys.CATALOG], shaper(call)
    if kind == "song":
        url = (await catalog.song(number))["cover_url"]
    elif kind == "album":
        url = (await catalog.album(number, with_songs=False))["cover_url"]
    elif kind == "artist":
        url = (await catalog.artist(number))["image_url"]
    else:  # a playlist's picture, when the caller may see the playlist (else 70)
        access = await call.app[keys.PLAYLISTS].access(number, call.user.user_id)
        cover = access.row["cover_image_id"]
        return await _picture(call, int(cover) if cover else None, size, ITEM_PICTURE_CACHE)
    return await _picture(call, shapes.image_id(url), size, ITEM_PICTURE_CACHE)


@methods.method("getAvatar")
async def get_avatar(call: Call) -> web.StreamResponse:
    row = await call.app[keys.USERS].by_username(call.params.text("username"))  # unknown: 70
    image_id = row["avatar_image_id"]
    return await _picture(call, int(image_id) if image_id else None, AVATAR_SIZE,
                          ITEM_PICTURE_CACHE)


@methods.method("getLyrics")
async def get_lyrics(call: Call) -> Payload:
    # No song has lyrics yet (SPEC 16 brings them): the reference's answer for "none found".
    return {"lyrics": {"artist": call.params.get("artist"), "title": call.params.get("title"),
                       "value": ""}}


@methods.method("getLyricsBySongId")
async def get_lyrics_by_song_id(call: Call) -> Payload:
    await call.app[keys.CATALOG].song(_song(call))  # unknown: 70
    return {"lyricsList": {"structuredLyrics": []}}
