"""Drives subsonic-cli (the `subsonic_cli.Subsonic` class and the `subsonic-cli` command it
installs) against a Sonora /rest and prints what it got as JSON.

subsonic-cli GETs `<method>.view` with `v=1.15.0` and token auth only, its salt a random number
from 0 to 100000 (one to six digits). The driver makes each request take the next of SALTS (the
library draws them with `random.randint`), so every length is sent. Transports: `get-view` (the
class's `request()` and `format_response_body()`) and `command` (the console script, with its
configuration file, one process per call).

On a failed answer the library prints the envelope and raises NotImplementedError (it looks for
`error` beside `subsonic-response` instead of inside it): that is its error for code 40.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import subsonic_cli
from drive_common import (
    ALBUM,
    ARTIST,
    INDEXED,
    SONG,
    USER,
    arguments,
    emit,
    failure,
    found,
    ids,
    index_artists,
    pick,
    picks,
    sha256,
)

SALTS = (0, 7, 42, 999, 12345, 100000)
_salts = itertools.cycle(SALTS)
subsonic_cli.random.randint = lambda low, high: next(_salts)  # type: ignore[attr-defined]


class Caller:
    """One call of a method, through the class or through the command."""

    def __init__(self, url: str, username: str, secret: str, transport: str) -> None:
        self.client = subsonic_cli.Subsonic(url, username, secret)
        self.transport = transport
        self.config = Path(tempfile.mkdtemp()) / "subsonic-cli.ini"
        self.config.write_text(f"[subsonic-cli]\nurl = {url}\nusername = {username}\n"
                               f"password = {secret}\n")

    def raw(self, method: str, **params: Any) -> bytes:
        """A binary method (stream, download, getCoverArt), which it copies to standard output."""
        if self.transport == "command":
            args = [str(Path(sys.executable).parent / "subsonic-cli"), "-c", str(self.config),
                    method]
            for name, value in params.items():
                args += ["-p", name, str(value)]
            out = subprocess.run(args, capture_output=True, timeout=60, check=True).stdout
            # After the bytes, the command prints the JSON of what request() returned: None.
            assert out.endswith(b"null\n"), out[-20:]
            return out[:-len(b"null\n")]
        captured = io.BytesIO()
        real, sys.stdout = sys.stdout, io.TextIOWrapper(captured)
        try:
            self.client.request(method, {k: str(v) for k, v in params.items()})
            sys.stdout.flush()
            return captured.getvalue()
        finally:
            sys.stdout.detach()
            sys.stdout = real

    def __call__(self, method: str, key: str | None = None, **params: Any) -> Any:
        """The answer's `key` element (the whole inside of the envelope when None)."""
        if self.transport == "command":
            args = [str(Path(sys.executable).parent / "subsonic-cli"), "-c", str(self.config),
                    method]
            for name, value in params.items():
                args += ["-p", name, str(value)]
            done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
            body = json.loads(done.stdout)
        else:
            body = self.client.format_response_body(
                self.client.request(method, {k: str(v) for k, v in params.items()}))
        # With more than one field beside status and version (Sonora's envelope has `type`,
        # `serverVersion` and `openSubsonic`), format_response_body returns them all.
        return body[key] if key is not None and key in body else body


def sniff(data: bytes) -> str:
    """The image type of a cover (the command prints bytes with no content type)."""
    for magic, kind in ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"),
                        (b"RIFF", "image/webp")):
        if data.startswith(magic):
            return kind
    return "unknown"


