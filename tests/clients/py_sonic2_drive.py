"""Drives py-sonic2 (`libsonic.Connection`, snake_case methods answering pydantic models) against
a Sonora /rest and prints what it got as JSON.

Modes: `token` (random 12-hex salt per request), `enc` (`legacy_auth`: `p=enc:` + upper-case
hex), `salted` (a salt and token the caller made). Transports: `post-view` (its default, a form
body to `<method>.view`) and `get-view` (`use_get`). Booleans go out as Python's `True`/`False`.
Needs Python 3.12 or newer. Its `get_indexes()` fails on a valid answer (see `indexes`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import libsonic
from drive_common import (
    ALBUM,
    ARTIST,
    INDEXED,
    SONG,
    USER,
    arguments,
    attempt,
    emit,
    found,
    host_and_port,
    ids,
    index_artists,
    pick,
    picks,
    sha256,
)

SALT = "sonora-given-salt"


def connect(url: str, username: str, secret: str, mode: str, transport: str) -> Any:
    base, port = host_and_port(url)
    use_get = transport == "get-view"
    if mode == "salted":
        token = hashlib.md5((secret + SALT).encode(), usedforsecurity=False).hexdigest()
        return libsonic.Connection(base, username, None, port=port, salt=SALT, token=token,
                                   app_name="sonora-tests", use_get=use_get)
    return libsonic.Connection(base, username, secret, port=port, legacy_auth=mode == "enc",
                               app_name="sonora-tests", use_get=use_get)


def indexes(conn: Any) -> Any:
    """getIndexes through the library's own request and model. Its `get_indexes()` cannot be used:
    it divides `lastModified` (milliseconds, an integer in the reference) by 1000 and then
    validates it as an integer, which fails unless the time is a whole second (py-sonic2 1.0.4)."""
    answer = conn._do_info_req(conn._get_request("getIndexes.view"))
    return conn._validate_response(answer, libsonic.models.IndexesResponse)


def drive(conn: Any, ask: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = {"ping": conn.ping()}
    report["license"] = {"valid": conn.get_license().license.valid}
    report["musicFolders"] = picks(conn.get_music_folders().musicFolders.musicFolder,
                                   {"id": "id", "name": "name"})
    report["indexes"] = index_artists(indexes(conn).indexes, INDEXED)
    report["artists"] = index_artists(conn.get_artists().artists)
    artist = conn.get_artist(ask["artist"]).artist
    report["artist"] = {**pick(artist, ARTIST), "albums": ids(artist.album)}
    album = conn.get_album(ask["album"]).album
    report["album"] = {**pick(album, ALBUM), "songs": ids(album.song)}
    report["song"] = pick(conn.get_song(ask["song"]).song, SONG)
    report["directory"] = ids(conn.get_music_directory(ask["artist"]).directory.child)
    report["albumList2"] = {
        "alphabeticalByName": ids(conn.get_album_list2("alphabeticalByName", size=50)
                                  .albumList2.album),
        "newest": ids(conn.get_album_list2("newest", size=50).albumList2.album),
        "byGenre": ids(conn.get_album_list2("byGenre", size=50, genre=ask["genre"])
                       .albumList2.album),
    }
    report["search3"] = found(conn.search3(ask["query"]).searchResult3)
    report["search3All"] = found(conn.search3("", artist_count=500, album_count=500,
                                              song_count=500).searchResult3)
    report["randomSongs"] = ids(conn.get_random_songs(size=50).randomSongs.song)
    report["starred2"] = found(conn.get_starred2().starred2)
    report["user"] = pick(conn.get_user(ask["username"]).user, USER)
    # include_not_present goes out as Python's `False`.
    report["artistInfo2"] = conn.get_artist_info2(ask["artist"], include_not_present=False).status
    return report


@contextlib.contextmanager
def posting(conn: Any) -> Iterator[None]:
    """Its `use_get` fails inside the library for methods with repeated parameters (star, unstar,
    create_playlist, update_playlist: `urllib2` is not defined in py-sonic2 1.0.4), so those go
    as its default POST."""
    was = conn.use_get
    conn.set_get(False)
    try:
        yield
    finally:
        conn.set_get(was)


def writes(conn: Any, ask: dict[str, Any]) -> dict[str, Any]:
    """Media, annotation and playlists."""
    report: dict[str, Any] = {"stream": sha256(conn.stream(ask["song"]).read()),
                              "download": sha256(conn.download(ask["song"]).read())}
    cover = conn.get_album(ask["album"]).album.coverArt
    report["cover"] = conn.get_cover_art(cover, size=300).headers["Content-Type"]
    marks = {"sids": [ask["song"]], "album_ids": [ask["album"]],
             "artist_ids": [ask["otherArtist"]]}
    with posting(conn):
        conn.star(**marks)
    report["starred"] = found(conn.get_starred2().starred2)
    with posting(conn):
        conn.unstar(**marks)
    report["unstarred"] = found(conn.get_starred2().starred2)
    report["scrobble"] = conn.scrobble(ask["song"], submission=True).status
    with posting(conn):
        conn.create_playlist(name=ask["playlist"], song_ids=ask["songs"][:2])
    mine = [p for p in conn.get_playlists().playlists.playlist or [] if p.name == ask["playlist"]]
    created = conn.get_playlist(mine[0].id).playlist
    with posting(conn):
        conn.update_playlist(created.id, song_ids_to_add=ask["songs"][2:],
                             song_indexes_to_remove=[0])
    updated = conn.get_playlist(created.id).playlist
    conn.delete_playlist(created.id)
    left = conn.get_playlists().playlists.playlist or []
    report["playlist"] = {"created": ids(created.entry), "updated": ids(updated.entry),
                          "deleted": created.id not in ids(left)}
    return report


def main() -> None:
    args = arguments()
    conn = connect(args.url, args.username, args.secret, args.mode, args.transport)
    if args.wrong:
        emit(attempt(conn.ping))
    else:
        emit(writes(conn, args.ask) if args.writes else drive(conn, args.ask))


if __name__ == "__main__":
    main()
