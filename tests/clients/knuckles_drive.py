"""Drives knuckles (`knuckles.Subsonic`, answers as its own model objects) against a Sonora /rest
and prints what it got as JSON.

knuckles calls `/rest/<method>` (no `.view`). Modes: `plain` (`use_token=False`: `p` as it is)
and `token` (a 32-hex salt per request). Transports: `get` and `post` (`request_method`; POST sends
a form body). Booleans go out as Python's `True`/`False`.

Four of its methods fail on answers that follow the reference, so the driver makes those calls
through its lower-level `api.json_request` (the request, auth and error handling it uses
everywhere):
- `system.get_open_subsonic_extensions()` reads `openSubsonicExtensions` as a dict (it is a list);
- `user_management.get_user()` reads `password`, `ldapAuthenticated`, `musicFolderId` and
  `maxBitRate`, which the reference's `user` does not have;
- `browsing.get_artists_indexed()` hands `lastModified` (required by the reference) to a model
  that takes no such argument;
- `browsing.get_artist_info()` requires `biography`, `musicBrainzId`, `lastFmUrl` and the three
  image URLs, all optional in the reference's `artistInfo2`.
"""

from __future__ import annotations

import mimetypes
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import knuckles
import requests
from drive_common import USER, arguments, attempt, emit, ids, opens, pick, sha256


def connect(url: str, username: str, secret: str, mode: str, transport: str) -> Any:
    method = knuckles.RequestMethod.POST if transport == "post" else knuckles.RequestMethod.GET
    return knuckles.Subsonic(url, username, secret, "sonora-tests", use_https=False,
                             use_token=mode == "token", request_method=method)


def named(item: Any) -> tuple[str | None, str | None]:
    """(id, name) of a knuckles Album or Artist that another object points at."""
    if item is None:
        return None, None
    return item.id, item.name


def song(s: Any) -> dict[str, Any]:
    album_id, album = named(s.album)
    artist_id, artist = named(s.artist)
    return {"id": s.id, "title": s.title, "album": album, "albumId": album_id, "artist": artist,
            "artistId": artist_id, "track": s.track, "year": s.year,
            "genre": s.genre.value if s.genre else None, "suffix": s.suffix,
            "contentType": s.content_type, "duration": s.duration}


def album(a: Any) -> dict[str, Any]:
    artist_id, artist = named(a.artist)
    return {"id": a.id, "name": a.name, "artist": artist, "artistId": artist_id,
            "songCount": a.song_count, "year": a.year, "genre": a.genre, "songs": ids(a.songs)}


def artist(a: Any) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "albumCount": a.album_count}


def found(result: Any) -> dict[str, list[str]]:
    return {"artist": ids(result.artists), "album": ids(result.albums), "song": ids(result.songs)}


def artists_indexed(sub: Any) -> Any:
    """getIndexes as `browsing.get_artists_indexed()` would return it, through the lower-level
    request: that method passes every field of `indexes` to `ArtistIndex`, which takes no
    `lastModified` (a required field in the reference)."""
    answer = sub.api.json_request("getIndexes")["indexes"]
    return knuckles.ArtistIndex(sub, answer["ignoredArticles"], answer.get("index"))


def drive(sub: Any, ask: dict[str, Any]) -> dict[str, Any]:
    browsing, lists = sub.browsing, sub.lists
    report: dict[str, Any] = {"ping": sub.system.ping().status == "ok"}
    report["license"] = {"valid": sub.system.get_license().valid}
    report["musicFolders"] = [{"id": f.id, "name": f.name} for f in browsing.get_music_folders()]
    indexed = artists_indexed(sub).index or {}
    report["indexes"] = [{"id": a.id, "name": a.name} for letter in indexed.values() for a in letter]
    report["artists"] = [artist(a) for a in browsing.get_artists()]
    one = browsing.get_artist(ask["artist"])
    report["artist"] = {**artist(one), "albums": ids(one.albums)}
    report["album"] = album(browsing.get_album(ask["album"]))
    report["song"] = song(browsing.get_song(ask["song"]))
    report["directory"] = ids(browsing.get_music_directory(ask["artist"]).songs)
    report["albumList2"] = {
        "alphabeticalByName": ids(lists.get_album_list_alphabetical_by_name(50)),
        "newest": ids(lists.get_album_list_newest(50)),
        "byGenre": ids(lists.get_album_list_by_genre(ask["genre"], 50)),
    }
    report["search3"] = found(sub.searching.search(ask["query"]))
    report["search3All"] = found(sub.searching.search("", song_count=500, album_count=500,
                                                      artist_count=500))
    report["randomSongs"] = ids(lists.get_random_songs(50))
    report["starred2"] = found(lists.get_starred())
    # Through the lower-level request: get_user() reads fields the reference does not have.
    report["user"] = pick(sub.api.json_request("getUser", {"username": ask["username"]})["user"],
                          USER)
    # Through the lower-level request: get_artist_info() requires fields the reference leaves
    # optional (and Sonora, which keeps no artist biographies yet, leaves out).
    report["artistInfo2"] = sub.api.json_request("getArtistInfo2", {"id": ask["artist"]})["status"]
    # Through the lower-level request: get_open_subsonic_extensions() expects a dict.
    extensions = sub.api.json_request("getOpenSubsonicExtensions")["openSubsonicExtensions"]
    report["extra"] = {"extensions": [e["name"] for e in extensions]}
    return report