def drive(call: Caller, ask: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = {"ping": "serverVersion" in call("ping")}
    report["license"] = {"valid": call("getLicense", "license")["valid"]}
    report["musicFolders"] = picks(call("getMusicFolders", "musicFolders")["musicFolder"],
                                   {"id": "id", "name": "name"})
    report["indexes"] = index_artists(call("getIndexes", "indexes"), INDEXED)
    report["artists"] = index_artists(call("getArtists", "artists"))
    artist = call("getArtist", "artist", id=ask["artist"])
    report["artist"] = {**pick(artist, ARTIST), "albums": ids(artist.get("album"))}
    album = call("getAlbum", "album", id=ask["album"])
    report["album"] = {**pick(album, ALBUM), "songs": ids(album.get("song"))}
    report["song"] = pick(call("getSong", "song", id=ask["song"]), SONG)
    report["directory"] = ids(call("getMusicDirectory", "directory", id=ask["artist"]).get("child"))
    report["albumList2"] = {
        kind: ids(call("getAlbumList2", "albumList2", type=kind, size=50, **more).get("album"))
        for kind, more in (("alphabeticalByName", {}), ("newest", {}),
                           ("byGenre", {"genre": ask["genre"]}))
    }
    report["search3"] = found(call("search3", "searchResult3", query=ask["query"]))
    report["search3All"] = found(call("search3", "searchResult3", query="", artistCount=500,
                                      albumCount=500, songCount=500))
    report["randomSongs"] = ids(call("getRandomSongs", "randomSongs", size=50).get("song"))
    report["starred2"] = found(call("getStarred2", "starred2"))
    report["user"] = pick(call("getUser", "user", username=ask["username"]), USER)
    report["artistInfo2"] = "ok" if "artistInfo2" in call("getArtistInfo2", id=ask["artist"]) else "failed"
    extensions = call("getOpenSubsonicExtensions", "openSubsonicExtensions")
    report["extra"] = {"extensions": [e["name"] for e in extensions], "salts": list(SALTS)}
    return report


def writes(call: Caller, ask: dict[str, Any]) -> dict[str, Any]:
    """Media, annotation and playlists. It sends one value per parameter name (its parameters are
    a dict), so the playlist gets its songs one call at a time."""
    report: dict[str, Any] = {"stream": sha256(call.raw("stream", id=ask["song"])),
                              "download": sha256(call.raw("download", id=ask["song"]))}
    cover = call("getAlbum", "album", id=ask["album"])["coverArt"]
    report["cover"] = sniff(call.raw("getCoverArt", id=cover, size=300))
    marks = {"id": ask["song"], "albumId": ask["album"], "artistId": ask["otherArtist"]}
    call("star", **marks)
    report["starred"] = found(call("getStarred2", "starred2"))
    call("unstar", **marks)
    report["unstarred"] = found(call("getStarred2", "starred2"))
    report["scrobble"] = "ok" if "serverVersion" in call("scrobble", id=ask["song"],
                                                         submission="true") else "failed"
    first, second, third = ask["songs"]
    call("createPlaylist", name=ask["playlist"], songId=first)
    mine = [p for p in call("getPlaylists", "playlists").get("playlist", [])
            if p["name"] == ask["playlist"]]
    playlist = mine[0]["id"]
    call("updatePlaylist", playlistId=playlist, songIdToAdd=second)
    created = ids(call("getPlaylist", "playlist", id=playlist).get("entry"))
    call("updatePlaylist", playlistId=playlist, songIdToAdd=third)
    call("updatePlaylist", playlistId=playlist, songIndexToRemove=0)
    updated = ids(call("getPlaylist", "playlist", id=playlist).get("entry"))
    call("deletePlaylist", id=playlist)
    left = ids(call("getPlaylists", "playlists").get("playlist"))
    report["playlist"] = {"created": created, "updated": updated, "deleted": playlist not in left}
    return report


def wrong(call: Caller) -> dict[str, Any]:
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            returned = call("ping")
    except Exception as exc:  # noqa: BLE001 - the library's error is what is reported
        # What it printed before raising is the envelope, with the server's message.
        return {"error": {**failure(exc), "message": printed.getvalue()}}
    return {"error": None, "returned": returned}


def main() -> None:
    args = arguments()
    call = Caller(args.url, args.username, args.secret, args.transport)
    if args.wrong:
        emit(wrong(call))
    else:
        emit(writes(call, args.ask) if args.writes else drive(call, args.ask))


if __name__ == "__main__":
    main()
