"""What the read-only methods share (browsing, lists, searching): the request's `Shaper`, the
caller's stars for the items of an answer, and the page parameters as the reference takes them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from app.services.types import Album, Artist, Song
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
                artists: Iterable[Artist] = ()) -> Stars:
    """When the caller starred each of these items (one read for all of them)."""
    wanted = {"songs": [s["id"] for s in songs], "albums": [a["id"] for a in albums],
              "artists": [a["id"] for a in artists]}
    if not any(wanted.values()):
        return Stars(songs={}, albums={}, artists={})
    found = await call.app[keys.LIBRARY].added_at_each(call.user.user_id, wanted)
    return Stars(songs=found["songs"], albums=found["albums"], artists=found["artists"])


async def album_with_stars(call: Call, album_id: int) -> tuple[Album, Stars]:
    """An album with its songs, and the caller's stars on them: the two reads at once."""
    album, found = await asyncio.gather(
        call.app[keys.CATALOG].album(album_id),
        call.app[keys.LIBRARY].album_stars(call.user.user_id, album_id))
    return album, Stars(songs=found["songs"], albums=found["albums"])


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
