"""Lists: getAlbumList and getAlbumList2 (every `type`), getRandomSongs, getSongsByGenre,
getStarred and getStarred2 (the caller's library: liked songs, saved albums, followed artists),
and getNowPlaying.

Every list reads its page from an index (app/repos/catalog.py): newest, alphabeticalByName and
byGenre are the catalogue's album lists; alphabeticalByArtist and byYear their own indexed
queries; random picks random ids; frequent and recent are the caller's own plays; starred the
caller's saved albums. Sonora has no ratings yet (setRating comes with a later issue), so
`highest` answers as `frequent` until it does. getNowPlaying lists what apps said they are
playing (scrobble with submission=false), every listener's, as the reference shows it."""

from __future__ import annotations

import time
from typing import Any

from app.services.types import Album
from app.web import keys
from app.web.subsonic.envelope import Payload
from app.web.subsonic.errors import MISSING_PARAMETER, SubsonicError
from app.web.subsonic.reading import offset, shaper, size, stars
from app.web.subsonic.registry import Call, Methods
from app.web.subsonic.shapes import Stars

methods = Methods()
LIST_TYPES = ("random", "newest", "highest", "frequent", "recent", "alphabeticalByName",
              "alphabeticalByArtist", "starred", "byYear", "byGenre")
STARRED_MAX = 5000  # the most items of each kind getStarred lists
LIBRARY_PAGE = 500


async def _album_list(call: Call) -> list[Album]:
    """The albums of getAlbumList/getAlbumList2's `type`, one page of them."""
    kind = call.params.text("type")
    if kind not in LIST_TYPES:
        raise SubsonicError(MISSING_PARAMETER, f"Parameter 'type' must be one of {', '.join(LIST_TYPES)}")
    count, skip = size(call, "size", 10), offset(call)
    catalog = call.app[keys.CATALOG]
    me = call.user.user_id
    if kind == "byYear":
        first, last = call.params.integer("fromYear"), call.params.integer("toYear")
        return await catalog.albums_by_years(first, last, count, skip) if count else []
    if kind == "byGenre":
        genre = call.params.text("genre")
        return (await catalog.album_list({"genre": genre}, count, skip, "title"))["items"] if count else []
    if not count:
        return []
    if kind == "random":
        return await catalog.random_albums(count)
    if kind in ("newest", "alphabeticalByName"):
        order = "newest" if kind == "newest" else "title"
        return (await catalog.album_list({}, count, skip, order))["items"]
    if kind == "alphabeticalByArtist":
        return await catalog.albums_by_artist(count, skip)
    if kind in ("frequent", "highest"):
        return await call.app[keys.LISTENING].top_albums(me, count, skip)
    if kind == "recent":
        return await call.app[keys.LISTENING].recent_albums(me, count, skip)
    saved, _ = await call.app[keys.LIBRARY].page("albums", me, count, skip)  # starred
    return [entry["album"] for entry in saved]


@methods.method("getAlbumList")
async def get_album_list(call: Call) -> Payload:
    albums = await _album_list(call)
    starred = await stars(call, albums=albums)
    shapes = shaper(call)
    return {"albumList": {"album": [shapes.album_child(a, starred) for a in albums]}}


@methods.method("getAlbumList2")
async def get_album_list2(call: Call) -> Payload:
    albums = await _album_list(call)
    starred = await stars(call, albums=albums)
    shapes = shaper(call)
    return {"albumList2": {"album": [shapes.album_id3(a, starred) for a in albums]}}


@methods.method("getRandomSongs")
async def get_random_songs(call: Call) -> Payload:
    count = size(call, "size", 10)
    genre = call.params.optional_text("genre")
    first, last = _optional_int(call, "fromYear"), _optional_int(call, "toYear")
    songs = await call.app[keys.CATALOG].random_songs(count, genre, first, last) if count else []
    starred = await stars(call, songs=songs)
    shapes = shaper(call)
    return {"randomSongs": {"song": [shapes.child(s, starred) for s in songs]}}


def _optional_int(call: Call, name: str) -> int | None:
    return None if call.params.get(name) is None else call.params.integer(name)


@methods.method("getSongsByGenre")
async def get_songs_by_genre(call: Call) -> Payload:
    genre = call.params.text("genre")
    count, skip = size(call, "count", 10), offset(call)
    page = await call.app[keys.CATALOG].song_list({"genre": genre}, count, skip, "newest") \
        if count else None
    songs = page["items"] if page else []
    starred = await stars(call, songs=songs)
    shapes = shaper(call)
    return {"songsByGenre": {"song": [shapes.child(s, starred) for s in songs]}}


async def _library(call: Call, kind: str) -> list[Any]:
    """The caller's whole library of one kind (up to STARRED_MAX), newest first."""
    library = call.app[keys.LIBRARY]
    entries, total = await library.page(kind, call.user.user_id, LIBRARY_PAGE, 0)
    while len(entries) < min(total, STARRED_MAX):
        more, _ = await library.page(kind, call.user.user_id, LIBRARY_PAGE, len(entries))
        if not more:
            break
        entries.extend(more)
    return list(entries[:STARRED_MAX])


async def _starred(call: Call) -> tuple[list[Any], list[Any], list[Any], Stars]:
    songs = await _library(call, "songs")
    albums = await _library(call, "albums")
    artists = await _library(call, "artists")
    starred = Stars(songs={e["song"]["id"]: e["added_at"] for e in songs},
                    albums={e["album"]["id"]: e["added_at"] for e in albums},
                    artists={e["artist"]["id"]: e["added_at"] for e in artists})
    return ([e["song"] for e in songs], [e["album"] for e in albums],
            [e["artist"] for e in artists], starred)


@methods.method("getStarred")
async def get_starred(call: Call) -> Payload:
    songs, albums, artists, starred = await _starred(call)
    shapes = shaper(call)
    return {"starred": {"artist": [shapes.artist(a, starred) for a in artists],
                        "album": [shapes.album_child(a, starred) for a in albums],
                        "song": [shapes.child(s, starred) for s in songs]}}


@methods.method("getStarred2")
async def get_starred2(call: Call) -> Payload:
    songs, albums, artists, starred = await _starred(call)
    shapes = shaper(call)
    return {"starred2": {"artist": [shapes.artist_id3(a, starred) for a in artists],
                         "album": [shapes.album_id3(a, starred) for a in albums],
                         "song": [shapes.child(s, starred) for s in songs]}}


@methods.method("getNowPlaying")
async def get_now_playing(call: Call) -> Payload:
    entries = await call.app[keys.NOW_PLAYING].entries()
    starred = await stars(call, songs=[e["song"] for e in entries])
    shapes = shaper(call)
    now = time.time()
    return {"nowPlaying": {"entry": [
        {**shapes.child(e["song"], starred), "username": e["username"],
         "minutesAgo": max(0, int((now - e["started_at"]) // 60)), "playerId": e["player_id"],
         "playerName": e["player_name"]}
        for e in entries]}}
