"""Playlists: getPlaylists, getPlaylist, createPlaylist, updatePlaylist, deletePlaylist.

The same playlists and the same rules as the pages and /api/playlist (SPEC 5), through the
playlist service: a private playlist of another user is "not found" (70), someone else's public
one can be read but not changed (50); collaborators change the songs of a collaborative one.
Ids are "pl-<id>" (shapes.py). updatePlaylist's changes are made in one transaction, with
`songIndexToRemove` positions in the list as it was before the call; createPlaylist with a
`playlistId` replaces that playlist's songs.
"""

from __future__ import annotations

from typing import Any

from app.services.types import Playlist, Song
from app.web import keys
from app.web.subsonic.envelope import Payload
from app.web.subsonic.errors import MISSING_PARAMETER, NOT_AUTHORIZED, NOT_FOUND, SubsonicError
from app.web.subsonic.reading import shaper, stars
from app.web.subsonic.registry import Call, Methods
from app.web.subsonic.shapes import parse_id

methods = Methods()
PAGE = 500
MOST_PLAYLISTS = 5000  # the most getPlaylists lists
MOST_SONGS = 10_000  # a playlist's most entries (PlaylistService.MAX_ENTRIES)
SONG_CHECK = 500  # songs checked per catalogue read


def _playlist_number(call: Call, name: str) -> int:
    return parse_id(call.params.text(name), "playlist")[1]


async def _song_numbers(call: Call, name: str) -> list[int]:
    """The songs of a repeatable song id parameter; an id naming no song is 70, before any
    change is made."""
    values = call.params.texts(name)
    if len(values) > MOST_SONGS:
        raise SubsonicError(MISSING_PARAMETER, f"At most {MOST_SONGS} songs at once")
    numbers = [parse_id(value, "song")[1] for value in values]
    wanted = sorted(set(numbers))
    catalog = call.app[keys.CATALOG]
    for start in range(0, len(wanted), SONG_CHECK):
        chunk = wanted[start:start + SONG_CHECK]
        found, _ = await catalog.songs({"ids": chunk}, len(chunk), 0)
        if len(found) != len(chunk):
            raise SubsonicError(NOT_FOUND, "No such song")
    return numbers


async def _all(load: Any) -> list[Playlist]:
    """Every page of a paged playlist read, up to MOST_PLAYLISTS."""
    items, total = await load(PAGE, 0)
    while len(items) < min(total, MOST_PLAYLISTS):
        more, _ = await load(PAGE, len(items))
        if not more:
            break
        items.extend(more)
    return list(items[:MOST_PLAYLISTS])


@methods.method("getPlaylists")
async def get_playlists(call: Call) -> Payload:
    service = call.app[keys.PLAYLISTS]
    me = call.user
    username = call.params.get("username")
    if username is not None and username.lower() != me.username.lower():
        if not me.is_admin:
            raise SubsonicError(NOT_AUTHORIZED, "Only admins can list another user's playlists")
        owner = await call.app[keys.USERS].by_username(username)  # unknown: 70
        # An admin sees the user's own and collaborative playlists, as the user does.
        found = await _all(lambda limit, offset: service.mine(int(owner["id"]), limit, offset))
    else:
        mine = await _all(lambda limit, offset: service.mine(me.user_id, limit, offset))
        public = await _all(lambda limit, offset: service.public("", limit, offset))
        seen = {p["id"] for p in mine}
        found = mine + [p for p in public if p["id"] not in seen]
    shapes = shaper(call)
    return {"playlists": {"playlist": [
        shapes.playlist(p, await service.duration_ms(p["id"])) for p in found[:MOST_PLAYLISTS]]}}


async def _with_songs(call: Call, playlist_id: int) -> Payload:
    """A playlist the caller may see, with every song (70 when they may not see it)."""
    service = call.app[keys.PLAYLISTS]
    me = call.user.user_id
    first = await service.get(playlist_id, me, PAGE, 0)
    songs: list[Song] = [e["song"] for e in first["songs"]["items"]]
    offset = PAGE
    while offset < first["songs"]["total"]:
        page = await service.get(playlist_id, me, PAGE, offset)
        if not page["songs"]["items"]:
            break
        songs.extend(e["song"] for e in page["songs"]["items"])
        offset += PAGE
    starred = await stars(call, songs=songs)
    duration = sum(s["duration_ms"] for s in songs)
    return {"playlist": shaper(call).playlist(first, duration, songs, starred)}


@methods.method("getPlaylist")
async def get_playlist(call: Call) -> Payload:
    return await _with_songs(call, _playlist_number(call, "id"))


@methods.method("createPlaylist")
async def create_playlist(call: Call) -> Payload:
    service = call.app[keys.PLAYLISTS]
    me = call.user.user_id
    target = call.params.get("playlistId")
    name = call.params.get("name")
    if target is None and name is None:
        raise SubsonicError(MISSING_PARAMETER, "Required parameter 'name' or 'playlistId' is missing")
    songs = await _song_numbers(call, "songId")
    if target is not None:
        playlist_id = parse_id(target, "playlist")[1]
        fields = {"name": name} if name is not None else {}
        await service.edit(playlist_id, me, fields, add_song_ids=songs, replace=True)
    else:
        playlist_id = (await service.create(me, {"name": name}))["id"]
        if songs:
            await service.edit(playlist_id, me, {}, add_song_ids=songs)
    return await _with_songs(call, playlist_id)


@methods.method("updatePlaylist")
async def update_playlist(call: Call) -> Payload:
    playlist_id = _playlist_number(call, "playlistId")
    fields: dict[str, Any] = {}
    if call.params.get("name") is not None:
        fields["name"] = call.params.text("name")
    if "comment" in call.params.values:
        fields["description"] = call.params.values.get("comment", "")
    if call.params.get("public") is not None:
        fields["is_public"] = call.params.flag("public", False)
    removals = []
    for value in call.params.texts("songIndexToRemove"):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 6):
            raise SubsonicError(MISSING_PARAMETER,
                                "Parameter 'songIndexToRemove' must be a position in the playlist")
        removals.append(int(text))
    added = await _song_numbers(call, "songIdToAdd")
    await call.app[keys.PLAYLISTS].edit(playlist_id, call.user.user_id, fields,
                                        remove_positions=removals, add_song_ids=added)
    return {}


@methods.method("deletePlaylist")
async def delete_playlist(call: Call) -> Payload:
    await call.app[keys.PLAYLISTS].delete(_playlist_number(call, "id"), call.user.user_id)
    return {}
