"""Drives py-sonic (`libsonic.Connection`) against a Sonora /rest and prints what it got as JSON.

py-sonic POSTs form bodies to `<method>.view` and sends Python booleans as `True`/`False`.
Modes: `token` (the password, hashed with a random 12-hex salt per request), `enc` (its
`legacyAuth`: `p=enc:` + upper-case hex), `salted` (a salt and token the caller made, its
`salt=`/`token=` arguments). Its `useGET` fails inside the library in 1.2.0 (`urllib2` is not
defined), so POST is its one transport.

Also serves py-sonic 1.1.2, which subsonic-connector installs: the same `Connection`.
"""

from __future__ import annotations

import hashlib
import time
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
    opens,
    pick,
    picks,
    sha256,
)

SALT = "sonora-given-salt"


def connect(url: str, username: str, secret: str, mode: str) -> Any:
    base, port = host_and_port(url)
    if mode == "salted":
        token = hashlib.md5((secret + SALT).encode(), usedforsecurity=False).hexdigest()
        return libsonic.Connection(base, username, None, port=port, salt=SALT, token=token,
                                   appName="sonora-tests")
    return libsonic.Connection(base, username, secret, port=port, legacyAuth=mode == "enc",
                               appName="sonora-tests")


def drive(conn: Any, ask: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = {"ping": conn.ping()}
    report["license"] = {"valid": conn.getLicense()["license"]["valid"]}
    report["musicFolders"] = picks(conn.getMusicFolders()["musicFolders"]["musicFolder"],
                                   {"id": "id", "name": "name"})
    report["indexes"] = index_artists(conn.getIndexes()["indexes"], INDEXED)
    report["artists"] = index_artists(conn.getArtists()["artists"])
    artist = conn.getArtist(ask["artist"])["artist"]
    report["artist"] = {**pick(artist, ARTIST), "albums": ids(artist.get("album"))}
    album = conn.getAlbum(ask["album"])["album"]
    report["album"] = {**pick(album, ALBUM), "songs": ids(album.get("song"))}
    report["song"] = pick(conn.getSong(ask["song"])["song"], SONG)
    report["directory"] = ids(conn.getMusicDirectory(ask["artist"])["directory"].get("child"))
    report["albumList2"] = {
        "alphabeticalByName": ids(conn.getAlbumList2("alphabeticalByName", size=50)
                                  ["albumList2"].get("album")),
        "newest": ids(conn.getAlbumList2("newest", size=50)["albumList2"].get("album")),
        "byGenre": ids(conn.getAlbumList2("byGenre", size=50, genre=ask["genre"])
                       ["albumList2"].get("album")),
    }
    report["search3"] = found(conn.search3(ask["query"])["searchResult3"])
    report["search3All"] = found(conn.search3("", artistCount=500, albumCount=500,
                                              songCount=500)["searchResult3"])
    report["randomSongs"] = ids(conn.getRandomSongs(size=50)["randomSongs"].get("song"))
    report["starred2"] = found(conn.getStarred2()["starred2"])
    report["user"] = pick(conn.getUser(ask["username"])["user"], USER)
    # includeNotPresent goes out as Python's `False`.
    report["artistInfo2"] = conn.getArtistInfo2(ask["artist"], includeNotPresent=False)["status"]
    return report


def writes(conn: Any, ask: dict[str, Any]) -> dict[str, Any]:
    """Media, annotation and playlists (booleans such as `estimateContentLength` and `submission`
    go out as `False`/`True`)."""
    report: dict[str, Any] = {"stream": sha256(conn.stream(ask["song"]).read()),
                              "download": sha256(conn.download(ask["song"]).read())}
    cover = conn.getAlbum(ask["album"])["album"]["coverArt"]
    report["cover"] = conn.getCoverArt(cover, size=300).headers["Content-Type"]
    marks = {"sids": [ask["song"]], "albumIds": [ask["album"]], "artistIds": [ask["otherArtist"]]}
    conn.star(**marks)
    report["starred"] = found(conn.getStarred2()["starred2"])
    conn.unstar(**marks)
    report["unstarred"] = found(conn.getStarred2()["starred2"])
    report["scrobble"] = conn.scrobble(ask["song"], submission=True)["status"]
    conn.createPlaylist(name=ask["playlist"], songIds=ask["songs"][:2])
    mine = [p for p in conn.getPlaylists()["playlists"].get("playlist", [])
            if p["name"] == ask["playlist"]]
    created = conn.getPlaylist(mine[0]["id"])["playlist"]
    conn.updatePlaylist(created["id"], songIdsToAdd=ask["songs"][2:], songIndexesToRemove=[0])
    updated = conn.getPlaylist(created["id"])["playlist"]
    report["share"] = shares(conn, ask, created["id"])
    conn.deletePlaylist(created["id"])
    left = conn.getPlaylists()["playlists"].get("playlist", [])
    report["playlist"] = {"created": ids(created.get("entry")), "updated": ids(updated.get("entry")),
                          "deleted": created["id"] not in ids(left)}
    return report


def shares(conn: Any, ask: dict[str, Any], playlist: str) -> dict[str, Any]:
    """createShare of the playlist and of a song (expiring tomorrow), getShares, the links
    opened, updateShare, deleteShare (and the song share's playlist deleted after, by name)."""
    tomorrow = time.time() + 86_400
    by_list = conn.createShare([playlist], description=f"{ask['playlist']} list",
                               expires=tomorrow)["shares"]["share"][0]
    by_song = conn.createShare([ask["song"]], description=f"{ask['playlist']} song",
                               expires=tomorrow)["shares"]["share"][0]
    made = [by_list["id"], by_song["id"]]
    listed = {s["id"]: s for s in conn.getShares()["shares"].get("share", [])}
    opened = opens(by_list["url"])
    conn.updateShare(by_list["id"], description=f"{ask['playlist']} renamed")
    renamed = {s["id"]: s for s in conn.getShares()["shares"].get("share", [])}
    for share_id in made:
        conn.deleteShare(share_id)
    left = ids(conn.getShares()["shares"].get("share"))
    for p in conn.getPlaylists()["playlists"].get("playlist", []):
        if p["name"] == f"{ask['playlist']} song":
            conn.deletePlaylist(p["id"])
    return {"playlist": ids(by_list.get("entry")), "songs": ids(by_song.get("entry")),
            "listed": all(i in listed for i in made), "opens": opened,
            "updated": renamed[by_list["id"]]["description"] == f"{ask['playlist']} renamed",
            "revoked": not set(made) & set(left) and not opens(by_list["url"])}


def main() -> None:
    args = arguments()
    conn = connect(args.url, args.username, args.secret, args.mode)
    if args.wrong:
        emit(attempt(conn.ping))
    else:
        emit(writes(conn, args.ask) if args.writes else drive(conn, args.ask))


if __name__ == "__main__":
    main()
