"""Playlists: ordered songs (duplicates allowed, positions dense), collaborators, share links.

Privacy (SPEC 9, 12): nothing here is cached. Every read checks the viewer against the row it just
loaded (a playlist is visible when public, or to its owner and collaborators), and a playlist the
viewer may not see is answered exactly like one that does not exist. Every write locks the playlist
row first, so concurrent writers to one playlist take turns, and records `catalog.playlist.*` in the
same transaction; the outbox relay is woken after commit.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pymysql

from app import events
from app.errors import Forbidden, InvalidInput, NotFound
from app.repos.db import Database, Row, Tx
from app.repos.playlists import PlaylistRepo
from app.services import validation as v
from app.services.app_passwords import SecretBox
from app.services.catalog import Actor, CatalogService, image_url
from app.services.types import (
    Collaborator,
    Links,
    OwnShare,
    Page,
    Playlist,
    PlaylistEntry,
    PlaylistWithSongs,
    Share,
    Song,
    UserRef,
)
from app.services.users import UserService

MAX_ENTRIES = 10_000
MAX_IDS = 100
MAX_SHARES = 1000  # the most share links one listing shows
T = TypeVar("T")


# ---------------------------------------------------------------- the order arithmetic (pure)


def move_block(items: Sequence[T], start: int, before: int, length: int = 1) -> list[T]:
    """Spotify's reorder: the `length` entries from `start` go just before the entry that was at
    `before` in the list as it was (`before == len(items)` moves them to the end)."""
    items = list(items)
    if start <= before <= start + length:
        return items
    block = items[start:start + length]
    rest = items[:start] + items[start + length:]
    dest = before if before < start else before - length
    return rest[:dest] + block + rest[dest:]


def moved_position(position: int, start: int, before: int, length: int = 1) -> int:
    """Where the entry at `position` ends up after `move_block` (what the SQL update computes)."""
    if start <= before <= start + length:
        return position
    lo, hi = min(start, before), max(start + length, before)
    if not lo <= position < hi:
        return position
    if start <= position < start + length:
        dest = before if before < start else before - length
        return position - start + dest
    return position + length if before < start else position - length


def check_move(count: int, start: int, before: int, length: int) -> None:
    """422 unless the block and the target lie inside a list of `count` entries."""
    errors = v.Fields()
    if not 0 <= start < max(count, 1) or count == 0:
        errors.add("range_start", f"must be from 0 to {max(count - 1, 0)}")
    if not length >= 1 or start + length > count:
        errors.add("range_length", "must be at least 1 and stay inside the playlist")
    if not 0 <= before <= count:
        errors.add("insert_before", f"must be from 0 to {count}")
    errors.check()


# ---------------------------------------------------------------- shapes and input


def playlist_json(row: Row, links: Links) -> Playlist:
    """The playlist shape of the API (SPEC 5.0)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "is_public": bool(row["is_public"]),
        "is_collaborative": bool(row["is_collaborative"]),
        "owner": {"id": row["owner_id"], "username": row["owner_username"],
                  "display_name": row["owner_display_name"]},
        "cover_url": image_url(links, row["cover_image_id"]),
        "song_count": int(row["song_count"]),
        "created_at": v.rfc3339(row["created_at"]),
        "updated_at": v.rfc3339(row["updated_at"]),
    }


def _int(value: Any, name: str, errors: v.Fields, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        errors.add(name, f"must be an integer from {lo} to {hi}")
        return lo
    return value


def _bool(value: Any, name: str, errors: v.Fields) -> bool:
    if isinstance(value, bool):
        return value
    errors.add(name, "must be true or false")
    return False


def _ids(value: Any, name: str, errors: v.Fields, hi: int = 2**63 - 1) -> list[int]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_IDS:
        errors.add(name, f"must be a list of 1 to {MAX_IDS} integers")
        return []
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= hi for i in value):
        errors.add(name, "must hold integers only")
        return []
    return list(value)


