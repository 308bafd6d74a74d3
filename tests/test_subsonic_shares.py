"""Shares over /rest (SPEC 13, 5): getShares, createShare, updateShare and deleteShare are the
playlists' share links — a share made over /rest opens at its URL and counts visits, one made in
the JSON API is listed with a URL that works, revoking or expiring it makes the URL a 404, shares
of songs and albums are private playlists the web app shows, another user's playlists follow the
playlist rules (private 70, public 50), and a database dump does not reveal a link's token."""

from __future__ import annotations

import hashlib
import secrets
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import MYSQL_URL, RUN_ID, Account, _admin_sql, make_admin, make_config, register
from subsonic_read_support import catalogue, rest_params
from subsonic_support import call_both, call_json, error_code
from subsonic_write_support import sid
from support import database_dumps
from yarl import URL

from app.main import create_app
from app.repos.db import Database
from app.repos.migrate import migrate, migration_files
from app.web import keys


@pytest.fixture
async def cat(client: TestClient, admin: Account, audio_dir: Any) -> dict[str, Any]:
    return await catalogue(client, admin, audio_dir)


@pytest.fixture
async def auth(client: TestClient, member: Account) -> dict[str, str]:
    return await rest_params(client, member)


def ms(when: datetime) -> str:
    return str(int(when.timestamp() * 1000))


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def entries(share: dict[str, Any]) -> list[str]:
    return [e["id"] for e in share.get("entry", [])]


