"""Drives py-opensonic (`libopensonic.AsyncConnection`, answers as strict dataclasses that check
required fields) against a Sonora /rest and prints what it got as JSON.

Modes: `token` (random 16-hex salt per request), `enc` (`legacy_auth`: `p=enc:` + upper-case
hex), `apiKey` (`api_key`, then `tokenInfo`). Transports: `post-view` (its default, a form body
to `<method>.view`), `get-view` (`use_get`), and `post` / `get` without `.view`
(`use_views=False`). Booleans go out as `true`/`false`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import libopensonic
from drive_common import (
    INDEXED,
    arguments,
    emit,
    failure,
    found,
    host_and_port,
    ids,
    index_artists,
    pick,
    picks,
    sha256,
)
from libopensonic.media.media_types import MusicFolder

SONG = {"id": "id", "title": "title", "album": "album", "albumId": "album_id",
        "artist": "artist", "artistId": "artist_id", "track": "track", "year": "year",
        "genre": "genre", "suffix": "suffix", "contentType": "content_type",
        "duration": "duration"}
ALBUM = {"id": "id", "name": "name", "artist": "artist", "artistId": "artist_id",
         "songCount": "song_count", "year": "year", "genre": "genre"}
ARTIST = {"id": "id", "name": "name", "albumCount": "album_count"}
USER = {"username": "username", "adminRole": "admin_role", "streamRole": "stream_role",
        "downloadRole": "download_role", "playlistRole": "playlist_role"}


def connect(url: str, username: str, secret: str, mode: str, transport: str) -> Any:
    base, port = host_and_port(url)
    options = {"port": port, "app_name": "sonora-tests", "use_get": transport.startswith("get"),
               "use_views": transport.endswith("-view")}
    if mode == "apiKey":
        return libopensonic.AsyncConnection(base, api_key=secret, **options)
    return libopensonic.AsyncConnection(base, username, secret, legacy_auth=mode == "enc",
                                        **options)


async def music_folders(conn: Any) -> list[Any]:
    """getMusicFolders through the library's own request and dataclass. Its
    `get_music_folders()` iterates `musicFolders` (an object) instead of
    `musicFolders.musicFolder` (the list), so it fails on a valid answer (py-opensonic 10.4.1)."""
    answer = await conn._handle_info_res(await conn._do_request("getMusicFolders"))
    return [MusicFolder.from_dict(f) for f in answer["musicFolders"]["musicFolder"]]


async def drive(conn: Any, ask: dict[str, Any], mode: str) -> dict[str, Any]:
    report: dict[str, Any] = {"ping": await conn.ping()}
    report["license"] = {"valid": (await conn.get_license())["license"]["valid"]}
    report["musicFolders"] = picks(await music_folders(conn), {"id": "id", "name": "name"})
    report["indexes"] = index_artists(await conn.get_indexes(), INDEXED)
    report["artists"] = index_artists(await conn.get_artists(), ARTIST)
    artist = await conn.get_artist(ask["artist"])
    report["artist"] = {**pick(artist, ARTIST), "albums": ids(artist.album)}
    album = await conn.get_album(ask["album"])
    report["album"] = {**pick(album, ALBUM), "songs": ids(album.song)}
    report["song"] = pick(await conn.get_song(ask["song"]), SONG)
    report["directory"] = ids((await conn.get_music_directory(ask["artist"])).child)
    report["albumList2"] = {
        "alphabeticalByName": ids(await conn.get_album_list2("alphabeticalByName", size=50)),
        "newest": ids(await conn.get_album_list2("newest", size=50)),
        "byGenre": ids(await conn.get_album_list2("byGenre", size=50, genre=ask["genre"])),
    }
    report["search3"] = found(await conn.search3(ask["query"]))
    report["search3All"] = found(await conn.search3("", artist_count=500, album_count=500,
                                                    song_count=500))
    report["randomSongs"] = ids(await conn.get_random_songs(size=50))
    report["starred2"] = found(await conn.get_starred2())
    report["user"] = pick(await conn.get_user(ask["username"]), USER)
    report["artistInfo2"] = "ok" if await conn.get_artist_info2(ask["artist"]) else "failed"
    extensions = await conn.get_open_subsonic_extensions()
    report["extra"] = {"extensions": [e.name for e in extensions]}
    if mode == "apiKey":
        report["extra"]["tokenInfo"] = (await conn.token_info()).username
    return report


async def writes(conn: Any, ask: dict[str, Any]) -> dict[str, Any]:
    """Media, annotation and playlists."""
    report: dict[str, Any] = {"stream": sha256(await (await conn.stream(ask["song"])).read()),
                              "download": sha256(await (await conn.download(ask["song"])).read())}
    cover = (await conn.get_album(ask["album"])).cover_art
    report["cover"] = (await conn.get_cover_art(cover, size=300)).headers["Content-Type"]
    marks = {"sids": [ask["song"]], "album_ids": [ask["album"]],
             "artist_ids": [ask["otherArtist"]]}
    await conn.star(**marks)
    report["starred"] = found(await conn.get_starred2())
    await conn.unstar(**marks)
    report["unstarred"] = found(await conn.get_starred2())
    report["scrobble"] = "ok" if await conn.scrobble(ask["song"], submission=True) else "failed"
    await conn.create_playlist(name=ask["playlist"], song_ids=ask["songs"][:2])
    mine = [p for p in await conn.get_playlists() if p.name == ask["playlist"]]
    created = await conn.get_playlist(mine[0].id)
    await conn.update_playlist(created.id, song_ids_to_add=ask["songs"][2:],
                               song_indices_to_remove=[0])
    updated = await conn.get_playlist(created.id)
    await conn.delete_playlist(created.id)
    left = await conn.get_playlists()
    report["playlist"] = {"created": ids(created.entry), "updated": ids(updated.entry),
                          "deleted": created.id not in ids(left)}
    return report


async def main() -> None:
    args = arguments()
    conn = connect(args.url, args.username, args.secret, args.mode, args.transport)
    try:
        if args.wrong:
            try:
                emit({"error": None, "returned": await conn.ping()})
            except Exception as exc:  # noqa: BLE001 - the library's error is what is reported
                emit({"error": failure(exc)})
        elif args.writes:
            emit(await writes(conn, args.ask))
        else:
            emit(await drive(conn, args.ask, args.mode))
    finally:
        await conn.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
