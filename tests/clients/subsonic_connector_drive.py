"""Drives subsonic-connector (`subsonic_connector.connector.Connector`, answers wrapped in its
getter classes, on top of the py-sonic 1.1.2 it pins) against a Sonora /rest and prints what it
got as JSON.

Its configuration is an object with getters (`ConfigurationInterface`); it opens a py-sonic
`Connection` per call, so every request is a form POST to `<method>.view`. Modes: `token` (a
random 12-hex salt per request) and `enc` (`getLegacyAuth()`: `p=enc:` + upper-case hex). It has
no getLicense, getUser or getMusicDirectory; those are listed under `lacks`.
"""

from __future__ import annotations

import urllib.request
from typing import Any

from drive_common import arguments, attempt, emit, host_and_port, sha256
from subsonic_connector.configuration import ConfigurationInterface
from subsonic_connector.connector import Connector
from subsonic_connector.list_type import ListType


class Settings(ConfigurationInterface):
    """What the connector reads its server, credentials and auth mode from."""

    def __init__(self, url: str, username: str, secret: str, legacy: bool) -> None:
        self.base, self.port = host_and_port(url)
        self.username, self.secret, self.legacy = username, secret, legacy

    def getBaseUrl(self) -> str:  # noqa: N802 - the library's interface
        return self.base

    def getPort(self) -> int:  # noqa: N802
        return self.port

    def getServerPath(self) -> str:  # noqa: N802
        return ""

    def getUserName(self) -> str:  # noqa: N802
        return self.username

    def getPassword(self) -> str:  # noqa: N802
        return self.secret

    def getToken(self) -> str:  # noqa: N802
        return ""

    def getSalt(self) -> str:  # noqa: N802
        return ""

    def getApiVersion(self) -> str:  # noqa: N802
        return "1.16.1"

    def getAppName(self) -> str:  # noqa: N802
        return "sonora-tests"

    def getLegacyAuth(self) -> bool:  # noqa: N802
        return self.legacy

    def getUserAgent(self) -> str:  # noqa: N802
        return "sonora-tests"

    def getCustomHeaders(self) -> dict[str, str]:  # noqa: N802
        return {}


def song_of(s: Any) -> dict[str, Any]:
    return {"id": s.getId(), "title": s.getTitle(), "album": s.getAlbum(),
            "albumId": s.getAlbumId(), "artist": s.getArtist(), "artistId": s.getArtistId(),
            "track": s.getTrack(), "year": s.getYear(), "genre": s.getGenre(),
            "suffix": s.getSuffix(), "contentType": s.getContentType(),
            "duration": s.getDuration()}


def album_of(a: Any) -> dict[str, Any]:
    return {"id": a.getId(), "name": a.getTitle(), "artist": a.getArtist(),
            "artistId": a.getArtistId(), "songCount": a.getSongCount(), "year": a.getYear(),
            "genre": a.getGenre()}


def ids(items: Any) -> list[str]:
    return [item.getId() for item in items]


def found(result: Any) -> dict[str, list[str]]:
    return {"artist": ids(result.getArtists()), "album": ids(result.getAlbums()),
            "song": ids(result.getSongs())}


def drive(conn: Connector, ask: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = {"ping": conn.ping(), "lacks": ["license", "user", "directory"]}
    folders = conn.getMusicFolders().getObj().getMusicFolders()
    report["musicFolders"] = [{"id": f.getId(), "name": f.getName()} for f in folders]
    # getIndexes is the one method it hands back as py-sonic's dict.
    report["indexes"] = [{"id": a["id"], "name": a["name"]}
                         for index in conn.getIndexes()["indexes"]["index"] for a in index["artist"]]
    report["artists"] = [{"id": a.getId(), "name": a.getName(), "albumCount": a.getAlbumCount()}
                         for initial in conn.getArtists().getObj().getArtistListInitials()
                         for a in initial.getArtistListItems()]
    artist = conn.getArtist(ask["artist"]).getObj()
    report["artist"] = {"id": artist.getId(), "name": artist.getName(),
                        "albumCount": artist.getAlbumCount(), "albums": ids(artist.getAlbumList())}
    album = conn.getAlbum(ask["album"]).getObj()
    report["album"] = {**album_of(album), "songs": ids(album.getSongs())}
    report["song"] = song_of(conn.getSong(ask["song"]).getObj())
    report["albumList2"] = {
        "alphabeticalByName": ids(conn.getAlbumList(ListType.ALPHABETICAL_BY_NAME, size=50)
                                  .getObj().getAlbums()),
        "newest": ids(conn.getNewestAlbumList(size=50).getObj().getAlbums()),
        "byGenre": ids(conn.getAlbumList(ListType.BY_GENRE, size=50, genre=ask["genre"])
                       .getObj().getAlbums()),
    }
    report["search3"] = found(conn.search(ask["query"]))
    report["search3All"] = found(conn.search("", artistCount=500, albumCount=500, songCount=500))
    report["randomSongs"] = ids(conn.getRandomSongs(size=50).getObj().getSongs())
    report["starred2"] = found(conn.getStarred().getObj())
    # getArtistInfo asks getArtistInfo2 with includeNotPresent as Python's `False`.
    report["artistInfo2"] = conn.getArtistInfo(ask["artist"]).getStatus()
    return report


def fetch(url: str) -> tuple[bytes, str]:
    """GET a URL the connector built for a player: the body and its content type."""
    with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - the test's own server
        return resp.read(), resp.headers["Content-Type"]


def writes(conn: Connector, ask: dict[str, Any]) -> dict[str, Any]:
    """What it has of media and annotation: the stream and cover URLs it builds for players,
    download and scrobble. It cannot star or make playlists."""
    report: dict[str, Any] = {"lacks": ["starred", "unstarred", "playlist"]}
    report["stream"] = sha256(fetch(conn.buildSongUrl(ask["song"]))[0])
    report["download"] = sha256(conn.download(ask["song"]).read())
    cover = conn.getAlbum(ask["album"]).getObj().getCoverArt()
    report["cover"] = fetch(conn.buildCoverArtUrl(cover))[1]
    report["scrobble"] = conn.scrobble(ask["song"], submission=True)["status"]
    return report


def main() -> None:
    args = arguments()
    conn = Connector(Settings(args.url, args.username, args.secret, args.mode == "enc"))
    if args.wrong:
        emit(attempt(conn.ping))
    else:
        emit(writes(conn, args.ask) if args.writes else drive(conn, args.ask))


if __name__ == "__main__":
    main()
