"""Hostile input (issue 10 §5, SPEC §10): text that is not Unicode, ids in other scripts,
multipart bodies without a boundary and clients that hang up mid-body."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, make_mocked_request
from conftest import Account, make_audio, unique

from app.media import images
from app.web import keys

SURROGATE = "\ud800"
COVER = images.placeholder_cover("hostile input", 64)
# Tables a refused request must leave exactly as they were.
WATCHED = ("users", "sessions", "refresh_tokens", "songs", "albums", "artists", "playlists",
           "playlist_songs", "liked_songs", "images")


async def snapshot(client: TestClient) -> dict[str, Any]:
    db = client.app[keys.DB]
    tables = {r["name"] for r in await db.fetchall(
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()")}
    out: dict[str, Any] = {}
    for table in WATCHED:
        if table in tables:
            row = await db.fetchone(f"CHECKSUM TABLE `{table}`")  # noqa: S608 - fixed names
            out[table] = row["Checksum"] if row else None
    return out


def assert_error(status: int, body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, (status, body)
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def upload_song(client: TestClient, admin: Account, tmp_path: Any) -> dict[str, Any]:
    path = make_audio(tmp_path, "mp3", title="Hostile", artist="Input", album="Cases")
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name,
                   content_type="application/octet-stream")
    resp = await client.post("/api/song", data=form, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


# ------------------------------------------------------------------ lone surrogates


@pytest.mark.parametrize("path, body", [
    ("/api/auth/login", {"login": SURROGATE, "password": "whatever 123"}),
    ("/api/auth/login", {"login": "someone", "password": "pass" + SURROGATE + "word"}),
    ("/api/auth/register", {"email": "a@example.com", "username": "surrogate1",
                            "password": SURROGATE * 9}),
    ("/api/auth/register", {"email": "b@example.com", "username": "surrogate2",
                            "password": "correct horse 1", "display_name": "x" + SURROGATE}),
    ("/api/auth/refresh", {"refresh_token": SURROGATE * 40}),
    ("/api/auth/refresh", {"refresh_token": "a" * 40, SURROGATE: 1}),
])
async def test_surrogates_without_a_session_are_422(client: TestClient, path: str,
                                                   body: dict[str, Any]) -> None:
    before = await snapshot(client)
    resp = await client.post(path, json=body)  # json.dumps escapes it: "\ud800", valid JSON text
    assert resp.status == 422, await resp.text()
    assert_error(resp.status, await resp.json(), "invalid_input")
    assert await snapshot(client) == before


async def test_surrogates_in_every_json_body_are_refused_and_change_nothing(
    client: TestClient, admin: Account, tmp_path: Any
) -> None:
    song = await upload_song(client, admin, tmp_path)
    resp = await client.post("/api/playlist", json={"name": "mine"}, headers=admin.headers)
    assert resp.status == 201
    playlist = await resp.json()
    ids = {"id": playlist["id"], "song_id": song["id"]}
    spec = client.app[keys.OPENAPI]
    with_body = [(path, method, op) for path, item in spec["paths"].items()
                 for method, op in item.items() if "requestBody" in op]
    assert len(with_body) >= 11
    before = await snapshot(client)
    refused = 0
    for path, method, op in with_body:
        props = op["requestBody"]["content"]["application/json"]["schema"].get("properties", {})
        body: Any = {name: SURROGATE for name in props} or {"x": SURROGATE}
        url = re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), ids["id"])), path)
        resp = await client.request(method.upper(), url, json=body, headers=admin.headers)
        assert resp.status < 500, (method, url, resp.status, await resp.text())
        assert resp.status in (400, 404, 409, 415, 422), (method, url, resp.status)
        data = await resp.json()
        assert "error" in data, (method, url, data)
        refused += resp.status == 422
        # Nested too: a list of surrogates
        resp = await client.request(method.upper(), url, json={k: [SURROGATE] for k in props},
                                    headers=admin.headers)
        assert resp.status < 500, (method, url, resp.status, await resp.text())
    assert refused >= 11
    assert await snapshot(client) == before


async def test_invalid_unicode_in_query_form_and_headers(client: TestClient, member: Account) -> None:
    resp = await client.get("/api/search?q=%ED%A0%80", headers=member.headers)
    assert resp.status < 500
    # A form body that is not UTF-8: 422, not the UnicodeDecodeError it used to be.
    resp = await client.post("/login", data=b"login=%FF\xff&password=x",
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             allow_redirects=False)
    assert resp.status == 422, await resp.text()
    # A header whose bytes are not UTF-8 (aiohttp keeps them as surrogates): the user agent is
    # stored with the session, where it used to fail with UnicodeEncodeError. It is kept with
    # the bytes replaced, not refused (a stray cookie of another site must not lock anyone out).
    name = unique("ua")
    body = json.dumps({"email": f"{name}@example.com", "username": name,
                       "password": "correct horse 1"}).encode()
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /api/auth/register HTTP/1.1\r\nHost: x\r\nUser-Agent: ok\xff\xfe\r\n"
                 b"Cookie: other=caf\xe9\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n" % len(body) + body)
    await writer.drain()
    head = await reader.read(65536)
    writer.close()
    assert head.startswith(b"HTTP/1.1 201"), head[:300]
    stored = await client.app[keys.DB].fetchval(
        "SELECT s.user_agent FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = %s",
        (name,))
    assert stored == "ok\ufffd\ufffd"
    # A multipart form field that is not UTF-8, on a page that reads the form whole.
    before = await snapshot(client)
    multipart = (b"--zz\r\nContent-Disposition: form-data; name=\"display_name\"\r\n\r\n"
                 b"\xff\xfe\r\n--zz--\r\n")
    resp = await client.post("/me/profile", data=multipart, allow_redirects=False, headers={
        **member.headers, "Content-Type": "multipart/form-data; boundary=zz"})
    assert resp.status == 422, resp.status
    assert await snapshot(client) == before


# ------------------------------------------------------------------ ids are ASCII digits


NOT_IDS = ["\u00b9", "\u0661", "\uff11", "\u0967", "1\u0661", "\U0001d7cf"]  # ¹ ١ １ १ 1١ 𝟏


def test_every_route_with_an_id_takes_ascii_digits_only(client: TestClient) -> None:
    app = client.app
    checked = 0
    for resource in app.router.resources():
        info = resource.get_info()
        formatter = info.get("formatter")
        if not formatter:
            continue
        names = re.findall(r"\{(\w+)\}", formatter)
        id_names = [n for n in names if n == "id" or n.endswith("_id")]
        if not id_names:
            continue
        for method in {route.method for route in resource}:
            for bad in NOT_IDS:
                path = formatter
                for n in names:
                    path = path.replace("{" + n + "}", bad if n in id_names else "1")
                request = make_mocked_request(method, path, app=app)
                match = resource._match(request.rel_url.path)  # noqa: SLF001 - the pattern itself
                assert match is None, (formatter, method, bad)
            good = formatter
            for n in names:
                good = good.replace("{" + n + "}", "1")
            assert resource._match(good) is not None, formatter  # noqa: SLF001
            checked += 1
    assert checked >= 40  # the walk found the id routes (api and pages)


async def test_ids_in_other_scripts_are_not_ids(client: TestClient, admin: Account,
                                                tmp_path: Any) -> None:
    song = await upload_song(client, admin, tmp_path)
    sid = song["id"]
    assert await (await client.get(f"/api/song/{sid}", headers=admin.headers)).json()
    # The song's id written in Arabic-Indic or full-width digits names nothing.
    arabic = "".join(chr(0x0660 + int(c)) for c in str(sid))
    wide = "".join(chr(0xFF10 + int(c)) for c in str(sid))
    for path in (f"/api/song/{arabic}", f"/api/song/{wide}", f"/api/album/{wide}",
                 f"/api/image/{arabic}", f"/api/artist/{arabic}", f"/api/playlist/{wide}",
                 f"/api/stream/{arabic}"):
        resp = await client.get(path, headers=admin.headers)
        assert resp.status == 404, (path, resp.status)
        assert_error(resp.status, await resp.json(), "not_found")
    for bad in ("\u00b9", "\u0661", "\uff11", f"{sid},\u0661", "1_0", "+1"):
        resp = await client.get("/api/library/songs/contains", params={"ids": bad},
                                headers=admin.headers)
        assert resp.status == 422, (bad, resp.status, await resp.text())
        assert_error(resp.status, await resp.json(), "invalid_input")
    for bad in ("\u0661", "\u00b9", "\uff12\uff10", " 20", "2_0"):
        resp = await client.get("/api/song", params={"limit": bad}, headers=admin.headers)
        assert resp.status == 422, (bad, resp.status)
    resp = await client.get("/api/image/1", params={"size": "\u00b9"})
    assert resp.status == 422, resp.status
    resp = await client.get("/api/library/songs/contains", params={"ids": str(sid)},
                            headers=admin.headers)
    assert resp.status == 200 and await resp.json() == [False]


# ------------------------------------------------------------------ multipart without a boundary


async def test_multipart_without_a_boundary_is_400_on_every_upload_route(
    client: TestClient, admin: Account, tmp_path: Any
) -> None:
    song = await upload_song(client, admin, tmp_path)
    resp = await client.post("/api/playlist", json={"name": "covers"}, headers=admin.headers)
    playlist = await resp.json()
    routes = [("POST", "/api/song"), ("PUT", f"/api/album/{song['album_id']}/cover"),
              ("PUT", f"/api/artist/{song['artist_id']}/image"),
              ("PUT", f"/api/playlist/{playlist['id']}/cover")]
    before = await snapshot(client)
    for method, url in routes:
        for ctype in ("multipart/form-data", "multipart/form-data; boundary=",
                      "multipart/form-data; boundary=" + "b" * 71, "multipart/form-data; charset=utf-8"):
            resp = await client.request(method, url, data=b"--x\r\n\r\n--x--\r\n",
                                        headers={**admin.headers, "Content-Type": ctype})
            assert resp.status == 400, (method, url, ctype, resp.status, await resp.text())
            assert_error(resp.status, await resp.json(), "bad_request")
        # A boundary that the body never uses: malformed, 400 as well.
        resp = await client.request(method, url, data=b"no parts here at all\r\n",
                                    headers={**admin.headers,
                                             "Content-Type": "multipart/form-data; boundary=zz"})
        assert resp.status == 400, (method, url, resp.status, await resp.text())
    # The admin upload page reads its own multipart body: a malformed one is 400 there too.
    for ctype in ("multipart/form-data", "multipart/form-data; boundary=zz"):
        resp = await client.post("/admin/songs/upload", data=b"no parts here at all\r\n",
                                 headers={**admin.headers, "Content-Type": ctype})
        assert resp.status == 400, (ctype, resp.status)
    assert await snapshot(client) == before


# ------------------------------------------------------------------ clients that hang up


async def test_a_client_that_disconnects_mid_body_is_logged_as_such(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for path in ("/api/auth/login", "/api/auth/register"):
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 5000\r\n\r\n".encode() + b'{"login": "abc", ')
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        await writer.wait_closed()
    for _ in range(50):
        if sum("client disconnected" in r.getMessage() for r in caplog.records) >= 2:
            break
        await asyncio.sleep(0.05)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("client disconnected" in m for m in messages) >= 2, messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], messages
    assert not [r for r in caplog.records if r.exc_info], messages
    assert not any(" 500 " in m for m in messages), messages
    # And the server still answers.
    resp = await client.get("/api/health")
    assert resp.status == 200
