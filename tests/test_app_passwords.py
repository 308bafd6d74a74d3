"""App passwords (SPEC 13): the JSON API, the secret shown once, revocation, disabling and
deleting ending /rest access at once, a database dump that reveals nothing, and the /me page's
"Apps and devices" section driven through its forms."""

from __future__ import annotations

import hashlib
import html
import re

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, make_admin, register
from subsonic_support import BASE, call_json, credentials, error_of, md5_hex, new_app_password
from support import database_dumps
from test_pages import form_token, login_as, post_form

from app.web import keys

MODES = ["p", "enc", "token", "apiKey"]
SECRET_SHAPE = re.compile(r"[a-z2-9]{5}(-[a-z2-9]{5}){4}")


async def rest_status(client: TestClient, account: Account, secret: str, mode: str = "p") -> tuple[str, int | None]:
    inner = await call_json(client, "ping", {**BASE, **credentials(mode, account.username, secret)})
    return (inner["status"], None) if inner["status"] == "ok" else ("failed", error_of(inner)[0])


# ---------------------------------------------------------------- the API


async def test_create_list_delete(client, member):
    resp = await client.post("/api/user/me/app-passwords", json={"label": "  Phone – Symfonium "},
                             headers=member.headers)
    assert resp.status == 201 and resp.headers["Cache-Control"] == "no-store"
    created = await resp.json()
    assert set(created) == {"id", "label", "password", "created_at"}
    assert created["label"] == "Phone – Symfonium"
    assert SECRET_SHAPE.fullmatch(created["password"]), created["password"]
    assert created["created_at"].endswith("Z")
    second = await new_app_password(client, member, "desktop")
    assert second != created["password"]

    resp = await client.get("/api/user/me/app-passwords", headers=member.headers)
    assert resp.status == 200
    text = await resp.text()
    body = await resp.json()
    assert [i["label"] for i in body["items"]] == ["Phone – Symfonium", "desktop"]
    assert set(body["items"][0]) == {"id", "label", "created_at", "last_used_at", "last_client"}
    assert body["items"][0]["last_used_at"] is None and body["items"][0]["last_client"] is None
    assert created["password"] not in text and second not in text  # shown once, never listed

    resp = await client.delete(f"/api/user/me/app-passwords/{created['id']}", headers=member.headers)
    assert resp.status == 204
    resp = await client.delete(f"/api/user/me/app-passwords/{created['id']}", headers=member.headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    items = (await (await client.get("/api/user/me/app-passwords", headers=member.headers)).json())["items"]
    assert [i["label"] for i in items] == ["desktop"]


async def test_another_users_app_password_is_not_found(client, member):
    other = await register(client)
    secret = await new_app_password(client, other)
    theirs = (await (await client.get("/api/user/me/app-passwords", headers=other.headers)).json())["items"][0]
    resp = await client.delete(f"/api/user/me/app-passwords/{theirs['id']}", headers=member.headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    assert await rest_status(client, other, secret) == ("ok", None)
    mine = (await (await client.get("/api/user/me/app-passwords", headers=member.headers)).json())["items"]
    assert mine == []


@pytest.mark.parametrize("body", [{}, {"label": ""}, {"label": "   "}, {"label": 5},
                                  {"label": "x" * 65}, {"label": "bad\x07bell"}])
async def test_labels_are_validated(client, member, body):
    resp = await client.post("/api/user/me/app-passwords", json=body, headers=member.headers)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_input" and "label" in error["details"]["fields"]


async def test_needs_a_user(client):
    for method, path in (("GET", "/api/user/me/app-passwords"), ("POST", "/api/user/me/app-passwords"),
                         ("DELETE", "/api/user/me/app-passwords/1")):
        resp = await client.request(method, path, json={"label": "x"})
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthenticated"


async def test_use_is_recorded(client, member):
    secret = await new_app_password(client, member)
    await call_json(client, "ping", {**BASE, "c": "DSub/5.5", "u": member.username, "p": secret})
    item = (await (await client.get("/api/user/me/app-passwords", headers=member.headers)).json())["items"][0]
    assert item["last_client"] == "DSub/5.5" and item["last_used_at"].endswith("Z")
    # Not a write per request: within the minute, another use leaves the record as it was.
    await call_json(client, "ping", {**BASE, "c": "Other/1.0", "apiKey": secret})
    again = (await (await client.get("/api/user/me/app-passwords", headers=member.headers)).json())["items"][0]
    assert again == item


# ---------------------------------------------------------------- ending access at once


async def test_revoking_ends_access_at_once(client, member):
    secret = await new_app_password(client, member)
    keep = await new_app_password(client, member, "other device")
    for mode in MODES:  # each check is now remembered by the server for a moment
        assert await rest_status(client, member, secret, mode) == ("ok", None)
    app_id = (await (await client.get("/api/user/me/app-passwords", headers=member.headers)).json())["items"][0]["id"]
    resp = await client.delete(f"/api/user/me/app-passwords/{app_id}", headers=member.headers)
    assert resp.status == 204
    for mode in MODES:
        assert await rest_status(client, member, secret, mode) == ("failed", 44 if mode == "apiKey" else 40)
    assert await rest_status(client, member, keep) == ("ok", None)


@pytest.mark.parametrize("action", ["disable", "delete"])
async def test_disabling_or_deleting_the_user_ends_access_at_once(client, member, action):
    admin = await make_admin(client, await register(client))
    secret = await new_app_password(client, member)
    for mode in MODES:
        assert await rest_status(client, member, secret, mode) == ("ok", None)
    if action == "disable":
        resp = await client.put(f"/api/user/{member.id}/disabled", json={"disabled": True},
                                headers=admin.headers)
        assert resp.status == 200
    else:
        resp = await client.delete(f"/api/user/{member.id}", headers=admin.headers)
        assert resp.status == 204
    for mode in MODES:
        inner = await call_json(client, "ping", {**BASE, **credentials(mode, member.username, secret)})
        code, message = error_of(inner)
        assert code == (44 if mode == "apiKey" and action == "delete" else 40), (mode, inner)
        if action == "disable":
            assert "disabled" in message
    if action == "disable":  # enabled again, the same app password works again
        resp = await client.put(f"/api/user/{member.id}/disabled", json={"disabled": False},
                                headers=admin.headers)
        assert resp.status == 200
        assert await rest_status(client, member, secret) == ("ok", None)
    else:
        count = await client.app[keys.DB].fetchval(
            "SELECT COUNT(*) FROM app_passwords WHERE user_id = %s", (member.id,))
        assert count == 0


# ---------------------------------------------------------------- what the database keeps


def _forms_of(secret: str) -> list[bytes]:
    """Every form of a secret a dump must not hold: itself, its hex, its unkeyed hashes."""
    raw = secret.encode()
    return [raw, raw.hex().encode(), raw.hex().upper().encode(),
            md5_hex(secret).encode(), hashlib.md5(raw, usedforsecurity=False).digest(),
            hashlib.sha256(raw).hexdigest().encode(), hashlib.sha256(raw).digest(),
            hashlib.sha1(raw, usedforsecurity=False).hexdigest().encode()]


async def test_a_database_dump_reveals_no_secret(client, member, database_url):
    secret = await new_app_password(client, member)
    assert await rest_status(client, member, secret, "token") == ("ok", None)
    row = await client.app[keys.DB].fetchone(
        "SELECT * FROM app_passwords WHERE user_id = %s", (member.id,))
    assert row is not None
    stored = b"|".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    assert len(row["lookup_hash"]) == 64
    for form in _forms_of(secret):
        assert form not in stored
    for out in await database_dumps(database_url, "app_passwords", "users"):
        assert b"INSERT INTO `app_passwords`" in out
        for form in _forms_of(secret):
            assert form not in out, "the dump reveals the app password"


# ---------------------------------------------------------------- the /me page


SECRET_IN_PAGE = re.compile(r'<code class="app-secret">([^<]+)</code>')


async def test_me_page_create_and_revoke(client, member):
    await login_as(client, member)
    page = await (await client.get("/me")).text()
    assert 'id="apps"' in page and "Apps and devices" in page and "No app passwords yet." in page

    resp = await post_form(client, "/me/app-passwords", {"label": "Kitchen <tablet>"})
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    page = await resp.text()
    match = SECRET_IN_PAGE.search(page)
    assert match, "the new password is shown"
    secret = html.unescape(match.group(1))
    assert SECRET_SHAPE.fullmatch(secret)
    assert f"<code>{member.username}</code>" in page
    server = str(client.make_url("/")).rstrip("/")
    assert f"<code>{server}</code>" in page  # the address to type into an app
    assert "Kitchen &lt;tablet&gt;" in page and "Kitchen <tablet>" not in page
    assert await rest_status(client, member, secret, "token") == ("ok", None)

    page = await (await client.get("/me")).text()  # shown once
    assert secret not in page and "Kitchen &lt;tablet&gt;" in page and "sonora-tests" in page
    revoke = re.search(r'action="(/me/app-passwords/(\d+)/revoke)"', page)
    assert revoke
    resp = await post_form(client, revoke.group(1), {})
    assert resp.status == 302 and resp.headers["Location"] == "/me#apps"
    page = await (await client.get("/me")).text()
    assert "Revoked" in page and "No app passwords yet." in page
    assert await rest_status(client, member, secret, "token") == ("failed", 40)


async def test_me_page_refuses_bad_labels_and_others_ids(client, member):
    other = await register(client)
    other_secret = await new_app_password(client, other)
    theirs = (await (await client.get("/api/user/me/app-passwords", headers=other.headers)).json())["items"][0]
    await login_as(client, member)
    resp = await post_form(client, "/me/app-passwords", {"label": ""})
    assert resp.status == 422
    page = await resp.text()
    assert 'aria-invalid="true"' in page and not SECRET_IN_PAGE.search(page)
    resp = await post_form(client, f"/me/app-passwords/{theirs['id']}/revoke", {})
    assert resp.status == 302
    page = await (await client.get("/me")).text()
    assert "No such app password" in page
    assert await rest_status(client, other, other_secret) == ("ok", None)


async def test_me_page_forms_need_the_csrf_token(client, member):
    await login_as(client, member)
    secret = await new_app_password(client, member)
    resp = await client.post("/me/app-passwords", data={"label": "sneaky"}, allow_redirects=False)
    assert resp.status == 403
    app_id = (await (await client.get("/api/user/me/app-passwords", headers=member.headers)).json())["items"][0]["id"]
    resp = await client.post(f"/me/app-passwords/{app_id}/revoke", data={"csrf_token": "forged"},
                             allow_redirects=False)
    assert resp.status == 403
    assert await rest_status(client, member, secret) == ("ok", None)
    assert await form_token(client, "/me")  # the page still renders with its token
