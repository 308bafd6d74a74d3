"""/rest for browsers and for every protocol version: CORS on every /rest answer (envelopes,
errors, streams at every status, pictures) and nowhere else, OPTIONS as a preflight that reads and
changes nothing, and the reference's version errors (10, 20, 30) before any credential is looked
at — every `f=json` answer validated against the OpenSubsonic schemas."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from conftest import Account, make_audio, unique
from multidict import CIMultiDictProxy
from subsonic_read_support import rest_params, upload
from subsonic_support import (
    BASE,
    CLIENT,
    call,
    call_json,
    error_of,
    new_app_password,
    parse_xml,
)
from subsonic_write_support import fetch, sid, stored_bytes

from app.media.images import placeholder_cover
from app.web.stream import SMALL_BODY

ORIGIN = {"Origin": "https://player.example"}
EXPOSED = ("Content-Range", "Accept-Ranges", "Content-Length", "Content-Type",
           "Content-Disposition", "ETag")


@pytest.fixture
async def secret(client: TestClient, member: Account) -> str:
    return await new_app_password(client, member)


@pytest.fixture
async def auth(client: TestClient, member: Account) -> dict[str, str]:
    return await rest_params(client, member)


def assert_cors(headers: CIMultiDictProxy[str], what: object = "") -> None:
    """The CORS headers of a /rest answer: any origin, what players read exposed, and never
    credentials."""
    assert headers.get("Access-Control-Allow-Origin") == "*", (what, dict(headers))
    exposed = {h.strip().lower() for h in headers["Access-Control-Expose-Headers"].split(",")}
    assert {h.lower() for h in EXPOSED} <= exposed, what
    assert "Access-Control-Allow-Credentials" not in headers, what


def assert_no_cors(headers: CIMultiDictProxy[str], what: object = "") -> None:
    assert not [h for h in headers if h.lower().startswith("access-control-")], (what, dict(headers))


async def preflight(client: TestClient, path: str, **headers: str) -> ClientResponse:
    sent = {**ORIGIN, "Access-Control-Request-Method": "GET", **headers}
    return await client.options(path, headers=sent)


# ---------------------------------------------------------------- the preflight


@pytest.mark.parametrize("path", [
    "/rest/ping", "/rest/ping.view", "/rest/stream.view?id=tr-1", "/rest/getCoverArt",
    "/rest/noSuchMethod", "/rest/noSuchMethod.view", "/rest", "/rest/", "/rest/a/b"])
async def test_preflight_on_any_rest_path(client, path):
    resp = await preflight(client, path, **{"Access-Control-Request-Headers": "content-type, range"})
    assert resp.status == 204, path
    assert await resp.read() == b""
    h = resp.headers
    assert_cors(h, path)
    methods = {m.strip() for m in h["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "HEAD", "POST", "OPTIONS"} <= methods
    assert h["Access-Control-Allow-Headers"] == "content-type, range"
    assert int(h["Access-Control-Max-Age"]) >= 600
    assert "Set-Cookie" not in h


@pytest.mark.parametrize("asked", [None, "", "a b", "x-one,,x-two", "x" * 2000])
async def test_preflight_allows_a_fixed_list_when_none_or_no_list_is_asked(client, asked):
    extra = {} if asked is None else {"Access-Control-Request-Headers": asked}
    resp = await preflight(client, "/rest/stream", **extra)
    assert resp.status == 204
    allowed = {a.strip().lower() for a in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"range", "content-type", "authorization", "if-range"} <= allowed


async def test_preflight_needs_no_origin_and_answers_without_credentials(client):
    resp = await client.options("/rest/getUser.view")
    assert resp.status == 204 and await resp.read() == b""
    assert_cors(resp.headers)


async def test_preflight_neither_authenticates_nor_changes_anything(client, member, secret):
    """Credentials in a preflight are not looked at (no failure counted, no use recorded), and
    a preflight of a method that changes things changes nothing."""
    wrong = {**BASE, "u": member.username, "p": "wrong", "f": "json"}
    for _ in range(12):  # past the per-account-and-address budget (10) if they counted
        assert (await client.options("/rest/ping", params=wrong)).status == 204
    right = {**BASE, "u": member.username, "p": secret}
    name = unique("Preflighted")
    for path in ("/rest/createPlaylist", "/rest/createPlaylist.view"):
        resp = await client.options(path, params={**right, "name": name}, headers=ORIGIN)
        assert resp.status == 204
    resp = await client.get("/api/user/me/app-passwords", headers=member.headers)
    assert [item["last_used_at"] for item in (await resp.json())["items"]] == [None]
    playlists = (await call_json(client, "getPlaylists", right))["playlists"]
    assert name not in [p["name"] for p in playlists.get("playlist", [])]
    resp = await client.get("/api/user/me/app-passwords", headers=member.headers)
    assert (await resp.json())["items"][0]["last_used_at"] is not None  # a real call records it


# ---------------------------------------------------------------- CORS on every /rest answer


async def test_cors_on_envelopes_ok_and_failed_in_every_format(client, auth):
    for params, post in (({**auth, "f": "json"}, False), (auth, False), ({**auth, "f": "json"}, True),
                         ({**auth, "f": "jsonp", "callback": "cb"}, False),
                         ({**auth, "p": "wrong", "f": "json"}, False), ({"f": "json"}, False),
                         ({**auth, "f": "yaml"}, False)):
        path = "/rest/ping.view"
        if post:
            resp = await client.post(path, data=params, headers=ORIGIN)
        else:
            resp = await client.get(path, params=params, headers=ORIGIN)
        assert resp.status == 200
        assert_cors(resp.headers, params)
    for method in ("PUT", "DELETE", "PATCH"):  # refused as error 0, still readable
        resp = await client.request(method, "/rest/ping", params=auth, headers=ORIGIN)
        assert resp.status == 200 and "failed" in await resp.text()
        assert_cors(resp.headers, method)
    resp = await client.get("/rest/noSuchMethod", params=auth, headers=ORIGIN)
    assert_cors(resp.headers)


async def _long_song(client: TestClient, admin: Account, audio_dir: Any) -> dict[str, Any]:
    """A song longer than the stream path's small-body limit, so a range of it is streamed by a
    response prepared inside the handler."""
    path = make_audio(audio_dir, "mp3", seconds=8.0, cover=placeholder_cover(unique("cover")),
                      title=unique("Long"), artist=unique("Corsair"), album=unique("Origins"))
    resp = await client.post("/api/song", json={
        "file_base64": base64.b64encode(path.read_bytes()).decode()}, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    song: dict[str, Any] = await resp.json()
    return song


async def test_cors_on_streams_at_every_status(client, admin, auth, audio_dir):
    song = await _long_song(client, admin, audio_dir)
    data = await stored_bytes(client, song["id"])
    size = len(data)
    assert size > 2 * SMALL_BODY
    params = {**auth, "id": sid(song)}
    cases: list[tuple[str, dict[str, str], int, bytes]] = [
        ("whole", {}, 200, data),
        ("small range", {"Range": "bytes=0-99"}, 206, data[:100]),
        ("large range", {"Range": f"bytes=100-{size - 1}"}, 206, data[100:]),
        ("open range", {"Range": f"bytes={SMALL_BODY}-"}, 206, data[SMALL_BODY:]),
    ]
    for label, headers, status, body in cases:
        got_status, got, got_body = await fetch(client, "stream", params, headers={**ORIGIN, **headers})
        assert (got_status, got_body == body) == (status, True), label
        assert_cors(got, label)
    status, got, body = await fetch(client, "stream", params,
                                    headers={**ORIGIN, "Range": "bytes=0-9,50-59"})
    assert status == 206 and got["Content-Type"].startswith("multipart/byteranges")
    assert_cors(got, "multipart")
    status, got, _ = await fetch(client, "stream", {**params, "f": "json"},
                                 headers={**ORIGIN, "Range": f"bytes={size + 10}-"})
    assert status == 416 and got["Content-Range"] == f"bytes */{size}"
    assert_cors(got, 416)
    status, got, body = await fetch(client, "stream", params, head=True, headers=ORIGIN)
    assert status == 200 and body == b"" and int(got["Content-Length"]) == size
    assert_cors(got, "HEAD")
    status, got, _ = await fetch(client, "stream", params,
                                 headers={**ORIGIN, "If-None-Match": got["ETag"]})
    assert status == 304
    assert_cors(got, 304)
    status, got, body = await fetch(client, "download", params, headers=ORIGIN)
    assert status == 200 and body == data and got["Content-Disposition"].startswith("attachment")
    assert_cors(got, "download")
    status, got, _ = await fetch(client, "stream", {**auth, "id": "tr-999999999", "f": "json"},
                                 headers=ORIGIN)
    assert status == 200 and got["Content-Type"].startswith("application/json")
    assert_cors(got, "stream error")


async def test_cors_on_cover_art(client, admin, auth, audio_dir):
    song = await upload(client, admin, audio_dir, title=unique("Covered"), artist=unique("Painter"),
                        album=unique("Canvas"))
    album = (await call_json(client, "getAlbum", {**auth, "id": f"al-{song['album_id']}"}))["album"]
    for asked in (album["coverArt"], album["id"], sid(song)):
        status, got, body = await fetch(client, "getCoverArt", {**auth, "id": asked, "size": "64"},
                                        headers=ORIGIN)
        assert status == 200 and got["Content-Type"] == "image/jpeg" and body, asked
        assert_cors(got, asked)
    status, got, _ = await fetch(client, "getCoverArt", {**auth, "id": "im-999999999"},
                                 headers=ORIGIN)
    assert status == 200 and got["Content-Type"].startswith("text/xml")
    assert_cors(got, "cover error")


# ---------------------------------------------------------------- and nowhere else


async def test_no_cors_outside_rest(client, member):
    login = str(client.app.router["login_page"].url_for())
    for path, headers in (("/", {}), (login, {}), ("/api/user/me", member.headers),
                          ("/api/user/me", {}), ("/api/user/me/app-passwords", member.headers),
                          ("/no-such-page", {}), ("/restaurant", {}), ("/rest-x/ping", {})):
        resp = await client.get(path, headers={**ORIGIN, **headers}, allow_redirects=False)
        assert resp.status < 500, path
        assert_no_cors(resp.headers, path)
    for path in ("/api/user/me", "/", login):
        resp = await preflight(client, path)
        assert resp.status != 204, path
        assert_no_cors(resp.headers, path)


# ---------------------------------------------------------------- protocol versions


VERSION_ERRORS = [("0.9.0", 20), ("0.16.1", 20), ("2.0.0", 30), ("1.17.0", 30), ("1.17", 30),
                  ("999.0.0", 30), ("abc", 10), ("1", 10), ("1.", 10), ("1.16.1.0", 10),
                  ("v1.16.1", 10), ("1.16.x", 10), ("1,16,1", 10)]


@pytest.mark.parametrize(("v", "code"), VERSION_ERRORS)
async def test_version_errors_in_json(client, member, secret, v, code):
    inner = await call_json(client, "ping", {"v": v, "c": CLIENT, "u": member.username, "p": secret})
    got, message = error_of(inner)
    assert got == code, inner
    if code == 20:
        assert message.startswith("Incompatible Subsonic REST protocol version. Client must upgrade.")
    if code == 30:
        assert message.startswith("Incompatible Subsonic REST protocol version. Server must upgrade.")
    if code in (20, 30):
        assert "1.16.1" in message
    else:
        assert "'v'" in message


@pytest.mark.parametrize(("v", "code"), [("0.9.0", 20), ("2.0.0", 30), ("1.17.0", 30), ("abc", 10),
                                         ("1", 10)])
async def test_version_errors_in_xml_and_by_post(client, member, secret, v, code):
    params = {"v": v, "c": CLIENT, "u": member.username, "p": secret}
    for post in (False, True):
        status, content_type, text = await call(client, "getUser", {**params, "username":
                                                                    member.username},
                                                fmt=None, post=post)
        assert status == 200 and content_type == "text/xml"
        root = parse_xml(text)
        error = root.find("{http://subsonic.org/restapi}error")
        assert root.get("status") == "failed" and root.get("version") == "1.16.1"
        assert error is not None and error.get("code") == str(code), text


@pytest.mark.parametrize("v", ["1.1.0", "1.8.0", "1.13.0", "1.15.0", "1.16.0", "1.16.1", "1.16",
                               " 1.16.1 ", "1.16.99"])
async def test_older_and_equal_versions_are_served(client, member, secret, v):
    for mode in ({"u": member.username, "p": secret}, {"apiKey": secret}):
        inner = await call_json(client, "ping", {"v": v, "c": CLIENT, **mode})
        assert inner["status"] == "ok", (v, inner)


async def test_the_version_is_checked_after_v_and_c_and_before_credentials(client, member, secret):
    u = member.username
    rows: list[tuple[str, dict[str, str], int]] = [
        ("bad v, no c", {"v": "abc", "u": u, "p": secret}, 10),
        ("new v, no c", {"v": "2.0.0", "u": u, "p": secret}, 10),
        ("new v, wrong p", {"v": "2.0.0", "c": CLIENT, "u": u, "p": "wrong"}, 30),
        ("old v, conflicting", {"v": "0.1.0", "c": CLIENT, "apiKey": secret, "u": u}, 20),
        ("new v, unknown apiKey", {"v": "1.17.0", "c": CLIENT, "apiKey": "nope"}, 30),
        ("bad v, no credentials", {"v": "one", "c": CLIENT}, 10),
        ("new v, no credentials", {"v": "3.1.4", "c": CLIENT}, 30),
    ]
    for label, params, expected in rows:
        assert error_of(await call_json(client, "ping", params))[0] == expected, label
    # No failed sign-in was counted: a wrong password with a bad version never reached the check.
    for _ in range(12):
        await call_json(client, "ping", {"v": "2.0.0", "c": CLIENT, "u": u, "p": "wrong"})
    assert (await call_json(client, "ping", {**BASE, "u": u, "p": secret}))["status"] == "ok"


@pytest.mark.parametrize("params", [{}, {"c": CLIENT}, {"v": "2.0.0", "c": CLIENT},
                                    {"v": "abc"}, {"v": "0.1.0", "u": "nobody", "p": "x"}])
async def test_open_subsonic_extensions_is_public_whatever_the_version(client, params):
    """Apps probe a server with it before they have anything else (the reference: it must be
    public), so it answers whatever `v` says, or without one."""
    inner = await call_json(client, "getOpenSubsonicExtensions", params)
    assert inner["status"] == "ok"
    assert {"formPost", "apiKeyAuthentication"} <= {e["name"] for e in
                                                     inner["openSubsonicExtensions"]}
