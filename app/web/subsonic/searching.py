"""Searching: search2 (folder shapes) and search3 (tag shapes), each type paged on its own.

A query is searched in the search index, as `/api/search` does (songs, albums, artists; never
playlists). An empty query (`query=` or `query=""`, as DSub sends it) pages through the whole
catalogue, as OpenSubsonic asks so that apps can sync everything: songs by id, albums by title,
artists by name — orders that are stable while nothing is written, so pages of any size walk
every item exactly once. Each reads its page along an index (the songs from where the previous
page ended, see CatalogService.songs_at)."""

from __future__ import annotations

import asyncio
from typing import Any

from app.adapters.search.port import Filters
from app.services.types import Album, Artist, Song
from app.web import keys
from app.web.subsonic.envelope import Payload
from app.web.subsonic.errors import MISSING_PARAMETER, SubsonicError
from app.web.subsonic.reading import offset, shaper, size, stars
from app.web.subsonic.registry import Call, Methods

methods = Methods()
EMPTY_QUERIES = ("", '""', "''")


async def _search(call: Call) -> tuple[list[Artist], list[Album], list[Song]]:
    raw = call.params.values.get("query")
    if raw is None:
        raise SubsonicError(MISSING_PARAMETER, "Required parameter 'query' is missing")
    artist_count, artist_offset = size(call, "artistCount", 20), offset(call, "artistOffset")
    album_count, album_offset = size(call, "albumCount", 20), offset(call, "albumOffset")
    song_count, song_offset = size(call, "songCount", 20), offset(call, "songOffset")
    catalog = call.app[keys.CATALOG]
    text = raw.strip()
    artists: list[Artist] = []
    albums: list[Album] = []
    songs: list[Song] = []
    if text in EMPTY_QUERIES:
        if artist_count:
            artists = (await catalog.artist_list("", artist_count, artist_offset))["items"]
        if album_count:
            albums = (await catalog.album_list({}, album_count, album_offset, "title"))["items"]
        if song_count:
            songs = await catalog.songs_at(song_offset, song_count)
        return artists, albums, songs
    search = call.app[keys.SEARCH]
    me = call.user.user_id

    async def one(kind: str, count: int, skip: int) -> list[Any]:
        return (await search.search_type(kind, text, me, Filters(), count, skip))["items"] \
            if count else []
    # The three kinds at once: each is a search of the index and a read of its rows.
    found = await asyncio.gather(one("artist", artist_count, artist_offset),
                                 one("album", album_count, album_offset),
                                 one("song", song_count, song_offset))
    return found[0], found[1], found[2]


@methods.method("search2")
async def search2(call: Call) -> Payload:
    artists, albums, songs = await _search(call)
    starred = await stars(call, songs=songs, albums=albums, artists=artists)
    shapes = shaper(call)
    return {"searchResult2": {"artist": [shapes.artist(a, starred) for a in artists],
                              "album": [shapes.album_child(a, starred) for a in albums],
                              "song": [shapes.child(s, starred) for s in songs]}}


@methods.method("search3")
async def search3(call: Call) -> Payload:
    artists, albums, songs = await _search(call)
    counted, starred = await asyncio.gather(
        call.app[keys.CATALOG].with_counts(artists), stars(call, songs=songs, albums=albums,
                                                          artists=artists))
    shapes = shaper(call)
    return {"searchResult3": {"artist": [shapes.artist_id3(a, starred) for a in counted],
                              "album": [shapes.album_id3(a, starred) for a in albums],
                              "song": [shapes.child(s, starred) for s in songs]}}