def playlist_fields(body: dict[str, Any], creating: bool) -> dict[str, Any]:
    """Validated playlist fields; `title` is an alias of `name`; `id`, `owner_id` are never read."""
    errors = v.Fields()
    out: dict[str, Any] = {}
    name = body.get("name", body.get("title"))
    if creating or name is not None:
        out["name"] = v.clean_text(name, "name", errors, min_len=1, max_len=200)
    if body.get("description") is not None:
        out["description"] = v.clean_text(body["description"], "description", errors, max_len=1000)
    for flag in ("is_public", "is_collaborative"):
        if body.get(flag) is not None:
            out[flag] = int(_bool(body[flag], flag, errors))
    errors.check()
    return out


def share_hash(token: str) -> str:
    """What a share link is found by. Unkeyed (as before sql/0011), so links outlive a change of
    SONORA_SECRET_KEY; the token's 256 random bits are what keep it from being guessed back."""
    return hashlib.sha256(token.encode()).hexdigest()


def share_fields(body: dict[str, Any]) -> dict[str, Any]:
    """A share link's validated `description` and `expires_at` (an aware time in the future, or
    None: never), each only when given; stored naive UTC, as MySQL keeps times."""
    errors = v.Fields()
    out: dict[str, Any] = {}
    if body.get("description") is not None:
        out["description"] = v.clean_text(body["description"], "description", errors,
                                          max_len=1000)
    if "expires_at" in body:
        when = body["expires_at"]
        if when is None:
            out["expires_at"] = None
        elif not isinstance(when, datetime) or when.tzinfo is None:
            errors.add("expires_at", "must be a time with its zone")
        elif when <= datetime.now(UTC):
            errors.add("expires_at", "must be in the future")
        else:
            out["expires_at"] = when.astimezone(UTC).replace(tzinfo=None)
    errors.check()
    return out


@dataclass(frozen=True)
class Access:
    """What the viewer may do with a playlist."""

    row: Row
    is_owner: bool
    is_collaborator: bool

    @property
    def can_edit_songs(self) -> bool:
        return self.is_owner or (self.is_collaborator and bool(self.row["is_collaborative"]))