async def shares_of(client: TestClient, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    """getShares (JSON validated, XML compared with it), by share id."""
    listed = (await call_both(client, "getShares", auth))["shares"].get("share", [])
    return {share["id"]: share for share in listed}


async def create_share(client: TestClient, auth: dict[str, str], *ids: str,
                       **extra: str) -> dict[str, Any]:
    answer = await call_json(client, "createShare",
                             [*auth.items(), *(("id", i) for i in ids), *extra.items()])
    assert answer["status"] == "ok", answer
    [share] = answer["shares"]["share"]
    return dict(share)


async def new_playlist(client: TestClient, auth: dict[str, str], name: str, *songs: str,
                       public: bool = False) -> str:
    params = [*auth.items(), ("name", name), *(("songId", s) for s in songs)]
    pid = str((await call_json(client, "createPlaylist", params))["playlist"]["id"])
    if public:
        await call_json(client, "updatePlaylist", {**auth, "playlistId": pid, "public": "true"})
    return pid


async def visit(client: TestClient, url: str, query: str = "") -> tuple[int, str]:
    """Open a share link as an anonymous visitor would (its path, on the test server)."""
    resp = await client.get(URL(url).path + query)
    return resp.status, await resp.text()


async def test_create_get_update_delete(client, cat, auth, member):
    a, b = (sid(s) for s in cat["songs"][:2])
    pid = await new_playlist(client, auth, "Late night", a, b)
    expires = datetime.now(UTC) + timedelta(days=3)
    share = await create_share(client, auth, pid, description="For Sam", expires=ms(expires))
    number = pid.removeprefix("pl-")
    assert share["id"] == f"sh-{number}"
    url = URL(share["url"])
    assert url.is_absolute() and url.path.startswith("/s/") and len(url.path) > 40
    assert (url.host, url.port) == (client.host, client.port)
    assert share["description"] == "For Sam" and share["username"] == member.username
    assert share["visitCount"] == 0 and "lastVisited" not in share
    assert share["expires"] == rfc3339(expires) and share["created"].endswith("Z")
    assert entries(share) == [a, b]

    # The same share in getShares (XML compared with JSON there).
    assert await shares_of(client, auth) == {share["id"]: share}

    # The URL is the share page, for anyone; opening it counts a visit (its later pages do not).
    status, page = await visit(client, share["url"])
    assert status == 200 and "Late night" in page and "For Sam" in page and "shared-note" in page
    assert (await visit(client, share["url"], "?page=2"))[0] == 200
    listed = (await shares_of(client, auth))[share["id"]]
    assert listed["visitCount"] == 1 and listed["lastVisited"].endswith("Z")
    assert listed["url"] == share["url"]

    # updateShare: a new description, and expires=0 removes the expiry.
    assert (await call_json(client, "updateShare", {**auth, "id": share["id"],
                                                    "description": "New words",
                                                    "expires": "0"}))["status"] == "ok"
    listed = (await shares_of(client, auth))[share["id"]]
    assert listed["description"] == "New words" and "expires" not in listed
    assert listed["url"] == share["url"] and listed["visitCount"] == 1
    # A fraction of a millisecond, as some libraries send `timestamp() * 1000`, is dropped.
    later = datetime.now(UTC) + timedelta(hours=5)
    await call_json(client, "updateShare", {**auth, "id": share["id"],
                                            "expires": f"{later.timestamp() * 1000:.3f}"})
    listed = (await shares_of(client, auth))[share["id"]]
    assert listed["expires"] == rfc3339(later) and listed["description"] == "New words"

    # Sharing the playlist again makes a new link: the old one stops working.
    again = await create_share(client, auth, pid)
    assert again["id"] == share["id"] and again["url"] != share["url"]
    assert again["visitCount"] == 0 and "expires" not in again
    assert again["description"] == "Late night"  # no description given: the playlist's name
    assert (await visit(client, share["url"]))[0] == 404
    assert (await visit(client, again["url"]))[0] == 200

    # deleteShare revokes the link; the playlist stays.
    assert (await call_json(client, "deleteShare", {**auth, "id": again["id"]}))["status"] == "ok"
    assert (await visit(client, again["url"]))[0] == 404
    assert await shares_of(client, auth) == {}
    assert await error_code(client, "deleteShare", {**auth, "id": again["id"]}) == 70
    assert await error_code(client, "updateShare", {**auth, "id": again["id"],
                                                    "description": "x"}) == 70
    got = (await call_json(client, "getPlaylist", {**auth, "id": pid}))["playlist"]
    assert [e["id"] for e in got["entry"]] == [a, b]


async def test_an_expired_share_is_revoked(client, cat, auth):
    pid = await new_playlist(client, auth, "Short lived", sid(cat["songs"][0]))
    share = await create_share(client, auth, pid,
                               expires=ms(datetime.now(UTC) + timedelta(minutes=10)))
    assert (await visit(client, share["url"]))[0] == 200
    # An expiry in the past is refused, and changes nothing.
    past = ms(datetime.now(UTC) - timedelta(minutes=1))
    assert await error_code(client, "updateShare", {**auth, "id": share["id"], "expires": past}) == 10
    assert await error_code(client, "createShare", {**auth, "id": pid, "expires": past}) == 10
    assert (await visit(client, share["url"]))[0] == 200
    # Time passes (the clock cannot be moved: the expiry is moved back instead).
    await client.app[keys.DB].execute(
        "UPDATE playlist_shares SET expires_at = CURRENT_TIMESTAMP(6) - INTERVAL 1 SECOND"
        " WHERE playlist_id = %s", (int(pid.removeprefix("pl-")),))
    assert (await visit(client, share["url"]))[0] == 404
    assert await shares_of(client, auth) == {}
    assert await error_code(client, "updateShare", {**auth, "id": share["id"], "expires": "0"}) == 70
    assert await error_code(client, "deleteShare", {**auth, "id": share["id"]}) == 70
    # A new link works again.
    fresh = await create_share(client, auth, pid)
    assert (await visit(client, fresh["url"]))[0] == 200


async def test_a_json_api_share_is_listed_with_a_url_that_works(client, cat, auth, member):
    pid = await new_playlist(client, auth, "From the web", sid(cat["songs"][2]))
    number = pid.removeprefix("pl-")
    resp = await client.post(f"/api/playlist/{number}/share", headers=member.headers)
    assert resp.status == 201
    link = await resp.json()
    assert set(link) == {"token", "url"} and link["url"] == f"/s/{link['token']}"
    listed = (await shares_of(client, auth))[f"sh-{number}"]
    assert URL(listed["url"]).path == link["url"] and URL(listed["url"]).is_absolute()
    assert listed["description"] == "From the web" and listed["visitCount"] == 0
    assert entries(listed) == [sid(cat["songs"][2])]
    assert (await visit(client, listed["url"]))[0] == 200
    assert (await shares_of(client, auth))[f"sh-{number}"]["visitCount"] == 1
    # Revoked in the JSON API: gone from getShares, its URL a 404.
    resp = await client.delete(f"/api/playlist/{number}/share", headers=member.headers)
    assert resp.status == 204
    assert await shares_of(client, auth) == {}
    assert (await visit(client, listed["url"]))[0] == 404
    # And a share made over /rest is revoked in the JSON API the same way.
    share = await create_share(client, auth, pid)
    assert (await client.delete(f"/api/playlist/{number}/share",
                                headers=member.headers)).status == 204
    assert (await visit(client, share["url"]))[0] == 404


async def test_songs_and_albums_are_shared_as_a_new_private_playlist(client, cat, auth, member):
    first, second, third = cat["songs"]
    album = f"al-{first['album_id']}"
    share = await create_share(client, auth, album, sid(third))
    # The album's songs in track order, then the song.
    assert entries(share) == [sid(first), sid(second), sid(third)]
    assert share["description"] == first["album"]["title"]
    number = int(share["id"].removeprefix("sh-"))
    resp = await client.get(f"/api/playlist/{number}", headers=member.headers)
    assert resp.status == 200
    playlist = await resp.json()
    assert playlist["name"] == first["album"]["title"] and playlist["is_public"] is False
    assert playlist["owner"]["id"] == member.id
    assert [e["song"]["id"] for e in playlist["songs"]["items"]] == [first["id"], second["id"],
                                                                     third["id"]]
    mine = await (await client.get("/api/playlist", headers=member.headers)).json()
    assert number in [p["id"] for p in mine["items"]]
    # Private: another user cannot open the playlist, but anyone can open the link.
    other = await register(client)
    assert (await client.get(f"/api/playlist/{number}", headers=other.headers)).status == 404
    status, page = await visit(client, share["url"])
    assert status == 200 and first["title"] in page and third["title"] in page

    # One song, named from the description; the share is listed with the others.
    named = await create_share(client, auth, sid(second), description="Listen to this")
    assert entries(named) == [sid(second)] and named["description"] == "Listen to this"
    resp = await client.get(f"/api/playlist/{named['id'].removeprefix('sh-')}",
                            headers=member.headers)
    assert (await resp.json())["name"] == "Listen to this"
    status, page = await visit(client, named["url"])  # named from it: not shown again below
    assert status == 200 and "<h1 class=\"entity-name\">Listen to this</h1>" in page
    assert "shared-note" not in page
    solo = await create_share(client, auth, sid(third))
    assert solo["description"] == third["title"]
    assert set(await shares_of(client, auth)) == {share["id"], named["id"], solo["id"]}


async def test_privacy_and_bad_ids(client, cat, auth, member):
    song = sid(cat["songs"][0])
    owner = await register(client)
    owner_auth = await rest_params(client, owner)
    private = await new_playlist(client, owner_auth, "Theirs, private", song)
    public = await new_playlist(client, owner_auth, "Theirs, public", song, public=True)
    collaborative = await new_playlist(client, owner_auth, "Theirs, with me", song)
    resp = await client.post(f"/api/playlist/{collaborative.removeprefix('pl-')}/collaborators",
                             json={"username": member.username}, headers=owner.headers)
    assert resp.status == 201
    before = await (await client.get("/api/playlist", headers=member.headers)).json()

    assert await error_code(client, "createShare", {**auth, "id": private}) == 70
    assert await error_code(client, "createShare", {**auth, "id": public}) == 50
    assert await error_code(client, "createShare", {**auth, "id": collaborative}) == 50
    for bad in ("1", "ar-1", "sh-1", "im-1", "pl-abc", "tr-", "tr-999999999", "al-999999999",
                "pl-999999999", "tr-" + "9" * 40):
        assert await error_code(client, "createShare", {**auth, "id": bad}) == 70, bad
    # One id naming nothing among good ones: nothing is made.
    params = [*auth.items(), ("id", song), ("id", "tr-999999999")]
    assert await error_code(client, "createShare", params) == 70
    assert await error_code(client, "createShare", auth) == 10
    mine = await new_playlist(client, auth, "Mine", song)
    assert await error_code(client, "createShare", [*auth.items(), ("id", mine),
                                                    ("id", song)]) == 10
    for bad in ("soon", "1e15", "0x10", "9" * 20):
        assert await error_code(client, "createShare", {**auth, "id": mine, "expires": bad}) == 10
    assert await error_code(client, "createShare", {**auth, "id": mine,
                                                    "description": "x" * 1001}) == 10
    after = await (await client.get("/api/playlist", headers=member.headers)).json()
    assert after["total"] == before["total"] + 1  # "Mine" only
    assert await shares_of(client, auth) == {}

    # Another user's share cannot be changed, revoked or listed, even by an admin.
    theirs = await create_share(client, owner_auth, public)
    admin_auth = await rest_params(client, await make_admin(client, await register(client)))
    for who in (auth, admin_auth):
        assert await error_code(client, "updateShare", {**who, "id": theirs["id"],
                                                        "description": "mine now"}) == 70
        assert await error_code(client, "deleteShare", {**who, "id": theirs["id"]}) == 70
        assert theirs["id"] not in await shares_of(client, who)
    assert (await visit(client, theirs["url"]))[0] == 200
    assert (await shares_of(client, owner_auth))[theirs["id"]]["description"] == "Theirs, public"
    for method in ("updateShare", "deleteShare"):
        assert await error_code(client, method, auth) == 10
        for bad in ("pl-1", "1", "sh-", "sh-x", "sh-999999999"):
            assert await error_code(client, method, {**auth, "id": bad}) == 70, (method, bad)
    # A playlist of the caller's that has no link has no share.
    assert await error_code(client, "deleteShare", {**auth, "id": "sh-" + mine.removeprefix("pl-")}) == 70


async def test_a_database_dump_does_not_reveal_a_token(client, cat, auth, database_url):
    pid = await new_playlist(client, auth, "Secret mix", sid(cat["songs"][0]))
    share = await create_share(client, auth, pid)
    token = URL(share["url"]).path.removeprefix("/s/")
    assert (await visit(client, share["url"]))[0] == 200
    forms = [token.encode(), token.encode().hex().encode(), token.encode().hex().upper().encode()]
    for out in await database_dumps(database_url, "playlist_shares", "playlists"):
        assert b"INSERT INTO `playlist_shares`" in out
        for form in forms:
            assert form not in out, "the dump reveals the share link's token"
    # And still the owner is shown the same link: it is kept encrypted, not lost.
    assert (await shares_of(client, auth))[share["id"]]["url"] == share["url"]


async def test_a_link_made_before_the_upgrade_keeps_working(aiohttp_client, tmp_path):
    """sql/0011 moves each link's hash to its own row: the link still opens, but its token was
    never kept, so getShares cannot show it (until the owner makes a new link)."""
    name = f"sonora_test_{RUN_ID}_shares_upgrade"
    older = tmp_path / "sql"
    older.mkdir()
    for number, path in migration_files():
        if number < 11:
            shutil.copy(path, older / path.name)
    token = secrets.token_urlsafe(32)
    db = Database(f"{MYSQL_URL}/{name}")
    await db.connect()
    client: TestClient | None = None
    try:
        await migrate(db, older)
        user_id = await db.execute(
            "INSERT INTO users (email, email_canon, username, username_canon, display_name,"
            " password_hash) VALUES ('old@example.com', 'old@example.com', 'old', 'old', 'Old',"
            " 'x')")
        playlist_id = await db.execute(
            "INSERT INTO playlists (owner_id, name, share_hash) VALUES (%s, 'Before', %s)",
            (user_id, hashlib.sha256(token.encode()).hexdigest()))
        await db.close()
        client = await aiohttp_client(create_app(make_config(f"{MYSQL_URL}/{name}", tmp_path)))
        status, page = await visit(client, f"/s/{token}")
        assert status == 200 and "Before" in page
        playlists = client.app[keys.PLAYLISTS]
        assert await playlists.has_share(playlist_id)
        assert await playlists.shares(user_id) == []
        assert (await playlists.shared(token))["visit_count"] == 1
    finally:
        await db.close()
        if client is not None:
            await client.close()
        await _admin_sql(f"DROP DATABASE IF EXISTS `{name}`")
