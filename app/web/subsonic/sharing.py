"""Sharing: getShares, createShare, updateShare, deleteShare — the share links of SPEC 5.

A share is a playlist's one share link (`/s/<token>`), the very link the web app makes and
revokes, and its id is "sh-<playlist id>". createShare of a playlist ("pl-", the caller's own)
gives it a new link (the old one stops working); of songs and albums ("tr-", "al-", an album's
songs in track order) it makes a private playlist of the caller's holding them, named from
`description` or the first item's title, and shares that, so the user finds it, and can revoke
it, in the web app like any other. Another user's private playlist is "not found" (70), their
public one cannot be shared (50), as for the other playlist methods. `expires` is milliseconds
since 1970 (0 or less: never); a link past it answers as revoked, everywhere. Users manage only
their own shares, admins included (as Navidrome). A share's `description` is the one given, else
the playlist's name; `entry` lists its first MOST_ENTRIES songs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from app.services.types import OwnShare, Song
from app.web import keys
from app.web.subsonic.envelope import Payload
from app.web.subsonic.errors import MISSING_PARAMETER, SubsonicError
from app.web.subsonic.params import numeric_id
from app.web.subsonic.reading import shaper, stars
from app.web.subsonic.registry import Call, Methods
from app.web.subsonic.shapes import parse_id

methods = Methods()
SHARE = "sh-"  # a share's id: "sh-<playlists.id>" (a playlist has at most one link)
MOST_ENTRIES = 500  # the songs a share lists (the first ones of its playlist)
MOST_IDS = 500  # ids one createShare takes
MOST_SONGS = 10_000  # songs one share of songs and albums holds (PlaylistService.MAX_ENTRIES)
NAME_MAX = 200  # a playlist's name (PlaylistService.playlist_fields)
LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time MySQL keeps
MILLISECONDS = re.compile(r"-?[0-9]{1,19}(\.[0-9]{0,9})?")


def share_id(playlist_number: int) -> str:
    return f"{SHARE}{playlist_number}"


def _share_number(call: Call) -> int:
    return numeric_id(call.params.text("id"), SHARE)


def _expiry(call: Call) -> dict[str, datetime | None]:
    """`expires` as the service takes it: absent → {}; 0 or less → never (None). Fractions of
    a millisecond are dropped: some libraries send `timestamp() * 1000` as it is (knuckles)."""
    raw = call.params.get("expires")
    if raw is None:
        return {}
    if not MILLISECONDS.fullmatch(raw.strip()):
        raise SubsonicError(MISSING_PARAMETER,
                            "Parameter 'expires' must be a time in milliseconds since 1970")
    ms = int(raw.strip().split(".")[0])
    if ms > LAST_MS:
        raise SubsonicError(MISSING_PARAMETER, "Parameter 'expires' is too far in the future")
    return {"expires_at": None if ms <= 0 else datetime.fromtimestamp(ms / 1000, UTC)}


def share_url(call: Call, token: str) -> str:
    """The link's absolute URL, from the share page's named route and the address the app used."""
    path = call.app.router["shared_playlist_page"].url_for(token=token)
    return str(call.request.url.origin().join(path))


async def _elements(call: Call, shares: list[OwnShare]) -> list[dict[str, Any]]:
    """The shares as the reference's Share, each with its first MOST_ENTRIES songs."""
    service = call.app[keys.PLAYLISTS]
    songs: dict[int, list[Song]] = {}
    for share in shares:
        number = share["playlist"]["id"]
        page = await service.shared_songs(number, MOST_ENTRIES, 0)
        songs[number] = [entry["song"] for entry in page["songs"]["items"]]
    starred = await stars(call, songs=[s for found in songs.values() for s in found])
    shapes = shaper(call)
    return [{
        "id": share_id(share["playlist"]["id"]),
        "url": share_url(call, share["token"]),
        "description": share["description"] or share["playlist"]["name"],
        "username": share["playlist"]["owner"]["username"],
        "created": share["created_at"],
        "expires": share["expires_at"],
        "lastVisited": share["last_visited_at"],
        "visitCount": share["visit_count"],
        "entry": [shapes.child(song, starred) for song in songs[share["playlist"]["id"]]],
    } for share in shares]


async def _songs_of(call: Call, items: list[tuple[str, int]]) -> tuple[str, list[int]]:
    """The songs of song and album ids, in order (an album's in track order), and the title of
    the first item (a song or album that does not exist: 70)."""
    catalog = call.app[keys.CATALOG]
    titles: list[str] = []
    numbers: list[int] = []
    for kind, number in items:
        if kind == "album":
            album = await catalog.album(number)
            titles.append(album["title"])
            numbers.extend(song["id"] for song in album.get("songs", []))
        else:
            titles.append((await catalog.song(number))["title"])
            numbers.append(number)
        if len(numbers) > MOST_SONGS:
            raise SubsonicError(MISSING_PARAMETER, f"A share holds at most {MOST_SONGS:,} songs")
    if not numbers:
        raise SubsonicError(MISSING_PARAMETER, "There are no songs to share")
    return titles[0], numbers


@methods.method("getShares")
async def get_shares(call: Call) -> Payload:
    shares = await call.app[keys.PLAYLISTS].shares(call.user.user_id)
    return {"shares": {"share": await _elements(call, shares)}}


@methods.method("createShare")
async def create_share(call: Call) -> Payload:
    values = call.params.ids("id", MOST_IDS)
    items = [parse_id(value, "song", "album", "playlist") for value in values]
    link: dict[str, Any] = {"description": call.params.get("description"), **_expiry(call)}
    service = call.app[keys.PLAYLISTS]
    me = call.user.user_id
    if any(kind == "playlist" for kind, _ in items):
        if len(items) > 1:
            raise SubsonicError(MISSING_PARAMETER, "A playlist is shared on its own: give one id")
        playlist_number = items[0][1]
        await service.share(playlist_number, me, link)
    else:
        title, numbers = await _songs_of(call, items)
        name = ((link["description"] or "").strip() or title)[:NAME_MAX]
        playlist_number, _ = await service.share_songs(me, name, numbers, link)
    share = await service.own_share(playlist_number, me)
    return {"shares": {"share": await _elements(call, [share])}}


@methods.method("updateShare")
async def update_share(call: Call) -> Payload:
    number = _share_number(call)
    changes: dict[str, Any] = _expiry(call)
    if "description" in call.params.values:
        changes["description"] = call.params.values.get("description", "")
    await call.app[keys.PLAYLISTS].update_share(number, call.user.user_id, changes)
    return {}


@methods.method("deleteShare")
async def delete_share(call: Call) -> Payload:
    await call.app[keys.PLAYLISTS].revoke_share(_share_number(call), call.user.user_id)
    return {}