def writes(sub: Any, ask: dict[str, Any]) -> dict[str, Any]:
    """Media (its `stream()` makes a URL to GET; `download()` and `get_cover_art()` save files),
    annotation and playlists."""
    media, marks, lists = sub.media_retrieval, sub.media_annotation, sub.lists
    folder = Path(tempfile.mkdtemp())
    report: dict[str, Any] = {
        "stream": sha256(requests.get(media.stream(ask["song"]), timeout=60).content),
        "download": sha256(media.download(ask["song"], folder / "song").read_bytes()),
    }
    cover = sub.browsing.get_album(ask["album"]).cover_art.id
    report["cover"] = mimetypes.guess_type(media.get_cover_art(cover, folder, 300).name)[0]
    marks.star_song(ask["song"]).media_annotation.star_album(ask["album"])
    marks.star_artist(ask["otherArtist"])
    report["starred"] = found(lists.get_starred())
    marks.unstar_song(ask["song"]).media_annotation.unstar_album(ask["album"])
    marks.unstar_artist(ask["otherArtist"])
    report["unstarred"] = found(lists.get_starred())
    marks.scrobble([ask["song"]], [datetime.now(UTC)], submission=True)
    report["scrobble"] = "ok"  # it raises on a failed answer
    created = sub.playlists.create_playlist(ask["playlist"], song_ids=ask["songs"][:2])
    songs = ids(sub.playlists.get_playlist(created.id).songs)
    sub.playlists.update_playlist(created.id, song_ids_to_add=ask["songs"][2:],
                                  song_indexes_to_remove=[0])
    updated = ids(sub.playlists.get_playlist(created.id).songs)
    report["share"] = shares(sub, ask, created.id)
    sub.playlists.delete_playlist(created.id)
    report["playlist"] = {"created": songs, "updated": updated,
                          "deleted": created.id not in ids(sub.playlists.get_playlists())}
    return report


def shares(sub: Any, ask: dict[str, Any], playlist: str) -> dict[str, Any]:
    """createShare of the playlist and of a song (expiring tomorrow: knuckles sends the
    milliseconds with a fraction), getShares, the links opened, updateShare, deleteShare (and the
    song share's playlist deleted after, by name)."""
    sharing = sub.sharing
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    by_list = sharing.create_share([playlist], f"{ask['playlist']} list", tomorrow)
    by_song = sharing.create_share([ask["song"]], f"{ask['playlist']} song", tomorrow)
    made = [by_list.id, by_song.id]
    listed = {s.id: s for s in sharing.get_shares()}
    opened = opens(by_list.url)
    sharing.update_share(by_list.id, f"{ask['playlist']} renamed")
    renamed = sharing.get_share(by_list.id)
    for share_id in made:
        sharing.delete_share(share_id)
    left = ids(sharing.get_shares())
    for p in sub.playlists.get_playlists():
        if p.name == f"{ask['playlist']} song":
            sub.playlists.delete_playlist(p.id)
    return {"playlist": ids(by_list.songs), "songs": ids(by_song.songs),
            "listed": all(i in listed for i in made), "opens": opened,
            "updated": renamed is not None and renamed.description == f"{ask['playlist']} renamed",
            "revoked": not set(made) & set(left) and not opens(by_list.url)}


def main() -> None:
    args = arguments()
    sub = connect(args.url, args.username, args.secret, args.mode, args.transport)
    if args.wrong:
        emit(attempt(lambda: sub.system.ping().status))
    else:
        emit(writes(sub, args.ask) if args.writes else drive(sub, args.ask))


if __name__ == "__main__":
    main()
