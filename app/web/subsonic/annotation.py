"""Annotation: star, unstar, setRating and scrobble.

Starring is the library of SPEC 5.2 (a starred song is a liked song, an album a saved one, an
artist a followed one), through the library service: what an app stars shows in the pages and
the /api/library lists, and the reverse. `scrobble` with submission=true counts each play once
per user, song and `time` through the same `play.recorded` event as `POST /api/stream/play`
(ListeningService.scrobble); submission=false sets what the player is playing now
(NowPlayingService), which getNowPlaying lists.

Sonora has no ratings yet (SPEC 16 brings them with a later issue, and the issue asks the
methods whose data comes later to answer validly from what exists now): setRating checks its
id and rating as the reference says, answers ok and keeps nothing, so apps that rate as they
play go on working; no `userRating` is shown anywhere until ratings are stored.
"""

from __future__ import annotations

from app.web import keys
from app.web.subsonic.envelope import Payload
from app.web.subsonic.errors import MISSING_PARAMETER, SubsonicError
from app.web.subsonic.registry import Call, Methods
from app.web.subsonic.shapes import parse_id

methods = Methods()
MAX_ITEMS = 500  # the most ids one star, unstar or scrobble takes (an offline queue replayed)
LIBRARY_KINDS = {"song": "songs", "album": "albums", "artist": "artists"}


def _items(call: Call) -> list[tuple[str, int]]:
    """The library items named by `id` (a song, album or artist id), `albumId` and `artistId`,
    each repeatable; at least one is required, and every one must name something (70)."""
    named: list[tuple[str, tuple[str, ...]]] = [
        (value, ("song", "album", "artist")) for value in call.params.texts("id")]
    named += [(value, ("album",)) for value in call.params.texts("albumId")]
    named += [(value, ("artist",)) for value in call.params.texts("artistId")]
    if not named:
        raise SubsonicError(MISSING_PARAMETER, "Required parameter 'id', 'albumId' or 'artistId'"
                            " is missing")
    if len(named) > MAX_ITEMS:
        raise SubsonicError(MISSING_PARAMETER, f"At most {MAX_ITEMS} items at once")
    items: list[tuple[str, int]] = []
    for value, kinds in named:
        kind, number = parse_id(value, *kinds)
        items.append((LIBRARY_KINDS[kind], number))
    return list(dict.fromkeys(items))


@methods.method("star")
async def star(call: Call) -> Payload:
    await call.app[keys.LIBRARY].add_all(call.user.user_id, _items(call))
    return {}


@methods.method("unstar")
async def unstar(call: Call) -> Payload:
    await call.app[keys.LIBRARY].remove_all(call.user.user_id, _items(call))
    return {}


@methods.method("setRating")
async def set_rating(call: Call) -> Payload:
    kind, number = parse_id(call.params.text("id"), "song", "album", "artist")
    call.params.integer("rating", lo=0, hi=5)
    catalog = call.app[keys.CATALOG]
    if kind == "song":
        await catalog.song(number)
    elif kind == "album":
        await catalog.album(number, with_songs=False)
    else:
        await catalog.artist(number)
    return {}  # nothing kept until ratings exist (see the module docstring)


@methods.method("scrobble")
async def scrobble(call: Call) -> Payload:
    values = call.params.ids("id", MAX_ITEMS)
    songs = [parse_id(value, "song")[1] for value in values]
    times = _times(call, len(songs))
    me = call.user
    if call.params.flag("submission", True):
        await call.app[keys.LISTENING].scrobble(me.user_id, list(zip(songs, times, strict=True)))
        return {}
    # "Now playing": the app's player (its app password) started the last song named.
    player = call.params.get("c") or "app"
    await call.app[keys.NOW_PLAYING].playing(me.user_id, me.username, me.app_password_id, player,
                                             songs[-1])
    return {}


def _times(call: Call, count: int) -> list[int | None]:
    """The `time` of each id (ms since 1970), by position; ids past the last time have none."""
    raw = call.params.values.getall("time", [])
    if len(raw) > count:
        raise SubsonicError(MISSING_PARAMETER, "More 'time' values than 'id' values")
    times: list[int | None] = []
    for value in raw:
        if not value.strip():
            times.append(None)
            continue
        stripped = value.strip()
        if not (stripped.isascii() and stripped.isdigit() and len(stripped) <= 15):
            raise SubsonicError(MISSING_PARAMETER,
                                "Parameter 'time' must be milliseconds since 1970")
        times.append(int(stripped))
    return times + [None] * (count - len(times))
