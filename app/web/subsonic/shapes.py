"""The reference's response shapes built from Sonora's rows, shared by the method modules (which
never import each other)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from yarl import URL

from app.repos.db import Row
from app.services.types import Album, Artist, IndexArtist, Links, Playlist, Song
from app.web.subsonic.envelope import Walked
from app.web.subsonic.errors import NOT_FOUND, SubsonicError
from app.web.subsonic.params import numeric_id

# Sonora has one library; apps see it as one music folder.
MUSIC_FOLDER_ID = 1
MUSIC_FOLDER = {"id": MUSIC_FOLDER_ID, "name": "Music"}


def user_element(row: Row, with_email: bool) -> dict[str, Any]:
    """A Sonora account as the reference's `user`: the roles say what the account can do here.
    Every listener streams, downloads, gets covers, makes playlists and share links, scrobbles and
    changes their own settings; uploading and administration are the admins'; Sonora has no
    comments, podcasts, jukebox or video, so those roles are false."""
    admin = row["role"] == "admin"
    return {
        "username": row["username"],
        "email": row["email"] if with_email else None,
        "scrobblingEnabled": True,
        "adminRole": admin,
        "settingsRole": True,
        "downloadRole": True,
        "uploadRole": admin,
        "playlistRole": True,
        "coverArtRole": True,
        "commentRole": False,
        "podcastRole": False,
        "streamRole": True,
        "jukeboxRole": False,
        "shareRole": True,
        "videoConversionRole": False,
        "folder": [MUSIC_FOLDER_ID],
    }


# ---------------------------------------------------------------- ids
#
# Ids are opaque strings to a client; Sonora's are a kind prefix and the row's number, so one id
# names one kind of thing and getMusicDirectory / getSimilarSongs can tell what they were given:
#
#     artist  "ar-<artists.id>"     e.g. "ar-12"
#     album   "al-<albums.id>"      e.g. "al-7"
#     song    "tr-<songs.id>"       e.g. "tr-1234"   (also a Child's id, and what stream,
#                                                     download, scrobble and star take as `id`)
#     music folder  1 (MUSIC_FOLDER_ID; the library is one folder)
#     playlist "pl-<playlists.id>"  e.g. "pl-5"    (getPlaylist, updatePlaylist's playlistId,
#                                                     deletePlaylist, createShare)
#
# Cover art ids (`coverArt` of songs, albums and artists; what getCoverArt takes as `id`) name
# the picture itself, not its owner:
#
#     cover   "im-<images.id>"      e.g. "im-88"
#
# so an app's cached cover is refreshed when an album gets a new one (the id changes), a song
# with its own picture shows it rather than its album's, and getCoverArt needs no catalogue
# read: it serves image <id> at the fixed size nearest `size` (images are public, as
# /api/image is). Entities without a picture have no `coverArt` at all. getCoverArt should also
# take an artist, album or song id ("ar-", "al-", "tr-"), which some apps send when an item has
# no coverArt, and answer that item's current picture, or 70 when it has none.
# `parse_id` turns any of these back into (kind, number); anything else is error 70.

ARTIST, ALBUM, SONG, COVER = "ar-", "al-", "tr-", "im-"
PLAYLIST = "pl-"
KINDS = {ARTIST: "artist", ALBUM: "album", SONG: "song", COVER: "cover", PLAYLIST: "playlist"}


def index_letter(name: str) -> str:
    """The artist index entry a name is listed under: its first letter, or "#"."""
    first = name.strip()[:1].upper()
    return first if first.isalpha() else "#"


def artist_id(number: int) -> str:
    return f"{ARTIST}{number}"


def album_id(number: int) -> str:
    return f"{ALBUM}{number}"


def song_id(number: int) -> str:
    return f"{SONG}{number}"


def playlist_id(number: int) -> str:
    return f"{PLAYLIST}{number}"


def cover_id(image_id: int | None) -> str | None:
    return f"{COVER}{image_id}" if image_id else None


def parse_id(value: str, *kinds: str) -> tuple[str, int]:
    """(kind, number) of an id of one of `kinds` ("artist", "album", "song", "cover",
    "playlist"; any of
    them when none is given); any other id names nothing here: error 70."""
    for prefix, kind in KINDS.items():
        if value.startswith(prefix) and (not kinds or kind in kinds):
            return kind, numeric_id(value, prefix)
    raise SubsonicError(NOT_FOUND, "Not found")


# ---------------------------------------------------------------- shapes


# The file suffix apps show and name downloads by, from the stored MIME type (and codec, for
# Ogg, which holds Vorbis or Opus).
SUFFIXES = {"audio/mpeg": "mp3", "audio/flac": "flac", "audio/ogg": "ogg", "audio/mp4": "m4a",
            "audio/wav": "wav"}
UNSAFE_PATH = re.compile(r"[/\\\x00-\x1f]")


def suffix(song: Song) -> str:
    if song["codec"] == "opus":
        return "opus"
    return SUFFIXES.get(song["mime_type"], song["codec"] or "bin")


def seconds(ms: int) -> int:
    return int(round(ms / 1000))


def _path_part(text: str) -> str:
    return UNSAFE_PATH.sub("_", text).strip() or "_"


@dataclass(frozen=True)
class Stars:
    """When the caller starred each item (liked songs, saved albums, followed artists: their
    library, SPEC 5.2), as the reference's `starred` times; items absent are not starred."""

    songs: Mapping[int, str] = field(default_factory=dict)
    albums: Mapping[int, str] = field(default_factory=dict)
    artists: Mapping[int, str] = field(default_factory=dict)