class PlaylistService:
    """Playlists, read and written with the viewer's rights checked each time (never cached)."""

    def __init__(self, db: Database, catalog: CatalogService, users: UserService,
                 share_box: SecretBox) -> None:
        self.db = db
        self.catalog = catalog
        self.links = catalog.links  # covers are images of the same API as the catalogue's
        self.users = users
        self.repo = PlaylistRepo(db)
        self.share_box = share_box  # share-link tokens, sealed to their playlist

    # reads -------------------------------------------------------------------------------
    async def access(self, playlist_id: int, viewer_id: int) -> Access:
        """The playlist if the viewer may see it; 404 otherwise (as if it did not exist)."""
        row = await self.repo.get(playlist_id)
        if row is None:
            raise NotFound("No such playlist")
        is_owner = row["owner_id"] == viewer_id
        is_collab = not is_owner and await self.repo.is_collaborator(playlist_id, viewer_id)
        if not (row["is_public"] or is_owner or is_collab):
            raise NotFound("No such playlist")
        return Access(row, is_owner, is_collab)

    async def get(self, playlist_id: int, viewer_id: int, limit: int, offset: int) -> PlaylistWithSongs:
        """A playlist the viewer may see, with one page of its entries."""
        access = await self.access(playlist_id, viewer_id)
        return await self._with_songs(access.row, limit, offset)

    async def _with_songs(self, row: Row, limit: int, offset: int) -> PlaylistWithSongs:
        out = playlist_json(row, self.links)
        entries = await self.repo.entries(row["id"], limit, offset)
        ids = sorted({e["song_id"] for e in entries})
        songs: dict[int, Song] = {}
        if ids:
            found, _ = await self.catalog.songs({"ids": ids}, len(ids), 0)
            songs = {s["id"]: s for s in found}
        items: list[PlaylistEntry] = []
        for i, e in enumerate(entries):
            song = songs.get(e["song_id"])
            if song is None:  # deleted while we read
                continue
            added_by: UserRef | None = None
            if e["added_by"] is not None:
                added_by = {"id": e["added_by"], "username": e["added_by_username"],
                            "display_name": e["added_by_display_name"]}
            items.append({"position": offset + i, "added_at": v.rfc3339(e["added_at"]),
                          "added_by": added_by, "song": song})
        page: Page[PlaylistEntry] = {"items": items, "total": out["song_count"], "limit": limit,
                                     "offset": offset}
        return {**out, "songs": page}

    async def duration_ms(self, playlist_id: int) -> int:
        return await self.repo.duration_ms(playlist_id)

    async def mine(self, viewer_id: int, limit: int, offset: int) -> tuple[list[Playlist], int]:
        """The viewer's own playlists and those they collaborate on."""
        rows, total = await self.repo.of_user(viewer_id, limit, offset)
        return [playlist_json(r, self.links) for r in rows], total

    async def public(self, q: str, limit: int, offset: int, owner_id: int | None = None
                     ) -> tuple[list[Playlist], int]:
        rows, total = await self.repo.public(q, limit, offset, owner_id)
        return [playlist_json(r, self.links) for r in rows], total

    async def profile_counts(self, owner_id: int) -> dict[str, int]:
        return {"public_playlists": await self.repo.count_public_of(owner_id),
                "playlist_followers": await self.repo.followers_of_owner(owner_id)}

    async def visible_ids(self, viewer_id: int, ids: Sequence[int]) -> set[int]:
        return await self.repo.visible_ids(viewer_id, ids)

    async def collaborators(self, playlist_id: int, viewer_id: int) -> list[Collaborator]:
        await self.access(playlist_id, viewer_id)
        return [{"id": r["id"], "username": r["username"], "display_name": r["display_name"],
                 "added_at": v.rfc3339(r["added_at"])}
                for r in await self.repo.collaborators(playlist_id)]

    # share links ------------------------------------------------------------------------
    def _share_json(self, row: Row) -> Share:
        return {"playlist": playlist_json(row, self.links),
                "description": row["share_description"],
                "created_at": v.rfc3339(row["shared_at"]),
                "expires_at": v.rfc3339(row["expires_at"]),
                "visit_count": int(row["visit_count"]),
                "last_visited_at": v.rfc3339(row["last_visited_at"])}

    def _own_share_json(self, row: Row) -> OwnShare | None:
        """The link with its token, or None when the token cannot be read back (a link made
        before sql/0011, or sealed under another SONORA_SECRET_KEY)."""
        token = self.share_box.open(int(row["id"]), row["token_box"] or "")
        return None if token is None else {**self._share_json(row), "token": token}

    async def shared(self, token: str, *, visit: bool = False) -> Share:
        """The playlist behind a live share link, whatever its visibility; 404 once revoked or
        past its expiry. `visit` counts a visit (one UPDATE of the link's row)."""
        if not 20 <= len(token) <= 100:
            raise NotFound("No such link")
        hashed = share_hash(token)
        if visit and not await self.repo.visit(hashed):
            raise NotFound("No such link")
        row = await self.repo.by_share(hashed)
        if row is None:
            raise NotFound("No such link")
        return self._share_json(row)

    async def shares(self, owner_id: int) -> list[OwnShare]:
        """The owner's live share links (those whose token can be shown), newest first."""
        found = [self._own_share_json(r) for r in await self.repo.shares_of(owner_id, MAX_SHARES)]
        return [share for share in found if share is not None]

    async def own_share(self, playlist_id: int, viewer_id: int) -> OwnShare:
        """The viewer's live share link of their playlist; 404 for anyone else's, or none."""
        row = await self.repo.share_of(playlist_id)
        share = self._own_share_json(row) if row is not None and row["owner_id"] == viewer_id else None
        if share is None:
            raise NotFound("No such share")
        return share

    async def shared_songs(self, playlist_id: int, limit: int, offset: int) -> PlaylistWithSongs:
        row = await self.repo.get(playlist_id)
        if row is None:
            raise NotFound("No such link")
        return await self._with_songs(row, limit, offset)

    async def has_share(self, playlist_id: int) -> bool:
        return await self.repo.has_share(playlist_id)

    async def many(self, ids: Sequence[int]) -> dict[int, Playlist]:
        """Playlists by id, without a visibility check (callers filter first)."""
        return {r["id"]: playlist_json(r, self.links) for r in await self.repo.many(ids)}

    async def every(self, q: str, limit: int, offset: int) -> tuple[list[Playlist], int]:
        """Every playlist, for admins' moderation."""
        rows, total = await self.repo.every(q, limit, offset)
        return [playlist_json(r, self.links) for r in rows], total

    # writes ------------------------------------------------------------------------------
    async def _locked(self, tx: Tx, playlist_id: int, viewer_id: int) -> Access:
        """Lock the playlist row; 404 when the viewer may not see it."""
        row = await self.repo.lock(tx, playlist_id)
        if row is None:
            raise NotFound("No such playlist")
        is_owner = row["owner_id"] == viewer_id
        is_collab = not is_owner and await self.repo.is_collaborator(playlist_id, viewer_id, tx)
        if not (row["is_public"] or is_owner or is_collab):
            raise NotFound("No such playlist")
        return Access(row, is_owner, is_collab)

    @staticmethod
    def _owner_only(access: Access, what: str) -> None:
        if not access.is_owner:
            raise Forbidden(f"Only the playlist's owner can {what}")

    @staticmethod
    def _editor(access: Access) -> None:
        if not access.can_edit_songs:
            raise Forbidden("Only the owner and collaborators can change this playlist's songs")

    @staticmethod
    async def _changed(tx: Tx, playlist_id: int, change: str = "upserted") -> None:
        await events.emit(tx, events.CatalogChanged("playlist", playlist_id, change))

    async def _reload(self, playlist_id: int) -> Playlist:
        row = await self.repo.get(playlist_id)
        if row is None:
            raise NotFound("No such playlist")
        return playlist_json(row, self.links)

    async def create(self, viewer_id: int, body: dict[str, Any]) -> Playlist:
        fields = playlist_fields(body, creating=True)
        async with self.db.transaction() as tx:
            playlist_id = await self.repo.insert(tx, viewer_id, fields)
            await self._changed(tx, playlist_id)
        return await self._reload(playlist_id)

    async def update(self, playlist_id: int, viewer_id: int, body: dict[str, Any]) -> Playlist:
        fields = playlist_fields(body, creating=False)
        async with self.db.transaction() as tx:
            access = await self._locked(tx, playlist_id, viewer_id)
            self._owner_only(access, "rename it or change its visibility")
            if fields:
                await self.repo.update(tx, playlist_id, fields)
                await self._changed(tx, playlist_id)
        return await self._reload(playlist_id)

    async def set_cover(self, playlist_id: int, viewer_id: int, image_id: int) -> Playlist:
        async with self.db.transaction() as tx:
            access = await self._locked(tx, playlist_id, viewer_id)
            self._owner_only(access, "change its cover")
            await self.repo.update(tx, playlist_id, {"cover_image_id": image_id})
            await self._changed(tx, playlist_id)
        return await self._reload(playlist_id)

    async def delete(self, playlist_id: int, viewer_id: int, admin: Actor | None = None) -> None:
        """The owner deletes; an admin (`admin`) may delete any playlist, audited."""
        async with self.db.transaction() as tx:
            if admin is not None:
                row = await self.repo.lock(tx, playlist_id)
                if row is None:
                    raise NotFound("No such playlist")
            else:
                access = await self._locked(tx, playlist_id, viewer_id)
                self._owner_only(access, "delete it")
                row = access.row
            await self.repo.delete(tx, playlist_id)
            await self._changed(tx, playlist_id, "deleted")
            if admin is not None and row["owner_id"] != admin.user_id:
                await events.emit(tx, events.AdminAction(
                    actor_id=admin.user_id, actor_username=admin.username,
                    action="playlist.deleted", target_type="playlist", target_id=playlist_id,
                    summary=f"deleted playlist {row['name']}",
                    details={"owner_id": row["owner_id"]},
                ))

    async def add_songs(self, playlist_id: int, viewer_id: int, body: dict[str, Any]) -> Playlist:
        """Insert songs before `position` (appended without it), several at once."""
        errors = v.Fields()
        song_ids = _ids(body.get("song_ids"), "song_ids", errors)
        position = body.get("position")
        if position is not None:
            position = _int(position, "position", errors, 0, MAX_ENTRIES)
        errors.check()
        try:
            async with self.db.transaction() as tx:
                access = await self._locked(tx, playlist_id, viewer_id)
                self._editor(access)
                await self._require_songs(tx, song_ids)
                count = await self.repo.count(tx, playlist_id)
                if position is not None and position > count:
                    raise InvalidInput(details={"fields": {"position": f"must be from 0 to {count}"}})
                if count + len(song_ids) > MAX_ENTRIES:
                    raise InvalidInput(f"A playlist holds at most {MAX_ENTRIES:,} songs",
                                       details={"fields": {"song_ids": "too many songs"}})
                at = count if position is None else position
                await self.repo.insert_entries(tx, playlist_id, at, count, song_ids, viewer_id)
                await self.repo.touch(tx, playlist_id)
                await self._changed(tx, playlist_id)
        except pymysql.err.IntegrityError as exc:  # a song deleted meanwhile
            raise InvalidInput(details={"fields": {"song_ids": "no such song"}}) from exc
        return await self._reload(playlist_id)

    async def _require_songs(self, tx: Tx, song_ids: Sequence[int]) -> None:
        wanted = sorted(set(song_ids))
        missing = set(wanted) - await self.repo.existing_songs(tx, wanted)
        if missing:
            raise InvalidInput(details={"fields": {"song_ids": "no such song"},
                                        "missing": sorted(missing)})

    async def remove_songs(self, playlist_id: int, viewer_id: int, body: dict[str, Any]
                           ) -> Playlist:
        """Remove every occurrence of `song_ids`, or the entries at `positions`."""
        errors = v.Fields()
        by_song = body.get("song_ids") is not None
        if by_song == (body.get("positions") is not None):
            raise InvalidInput("Give either song_ids or positions",
                               details={"fields": {"song_ids": "or positions is required"}})
        ids = _ids(body.get("song_ids") if by_song else body.get("positions"),
                   "song_ids" if by_song else "positions", errors)
        errors.check()
        async with self.db.transaction() as tx:
            access = await self._locked(tx, playlist_id, viewer_id)
            self._editor(access)
            count = await self.repo.count(tx, playlist_id)
            if by_song:
                removed = await self.repo.remove_songs(tx, playlist_id, ids)
            else:
                if any(p >= count for p in ids):
                    raise InvalidInput(details={"fields": {
                        "positions": f"must be from 0 to {count - 1}" if count else "the playlist is empty"}})
                removed = await self.repo.remove_positions(tx, playlist_id, sorted(set(ids)))
            if removed:
                await self.repo.touch(tx, playlist_id)
                await self._changed(tx, playlist_id)
        return await self._reload(playlist_id)

    async def edit(self, playlist_id: int, viewer_id: int, fields: dict[str, Any], *,
                   remove_positions: Sequence[int] = (), add_song_ids: Sequence[int] = (),
                   replace: bool = False) -> Playlist:
        """Several changes in one transaction, as Subsonic's updatePlaylist and createPlaylist
        make them, under the same rules as the single ones: `fields` (name, description,
        visibility: the owner's), then the songs (the owner's and collaborators'): the entries
        at `remove_positions` (positions in the list as it was) removed, or every entry when
        `replace`, then `add_song_ids` appended. Nothing changes unless all of it can."""
        changes = playlist_fields(fields, creating=False)
        positions = sorted(set(remove_positions))
        if len(add_song_ids) > MAX_ENTRIES or any(p < 0 for p in positions):
            raise InvalidInput(details={"fields": {"song_ids": f"at most {MAX_ENTRIES:,} songs"}})
        try:
            async with self.db.transaction() as tx:
                access = await self._locked(tx, playlist_id, viewer_id)
                if changes:
                    self._owner_only(access, "rename it or change its visibility")
                touches_songs = bool(positions or add_song_ids or replace)
                if touches_songs:
                    self._editor(access)
                count = await self.repo.count(tx, playlist_id)
                if positions and positions[-1] >= count:
                    raise InvalidInput(details={"fields": {
                        "positions": f"must be from 0 to {count - 1}" if count
                        else "the playlist is empty"}})
                if add_song_ids:
                    await self._require_songs(tx, add_song_ids)
                if changes:
                    await self.repo.update(tx, playlist_id, changes)
                if replace:
                    count -= await self.repo.clear(tx, playlist_id)
                elif positions:
                    count -= await self.repo.remove_positions(tx, playlist_id, positions)
                if add_song_ids:
                    if count + len(add_song_ids) > MAX_ENTRIES:
                        raise InvalidInput(f"A playlist holds at most {MAX_ENTRIES:,} songs",
                                           details={"fields": {"song_ids": "too many songs"}})
                    await self.repo.insert_entries(tx, playlist_id, count, count, add_song_ids,
                                                   viewer_id)
                if touches_songs:
                    await self.repo.touch(tx, playlist_id)
                if changes or touches_songs:
                    await self._changed(tx, playlist_id)
        except pymysql.err.IntegrityError as exc:  # a song deleted meanwhile
            raise InvalidInput(details={"fields": {"song_ids": "no such song"}}) from exc
        return await self._reload(playlist_id)

    async def reorder(self, playlist_id: int, viewer_id: int, body: dict[str, Any]) -> Playlist:
        """Move a block of entries (SPEC 5.2, Spotify's semantics)."""
        errors = v.Fields()
        start = _int(body.get("range_start"), "range_start", errors, 0, MAX_ENTRIES)
        before = _int(body.get("insert_before"), "insert_before", errors, 0, MAX_ENTRIES)
        length = _int(body.get("range_length", 1), "range_length", errors, 1, MAX_ENTRIES)
        errors.check()
        async with self.db.transaction() as tx:
            access = await self._locked(tx, playlist_id, viewer_id)
            self._editor(access)
            count = await self.repo.count(tx, playlist_id)
            check_move(count, start, before, length)
            if not start <= before <= start + length:
                await self.repo.move(tx, playlist_id, start, before, length, count)
                await self.repo.touch(tx, playlist_id)
                await self._changed(tx, playlist_id)
        return await self._reload(playlist_id)

    async def add_collaborator(self, playlist_id: int, viewer_id: int, body: dict[str, Any]
                               ) -> list[Collaborator]:
        """The owner adds a user by username; the playlist becomes collaborative."""
        errors = v.Fields()
        username = v.clean_text(body.get("username"), "username", errors, min_len=1, max_len=64)
        errors.check()
        try:
            user = await self.users.by_username(username)
        except NotFound:
            raise InvalidInput(details={"fields": {"username": "no such user"}}) from None
        async with self.db.transaction() as tx:
            access = await self._locked(tx, playlist_id, viewer_id)
            self._owner_only(access, "add collaborators")
            if user["id"] == viewer_id:
                raise InvalidInput(details={"fields": {"username": "you own this playlist"}})
            await self.repo.add_collaborator(tx, playlist_id, user["id"])
            if not access.row["is_collaborative"]:
                await self.repo.update(tx, playlist_id, {"is_collaborative": 1})
            await self._changed(tx, playlist_id)
        return await self.collaborators(playlist_id, viewer_id)

    async def remove_collaborator(self, playlist_id: int, viewer_id: int, username: str) -> None:
        """The owner removes anyone; a collaborator removes only themselves (leaves)."""
        try:
            user = await self.users.by_username(username)
        except NotFound:
            raise NotFound("No such collaborator") from None
        async with self.db.transaction() as tx:
            access = await self._locked(tx, playlist_id, viewer_id)
            if not access.is_owner and user["id"] != viewer_id:
                raise Forbidden("Only the owner can remove other collaborators")
            if not await self.repo.remove_collaborator(tx, playlist_id, user["id"]):
                raise NotFound("No such collaborator")
            await self.repo.touch(tx, playlist_id)
            await self._changed(tx, playlist_id)

    async def _set_share(self, tx: Tx, playlist_id: int, fields: dict[str, Any]) -> str:
        """A new token for the playlist's link (any earlier one stops working): found by its
        hash, kept sealed to the playlist so its owner can be shown it again."""
        token = secrets.token_urlsafe(32)
        await self.repo.set_share(tx, playlist_id, share_hash(token),
                                  self.share_box.seal(playlist_id, token),
                                  fields.get("description", ""), fields.get("expires_at"))
        return token

    async def share(self, playlist_id: int, viewer_id: int, body: dict[str, Any] | None = None
                    ) -> str:
        """A new share-link token (the owner's; any earlier link stops working), with the
        link's `description` and `expires_at` from `body` (share_fields)."""
        fields = share_fields(body or {})
        async with self.db.transaction() as tx:
            access = await self._locked(tx, playlist_id, viewer_id)
            self._owner_only(access, "share it by link")
            return await self._set_share(tx, playlist_id, fields)

    async def share_songs(self, viewer_id: int, name: str, song_ids: Sequence[int],
                          body: dict[str, Any]) -> tuple[int, str]:
        """A new private playlist of the viewer's holding `song_ids` in order, shared by link
        (Subsonic's createShare of songs and albums), in one transaction: (its id, the token)."""
        fields = playlist_fields({"name": name}, creating=True)
        link = share_fields(body)
        if not 1 <= len(song_ids) <= MAX_ENTRIES:
            raise InvalidInput(f"A playlist holds 1 to {MAX_ENTRIES:,} songs",
                               details={"fields": {"song_ids": f"must hold 1 to {MAX_ENTRIES:,} songs"}})
        try:
            async with self.db.transaction() as tx:
                playlist_id = await self.repo.insert(tx, viewer_id, fields)
                await self._require_songs(tx, song_ids)
                await self.repo.insert_entries(tx, playlist_id, 0, 0, song_ids, viewer_id)
                token = await self._set_share(tx, playlist_id, link)
                await self._changed(tx, playlist_id)
        except pymysql.err.IntegrityError as exc:  # a song deleted meanwhile
            raise InvalidInput(details={"fields": {"song_ids": "no such song"}}) from exc
        return playlist_id, token

    async def _lock_own_share(self, tx: Tx, playlist_id: int, viewer_id: int) -> None:
        """Lock the viewer's live link of their playlist; 404 for anyone else's, or none."""
        row = await self.repo.lock(tx, playlist_id)
        if row is None or row["owner_id"] != viewer_id:
            raise NotFound("No such share")
        if not await self.repo.lock_share(tx, playlist_id):
            raise NotFound("No such share")

    async def update_share(self, playlist_id: int, viewer_id: int, body: dict[str, Any]) -> None:
        """Change the `description` and `expires_at` (None: never) of the viewer's live link."""
        changes = share_fields(body)
        async with self.db.transaction() as tx:
            await self._lock_own_share(tx, playlist_id, viewer_id)
            await self.repo.update_share(tx, playlist_id, changes)

    async def revoke_share(self, playlist_id: int, viewer_id: int) -> None:
        """Revoke the viewer's live link of their playlist; 404 for anyone else's, or none."""
        async with self.db.transaction() as tx:
            await self._lock_own_share(tx, playlist_id, viewer_id)
            await self.repo.remove_share(tx, playlist_id)

    async def unshare(self, playlist_id: int, viewer_id: int) -> None:
        """The owner revokes the playlist's link, if it has one (an expired one too)."""
        async with self.db.transaction() as tx:
            access = await self._locked(tx, playlist_id, viewer_id)
            self._owner_only(access, "revoke its link")
            await self.repo.remove_share(tx, playlist_id)
