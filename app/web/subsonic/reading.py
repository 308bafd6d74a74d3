"""What the read-only methods share (browsing, lists, searching): the request's `Shaper`, the
caller's stars for the items of an answer, and the page parameters as the reference takes them."""

from __future__ import annotations

from collections.abc import Iterable

from app.services.types import Album, Artist, IndexArtist, Song
from app.web import keys
from app.web.links import links
from app.web.subsonic.registry import Call
from app.web.subsonic.shapes import Shaper, Stars

MAX_PAGE = 500  # the most items a list or search answers at once (the reference's maximum)


def shaper(call: Call) -> Shaper:
    """The shapes of this request (absolute picture URLs use the address the app called)."""
    request = call.request
    image_route = request.app.router["api_image"]
    return Shaper(request.url.origin(), image_route.canonical, links(request))


async def stars(call: Call, songs: Iterable[Song] = (), albums: Iterable[Album] = (),
                artists: Iterable[Artist | IndexArtist] = ()) -> Stars:
    """When the caller starred each of these items (one read per kind that has items)."""
    library = call.app[keys.LIBRARY]
    me = call.user.user_id
    song_ids = [s["id"] for s in songs]
    album_ids = [a["id"] for a in albums]
    artist_ids = [a["id"] for a in artists]
    return Stars(
        songs=await library.added_at("songs", me, song_ids) if song_ids else {},
        albums=await library.added_at("albums", me, album_ids) if album_ids else {},
        artists=await library.added_at("artists", me, artist_ids) if artist_ids else {},
    )


def size(call: Call, name: str, default: int, most: int = MAX_PAGE) -> int:
    """A count of items, cut to 0..`most`: an app asking for size=100000 (or a number of any
    length) gets the most there is; a value that is not a number is error 10."""
    raw = (call.params.get(name) or "").strip()
    if raw.isascii() and raw.isdigit() and len(raw) > 18:
        return most
    return call.params.integer(name, default, lo=0, hi=most, clamp=True)


def offset(call: Call, name: str = "offset") -> int:
    """A list offset: 0 or more (a negative one is error 10)."""
    return call.params.integer(name, 0, lo=0)
