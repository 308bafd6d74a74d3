"""Browsing: getMusicFolders (Sonora's one library, as one folder); by tags (getArtists,
getArtist, getAlbum, getSong, getGenres, getArtistInfo2, getAlbumInfo2, getTopSongs,
getSimilarSongs2); and by folders (getIndexes, getMusicDirectory, getArtistInfo, getAlbumInfo,
getSimilarSongs) over the tree artist → album → song, which DSub and Ultrasonic browse by default.

Ids and cover ids are those of shapes.py. The catalogue is the same for every listener; only
`starred` (the caller's own library) differs between callers.

Sonora keeps no similar artists or songs yet (a later issue brings them): the artist and album
infos answer the biography and pictures there are with no similar artists, and the similar songs
are the most played songs of the same artist (the song asked about left out)."""

from __future__ import annotations

from typing import Any

from app.services.types import IndexArtist, Song
from app.web import keys
from app.web.subsonic.envelope import Payload
from app.web.subsonic.reading import album_with_stars, shaper, size, stars
from app.web.subsonic.registry import Call, Methods
from app.web.subsonic.shapes import (
    MUSIC_FOLDER,
    SONG,
    Shaper,
    Stars,
    album_id,
    artist_id,
    parse_id,
)

methods = Methods()
methods.extension("topSongsByArtistId", (1,))  # getTopSongs takes an artist `id`
# getTopSongs takes `id` as well as `artist` (OpenSubsonic's topSongsByArtistId, version 1); it is
# advertised once tests/test_subsonic_core.py's exact list of extensions names it.
ARTIST_ALBUMS_MAX = 2000  # the most albums an artist's answer lists
SIMILAR_MAX = 500
IMAGE_SIZES = (64, 300, 640)  # small, medium, large: the fixed sizes images are served at


@methods.method("getMusicFolders")
async def get_music_folders(call: Call) -> Payload:
    return {"musicFolders": {"musicFolder": [MUSIC_FOLDER]}}


# ---------------------------------------------------------------- the artist index


async def _index(call: Call) -> tuple[list[IndexArtist], Shaper, Stars]:
    artists = await call.app[keys.CATALOG].artist_index()
    # The caller's followed artists, read whole: far fewer than the artists of the index.
    followed = await call.app[keys.LIBRARY].everything_added("artists", call.user.user_id)
    return artists, shaper(call), Stars(artists=followed)


@methods.method("getIndexes")
async def get_indexes(call: Call) -> Payload:
    artists, shapes, starred = await _index(call)
    # ifModifiedSince is not needed to answer correctly: the whole index is always sent.
    return {"indexes": {
        "ignoredArticles": "",
        "lastModified": await call.app[keys.CATALOG].artists_changed_at(),
        "index": shapes.index(artists, starred, id3=False),
    }}


@methods.method("getArtists")
async def get_artists(call: Call) -> Payload:
    artists, shapes, starred = await _index(call)
    return {"artists": {
        "ignoredArticles": "",
        "index": shapes.index(artists, starred, id3=True),
    }}


# ---------------------------------------------------------------- artists, albums and songs


async def _artist_albums(call: Call, number: int) -> tuple[Any, list[Any]]:
    """An artist (70 when unknown) and their albums, by year."""
    catalog = call.app[keys.CATALOG]
    artist = await catalog.artist(number)
    albums, total = await catalog.artist_albums(number, 500, 0)
    while len(albums) < min(total, ARTIST_ALBUMS_MAX):
        more, _ = await catalog.artist_albums(number, 500, len(albums))
        if not more:
            break
        albums.extend(more)
    return artist, albums


@methods.method("getArtist")
async def get_artist(call: Call) -> Payload:
    _, number = parse_id(call.params.text("id"), "artist")
    artist, albums = await _artist_albums(call, number)
    starred = await stars(call, albums=albums, artists=[artist])
    shapes = shaper(call)
    return {"artist": {**shapes.artist_id3(artist, starred, album_count=len(albums)),
                       "album": [shapes.album_id3(a, starred) for a in albums]}}


@methods.method("getAlbum")
async def get_album(call: Call) -> Payload:
    _, number = parse_id(call.params.text("id"), "album")
    album, starred = await album_with_stars(call, number)
    return {"album": shaper(call).album_id3(album, starred, songs=album.get("songs", []))}


@methods.method("getSong")
async def get_song(call: Call) -> Payload:
    _, number = parse_id(call.params.text("id"), "song")
    song = await call.app[keys.CATALOG].song(number)
    return {"song": shaper(call).child(song, await stars(call, songs=[song]))}


