"""What the Python drivers of tests/clients share: their arguments, the report they print, and
turning a library's answer (a dict or an object of its own) into the plain shapes the test
compares.

A driver runs under its library's own interpreter (tests/test_subsonic_clients.py makes one
virtual environment per library), so this module imports nothing but the standard library and
works on every Python the drivers run on (3.11 and newer).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

SONG = {"id": "id", "title": "title", "album": "album", "albumId": "albumId", "artist": "artist",
        "artistId": "artistId", "track": "track", "year": "year", "genre": "genre",
        "suffix": "suffix", "contentType": "contentType", "duration": "duration"}
ALBUM = {"id": "id", "name": "name", "artist": "artist", "artistId": "artistId",
         "songCount": "songCount", "year": "year", "genre": "genre"}
ARTIST = {"id": "id", "name": "name", "albumCount": "albumCount"}
USER = {"username": "username", "adminRole": "adminRole", "streamRole": "streamRole",
        "downloadRole": "downloadRole", "playlistRole": "playlistRole"}


def arguments() -> argparse.Namespace:
    """url username secret mode transport ask [--wrong | --writes]: `ask` is a JSON object naming
    what to ask for (artist, album, song, songs, otherArtist, query, genre, playlist); `--wrong`
    only tries to sign in and reports the library's error; `--writes` streams, downloads, gets a
    cover, stars and unstars, scrobbles and makes, edits and deletes a playlist (leaving the
    member's library as it found it) instead of browsing."""
    parser = argparse.ArgumentParser()
    parser.add_argument("url", help="http://127.0.0.1:PORT")
    parser.add_argument("username")
    parser.add_argument("secret", help="an app password")
    parser.add_argument("mode", help="auth mode, as the test names it")
    parser.add_argument("transport", help="transport, as the test names it")
    parser.add_argument("ask", type=json.loads)
    parser.add_argument("--wrong", action="store_true")
    parser.add_argument("--writes", action="store_true")
    return parser.parse_args()


def host_and_port(url: str) -> tuple[str, int]:
    """`http://127.0.0.1:PORT` as the libraries that take them apart want it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}", int(parts.port or 80)


def emit(report: Mapping[str, Any]) -> None:
    json.dump(report, sys.stdout, default=str)
    sys.stdout.write("\n")


def failure(exc: BaseException) -> dict[str, str]:
    return {"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": str(exc)}


def attempt(call: Callable[[], Any]) -> dict[str, Any]:
    """The result of a call that should fail: the exception the library raised, or what it
    returned when it raised none."""
    try:
        returned = call()
    except Exception as exc:  # noqa: BLE001 - reporting whatever the library raises is the point
        return {"error": failure(exc)}
    return {"error": None, "returned": returned}


def opens(url: str) -> bool:
    """Whether a share link opens (200) for someone with no credentials at all."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - the test's own server
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get(item: Any, name: str) -> Any:
    """A field of a dict or an attribute of an object (None when it has none)."""
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def pick(item: Any, fields: Mapping[str, str]) -> dict[str, Any]:
    """{output name: the item's field or attribute named by `fields`}."""
    return {out: get(item, name) for out, name in fields.items()}


def picks(items: Any, fields: Mapping[str, str]) -> list[dict[str, Any]]:
    return [pick(item, fields) for item in items or []]


def ids(items: Any) -> list[str]:
    return [str(get(item, "id")) for item in items or []]


def found(result: Any, artist: str = "artist", album: str = "album", song: str = "song") -> dict[str, list[str]]:
    """The ids of a search or starred answer, by kind."""
    return {"artist": ids(get(result, artist)), "album": ids(get(result, album)),
            "song": ids(get(result, song))}


INDEXED = {"id": "id", "name": "name"}


def index_artists(indexes: Any, fields: Mapping[str, str] = ARTIST, key: str = "index",
                  artist: str = "artist") -> list[dict[str, Any]]:
    """The artists of an index answer (getArtists; getIndexes with INDEXED), in order."""
    return [pick(a, fields) for index in get(indexes, key) or [] for a in get(index, artist) or []]