NO_STARS = Stars()


class Shaper:
    """Sonora's shapes (app/services/types.py) as the reference's: Child, AlbumID3, ArtistID3,
    Artist and Directory. Built per request: picture URLs are made absolute with the address the
    app used (an app shows `artistImageUrl` outside any page), and a picture's id is read back
    from its URL through the image route, which is the one place that URL scheme is written."""

    def __init__(self, origin: URL, image_path: str, links: Links) -> None:
        self.origin = origin
        self.image_prefix = image_path.split("{", 1)[0]
        self.links = links

    # pictures
    def image_id(self, url: str | None) -> int | None:
        """The image a picture URL of the services' shapes shows (None: no picture)."""
        if not url:
            return None
        rest = URL(url).path.removeprefix(self.image_prefix)
        return int(rest) if rest != URL(url).path and rest.isdigit() else None

    def cover(self, url: str | None) -> str | None:
        return cover_id(self.image_id(url))

    def absolute(self, url: str | None, size: int | None = None) -> str | None:
        """A picture's URL as an app can fetch it (at `size` when given)."""
        image = self.image_id(url)
        if image is None:
            return None
        path = self.links.image(image, size) if size else url
        assert path is not None
        return str(self.origin.join(URL(path)))

    # songs
    def child(self, song: Song, stars: Stars = NO_STARS) -> dict[str, Any]:
        """A song as the reference's Child."""
        album = song["album"]
        name = album["title"] if album else None
        ext = suffix(song)
        track = song["track_number"]
        file_name = f"{track:02d} - {song['title']}" if track else song["title"]
        path = "/".join(_path_part(p) for p in (song["artist"]["name"], name or "", file_name)
                        if p) + f".{ext}"
        artists = [song["artist"], *song["featured_artists"]]
        return {
            "id": song_id(song["id"]),
            "parent": album_id(album["id"]) if album else artist_id(song["artist_id"]),
            "isDir": False,
            "title": song["title"],
            "album": name,
            "artist": song["artist"]["name"],
            "track": track,
            "year": song["year"],
            "genre": song["genre"],
            "coverArt": self.cover(song["cover_url"]),
            "size": song["size"],
            "contentType": song["mime_type"],
            "suffix": ext,
            "duration": seconds(song["duration_ms"]),
            "bitRate": int(round(song["bitrate"] / 1000)),
            "samplingRate": song["sample_rate"] or None,
            "path": path,
            "isVideo": False,
            "playCount": song["play_count"],
            "discNumber": song["disc_number"],
            "created": song["created_at"],
            "starred": stars.songs.get(song["id"]),
            "albumId": album_id(album["id"]) if album else None,
            "artistId": artist_id(song["artist_id"]),
            "type": "music",
            "mediaType": "song",
            "genres": [{"name": song["genre"]}] if song["genre"] else [],
            "artists": [{"id": artist_id(a["id"]), "name": a["name"]} for a in artists],
            "displayArtist": ", ".join(a["name"] for a in artists),
            "explicitStatus": "explicit" if song["explicit"] else "",
        }

    # albums
    def album_id3(self, album: Album, stars: Stars = NO_STARS,
                  songs: list[Song] | None = None) -> dict[str, Any]:
        """An album as the reference's AlbumID3 (AlbumID3WithSongs when `songs` is given)."""
        shaped: dict[str, Any] = {
            "id": album_id(album["id"]),
            "name": album["title"],
            "artist": album["artist"]["name"],
            "artistId": artist_id(album["artist_id"]),
            "coverArt": self.cover(album["cover_url"]),
            "songCount": album["song_count"],
            "duration": seconds(album["duration_ms"]),
            "created": album["created_at"],
            "starred": stars.albums.get(album["id"]),
            "year": album["year"],
            "genre": album["genre"],
            "genres": [{"name": album["genre"]}] if album["genre"] else [],
            "artists": [{"id": artist_id(album["artist_id"]), "name": album["artist"]["name"]}],
            "displayArtist": album["artist"]["name"],
            "releaseTypes": [album["album_type"]],
            "isCompilation": album["album_type"] == "compilation",
        }
        if songs is not None:
            shaped["song"] = [self.child(s, stars) for s in songs]
        return shaped

    def album_child(self, album: Album, stars: Stars = NO_STARS) -> dict[str, Any]:
        """An album as a folder in folder browsing and the folder-style lists (a Child with
        isDir true, whose parent is its artist's folder)."""
        return {
            "id": album_id(album["id"]),
            "parent": artist_id(album["artist_id"]),
            "isDir": True,
            "title": album["title"],
            "album": album["title"],
            "artist": album["artist"]["name"],
            "year": album["year"],
            "genre": album["genre"],
            "coverArt": self.cover(album["cover_url"]),
            "duration": seconds(album["duration_ms"]),
            "created": album["created_at"],
            "starred": stars.albums.get(album["id"]),
            "albumId": album_id(album["id"]),
            "artistId": artist_id(album["artist_id"]),
            "mediaType": "album",
        }

    # artists
    def artist_id3(self, artist: Artist, stars: Stars = NO_STARS,
                   album_count: int | None = None) -> dict[str, Any]:
        """An artist as the reference's ArtistID3."""
        count = album_count if album_count is not None else artist.get("album_count")
        return {
            "id": artist_id(artist["id"]),
            "name": artist["name"],
            "coverArt": self.cover(artist["image_url"]),
            "artistImageUrl": self.absolute(artist["image_url"]),
            "albumCount": count,
            "starred": stars.artists.get(artist["id"]),
        }

    def index(self, artists: list[IndexArtist], stars: Stars, id3: bool) -> list[dict[str, Any]]:
        """The artist index (ArtistID3 entries when `id3`, else Artist) under its letters, "#"
        first, each letter's artists in the order given. Shaped as `artist_id3` and `artist`
        shape one artist but in one loop: an index holds tens of thousands of artists, most of
        them without a picture, and the per-call costs of those methods add up there. No member
        is None (what is absent is left out), so the envelope sends the entries unwalked."""
        starred = stars.artists
        groups: dict[str, Walked] = {}
        letters: dict[str, str] = {}  # by a name's first character: tens of them for 20,000
        origin = str(self.origin)  # scheme and authority: a picture's path is joined to it as is
        for number, name, image, album_count in artists:
            entry: dict[str, Any] = {"id": f"{ARTIST}{number}", "name": name}
            if image:
                if id3:
                    entry["coverArt"] = f"{COVER}{image}"
                entry["artistImageUrl"] = origin + self.links.image(image)
            if id3:
                entry["albumCount"] = album_count
            when = starred.get(number)
            if when is not None:
                entry["starred"] = when
            first = name[:1]
            letter = letters.get(first) if not first.isspace() else index_letter(name)
            if letter is None:
                letter = letters[first] = index_letter(first)
            group = groups.get(letter)
            if group is None:
                group = groups[letter] = Walked()
            group.append(entry)
        return [{"name": letter, "artist": groups[letter]}
                for letter in sorted(groups, key=lambda n: (n != "#", n))]

    def artist(self, artist: Artist, stars: Stars = NO_STARS) -> dict[str, Any]:
        """An artist as the reference's Artist (folder browsing: getIndexes, search2)."""
        return {
            "id": artist_id(artist["id"]),
            "name": artist["name"],
            "artistImageUrl": self.absolute(artist["image_url"]),
            "starred": stars.artists.get(artist["id"]),
        }

    # playlists
    def playlist(self, playlist: Playlist, duration_ms: int, songs: list[Song] | None = None,
                 stars: Stars = NO_STARS) -> dict[str, Any]:
        """A playlist as the reference's Playlist (PlaylistWithSongs when `songs` is given).
        Sonora's collaborators are not listed as `allowedUser`: that list is the owner's to
        read in the pages, not every viewer's of a public playlist."""
        shaped: dict[str, Any] = {
            "id": playlist_id(playlist["id"]),
            "name": playlist["name"],
            "comment": playlist["description"] or None,
            "owner": playlist["owner"]["username"],
            "public": playlist["is_public"],
            "songCount": playlist["song_count"],
            "duration": seconds(duration_ms),
            "created": playlist["created_at"],
            "changed": playlist["updated_at"],
            "coverArt": self.cover(playlist["cover_url"]),
        }
        if songs is not None:
            shaped["entry"] = [self.child(s, stars) for s in songs]
        return shaped