@methods.method("getMusicDirectory")
async def get_music_directory(call: Call) -> Payload:
    kind, number = parse_id(call.params.text("id"), "artist", "album")
    shapes = shaper(call)
    if kind == "artist":
        artist, albums = await _artist_albums(call, number)
        starred = await stars(call, albums=albums, artists=[artist])
        return {"directory": {
            "id": artist_id(number), "name": artist["name"],
            "starred": starred.artists.get(number),
            "child": [shapes.album_child(a, starred) for a in albums],
        }}
    album, starred = await album_with_stars(call, number)
    songs = album.get("songs", [])
    return {"directory": {
        "id": album_id(number), "parent": artist_id(album["artist_id"]), "name": album["title"],
        "starred": starred.albums.get(number),
        "child": [shapes.child(s, starred) for s in songs],
    }}


@methods.method("getGenres")
async def get_genres(call: Call) -> Payload:
    catalog = call.app[keys.CATALOG]
    genres = (await catalog.browse())["genres"]
    albums = await catalog.genre_album_counts()
    return {"genres": {"genre": [
        {"value": g["genre"], "songCount": g["songs"], "albumCount": albums.get(g["genre"].lower(), 0)}
        for g in genres]}}


# ---------------------------------------------------------------- infos


async def _artist_of(call: Call, value: str) -> int:
    """The artist an artist, album or song id is by (70 for an unknown one)."""
    kind, number = parse_id(value, "artist", "album", "song")
    catalog = call.app[keys.CATALOG]
    if kind == "album":
        return (await catalog.album(number, with_songs=False))["artist_id"]
    if kind == "song":
        return (await catalog.song(number))["artist_id"]
    return number


async def _artist_info(call: Call) -> dict[str, Any]:
    call.params.integer("count", 20, lo=0, clamp=True)  # no similar artists to count yet
    call.params.flag("includeNotPresent", False)
    artist = await call.app[keys.CATALOG].artist(await _artist_of(call, call.params.text("id")))
    shapes = shaper(call)
    small, medium, large = (shapes.absolute(artist["image_url"], s) for s in IMAGE_SIZES)
    return {"biography": artist["bio"], "smallImageUrl": small, "mediumImageUrl": medium,
            "largeImageUrl": large, "similarArtist": []}


@methods.method("getArtistInfo")
async def get_artist_info(call: Call) -> Payload:
    return {"artistInfo": await _artist_info(call)}


@methods.method("getArtistInfo2")
async def get_artist_info2(call: Call) -> Payload:
    return {"artistInfo2": await _artist_info(call)}


async def _album_info(call: Call) -> dict[str, Any]:
    kind, number = parse_id(call.params.text("id"), "album", "song")
    catalog = call.app[keys.CATALOG]
    if kind == "song":
        song = await catalog.song(number)
        if song["album_id"] is None:
            return {}
        number = song["album_id"]
    album = await catalog.album(number, with_songs=False)
    shapes = shaper(call)
    small, medium, large = (shapes.absolute(album["cover_url"], s) for s in IMAGE_SIZES)
    return {"smallImageUrl": small, "mediumImageUrl": medium, "largeImageUrl": large}


@methods.method("getAlbumInfo")
async def get_album_info(call: Call) -> Payload:
    return {"albumInfo": await _album_info(call)}


@methods.method("getAlbumInfo2")
async def get_album_info2(call: Call) -> Payload:
    return {"albumInfo": await _album_info(call)}  # the reference names it albumInfo too


# ---------------------------------------------------------------- top and similar songs


async def _songs_answer(call: Call, songs: list[Song]) -> list[dict[str, Any]]:
    starred = await stars(call, songs=songs)
    shapes = shaper(call)
    return [shapes.child(s, starred) for s in songs]


@methods.method("getTopSongs")
async def get_top_songs(call: Call) -> Payload:
    count = size(call, "count", 50, SIMILAR_MAX)
    catalog = call.app[keys.CATALOG]
    raw_id = call.params.get("id")
    if raw_id is not None:
        number: int | None = parse_id(raw_id, "artist")[1]
    else:
        # An unknown name has no top songs (an empty list, as the reference's servers answer).
        number = await catalog.artist_id_by_name(call.params.text("artist"))
    songs = await catalog.artist_top_songs(number, count) if number and count else []
    return {"topSongs": {"song": await _songs_answer(call, songs)}}


async def _similar(call: Call) -> list[dict[str, Any]]:
    value = call.params.text("id")
    count = size(call, "count", 50, SIMILAR_MAX)
    catalog = call.app[keys.CATALOG]
    artist = await _artist_of(call, value)
    if not count:
        return []
    leave_out = parse_id(value)[1] if value.startswith(SONG) else None
    songs = [s for s in await catalog.artist_top_songs(artist, count + 1) if s["id"] != leave_out]
    return await _songs_answer(call, songs[:count])


@methods.method("getSimilarSongs")
async def get_similar_songs(call: Call) -> Payload:
    return {"similarSongs": {"song": await _similar(call)}}


@methods.method("getSimilarSongs2")
async def get_similar_songs2(call: Call) -> Payload:
    return {"similarSongs2": {"song": await _similar(call)}}
