"""/api/auth: registration, login, tokens, refresh rotation, revocation, rate limits and CSRF."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from typing import Any

import bcrypt
import jwt
import pytest
from aiohttp.test_utils import TestClient
from conftest import RUN_ID, Account, make_admin, make_config, register, unique

from app.main import create_app
from app.web import keys
from app.web.session import csrf_for

USER_FIELDS = {"id", "username", "display_name", "role", "avatar_url", "created_at"}


async def expect_error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The answer is `status` with exactly the one error shape; returns the error object."""
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "details"} and {"code", "message"} <= set(error)
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    return error


async def me(client: TestClient, token: str) -> int:
    resp = await client.get("/api/user/me", headers={"Authorization": f"Bearer {token}"})
    await resp.read()
    return resp.status


async def login(client: TestClient, password: str, **who: str) -> Any:
    return await client.post("/api/auth/login", json={**who, "password": password})


async def refresh(client: TestClient, token: str) -> Any:
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# --- registration ---------------------------------------------------------------------------


async def test_register_answers_tokens_and_the_user(client: TestClient) -> None:
    name = unique()
    resp = await client.post("/api/auth/register", json={
        "email": f"{name}@Example.com", "username": name, "password": "long enough", "display_name": "Ada"})
    assert resp.status == 201
    body = await resp.json()
    assert {"user", "access_token", "refresh_token", "token_type", "expires_in"} <= set(body)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    user = body["user"]
    assert USER_FIELDS | {"email"} <= set(user)
    assert user["username"] == name and user["display_name"] == "Ada" and user["role"] == "member"
    assert user["email"] == f"{name}@Example.com" and user["avatar_url"] is None
    assert user["created_at"].endswith("Z") and isinstance(user["id"], int) and user["id"] > 0
    assert "password" not in json.dumps(body).lower().replace("password_", "")
    claims = claims_of(body["access_token"])
    assert claims["typ"] == "access" and claims["sub"] == str(user["id"])
    assert claims["iss"] == "sonora" and claims["aud"] == "sonora-api" and claims["jti"]
    assert claims["exp"] - claims["iat"] == 900
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    assert await me(client, body["access_token"]) == 200


async def test_register_ignores_fields_a_client_may_not_set(client: TestClient) -> None:
    acct = await register(client, role="admin", id=1, owner_id=1, disabled=True, token_version=9)
    assert acct.user["role"] == "member" and acct.user["disabled"] is False
    await expect_error(await client.get("/api/user", headers=acct.headers), 403, "forbidden")
    row = await client.app[keys.DB].fetchone(
        "SELECT role, disabled, token_version FROM users WHERE id = %s", (acct.id,))
    assert row == {"role": "member", "disabled": 0, "token_version": 0}


@pytest.mark.parametrize("field", ["email", "username"])
async def test_duplicates_in_any_case_conflict(client: TestClient, field: str) -> None:
    first = await register(client)
    name = unique()
    body = {"email": f"{name}@example.com", "username": name, "password": "long enough"}
    body[field] = (first.username.upper() if field == "username"
                   else f"{first.username.upper()}@EXAMPLE.COM")
    error = await expect_error(await client.post("/api/auth/register", json=body), 409, "conflict")
    assert error["details"]["field"] == field
    count = await client.app[keys.DB].fetchval(
        "SELECT COUNT(*) FROM users WHERE username_canon = %s OR email_canon = %s",
        (name.lower(), f"{name}@example.com"))
    assert count == 0


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"email": "not-an-email"}, {"email"}),
        ({"email": "a@b"}, {"email"}),
        ({"email": ["x@example.com"]}, {"email"}),
        ({"username": "ab"}, {"username"}),
        ({"username": "has space"}, {"username"}),
        ({"username": "a%b"}, {"username"}),
        ({"username": 12345}, {"username"}),
        ({"password": "x" * 7}, {"password"}),
        ({"password": "x" * 129}, {"password"}),
        ({"password": 12345678}, {"password"}),
        ({"password": None}, {"password"}),
        ({"display_name": {"a": 1}}, {"display_name"}),
        ({"email": 1, "username": None, "password": True}, {"email", "username", "password"}),
    ],
)
async def test_register_refuses_bad_fields_naming_them(
    client: TestClient, changes: dict[str, Any], fields: set[str]
) -> None:
    name = unique()
    body = {"email": f"{name}@example.com", "username": name, "password": "long enough", **changes}
    error = await expect_error(await client.post("/api/auth/register", json=body), 422,
                               "invalid_input")
    assert set(error["details"]["fields"]) == fields
    assert await client.app[keys.DB].fetchval(
        "SELECT COUNT(*) FROM users WHERE username_canon = %s", (name.lower(),)) == 0


async def test_password_bounds_are_inclusive(client: TestClient) -> None:
    for password in ("x" * 8, "y" * 128):
        acct = await register(client, password=password)
        assert (await login(client, password, username=acct.username)).status == 200


async def test_closed_registration_is_403(aiohttp_client: Any, database_url: str, tmp_path: Any) -> None:
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path,
                                                         open_registration=False)))
    name = unique()
    resp = await client.post("/api/auth/register", json={
        "email": f"{name}@example.com", "username": name, "password": "long enough"})
    await expect_error(resp, 403, "forbidden")
    assert await client.app[keys.DB].fetchval(
        "SELECT COUNT(*) FROM users WHERE username_canon = %s", (name.lower(),)) == 0


# --- login ----------------------------------------------------------------------------------


async def test_login_by_email_or_username_in_any_case(client: TestClient, member: Account) -> None:
    email = member.user["email"]
    for who in ({"email": email}, {"email": email.upper()}, {"username": member.username},
                {"username": member.username.upper()}, {"username": f"  {member.username} "}):
        resp = await login(client, member.password, **who)
        assert resp.status == 200, who
        body = await resp.json()
        assert body["user"]["id"] == member.id and body["token_type"] == "Bearer"
        assert await me(client, body["access_token"]) == 200
    # The password itself is compared exactly.
    await expect_error(await login(client, member.password.upper(), username=member.username), 401)


async def test_like_wildcards_never_match(client: TestClient) -> None:
    tag = RUN_ID + unique("")
    await register(client, username=f"a_b{tag}", email=f"a_b{tag}@example.com", password="wild card 1")
    await register(client, username=f"axb{tag}", email=f"axb{tag}@example.com", password="wild card 2")
    for who in ({"username": f"a%b{tag}"}, {"username": f"a_%{tag}"}, {"username": "%"},
                {"email": f"a%b{tag}@example.com"}, {"email": "%@%"}):
        await expect_error(await login(client, "wild card 1", **who), 401, "unauthenticated")
    # `_` is a literal: axb... is not a_b...
    await expect_error(await login(client, "wild card 2", username=f"a_b{tag}"), 401)
    assert (await login(client, "wild card 1", username=f"A_B{tag}")).status == 200


async def test_wrong_password_and_unknown_account_answer_alike(
    client: TestClient, member: Account
) -> None:
    wrong = await login(client, "not the password", username=member.username)
    unknown = await login(client, "not the password", username=unique("ghost"))
    unknown_email = await login(client, "not the password", email=f"{unique('ghost')}@example.com")
    answers = []
    for resp in (wrong, unknown, unknown_email):
        await expect_error(resp, 401)
        answers.append((resp.status, await resp.json(), resp.headers["WWW-Authenticate"]))
    assert answers[0] == answers[1] == answers[2]


@pytest.mark.parametrize("body", [{}, {"username": "x"}, {"password": "long enough"},
                                  {"username": ["x"], "password": "long enough"},
                                  {"username": "someone", "password": 12345678}])
async def test_login_with_missing_or_odd_fields_is_refused(client: TestClient, body: dict) -> None:
    resp = await client.post("/api/auth/login", json=body)
    assert resp.status in (401, 422)
    await expect_error(resp, resp.status)


async def test_bytes_past_72_still_count(client: TestClient) -> None:
    prefix = "p" * 72
    acct = await register(client, password=prefix + "A" * 8)
    assert len((prefix + "A" * 8).encode()) == 80
    await expect_error(await login(client, prefix + "B" * 8, username=acct.username), 401)
    await expect_error(await login(client, prefix, username=acct.username), 401)
    assert (await login(client, prefix + "A" * 8, username=acct.username)).status == 200


async def test_account_rate_limit(aiohttp_client: Any, database_url: str, tmp_path: Any) -> None:
    client = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, login_max_failures_account=3)))
    victim, bystander = await register(client), await register(client)
    for _ in range(3):
        await expect_error(await login(client, "wrong password", username=victim.username), 401)
    for who in ({"username": victim.username}, {"username": victim.username.upper()}):
        resp = await login(client, victim.password, **who)  # even the right password waits
        await expect_error(resp, 429, "rate_limited")
        assert 1 <= int(resp.headers["Retry-After"]) <= 901
    assert (await login(client, bystander.password, username=bystander.username)).status == 200


async def test_account_limit_counts_every_spelling_of_the_account(
    aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    client = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, login_max_failures_account=3)))
    acct = await register(client)
    email = acct.user["email"]
    for who in ({"username": acct.username}, {"email": email}, {"email": email.upper()}):
        await expect_error(await login(client, "wrong password", **who), 401)
    await expect_error(await login(client, acct.password, username=acct.username.upper()), 429)
    await expect_error(await login(client, acct.password, email=email), 429)


async def test_success_resets_the_account_counter(
    aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    client = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, login_max_failures_account=3)))
    acct = await register(client)
    for _ in range(2):
        await expect_error(await login(client, "wrong password", username=acct.username), 401)
    assert (await login(client, acct.password, username=acct.username)).status == 200
    for _ in range(2):
        await expect_error(await login(client, "wrong password", username=acct.username), 401)
    assert (await login(client, acct.password, username=acct.username)).status == 200


async def test_address_rate_limit(aiohttp_client: Any, database_url: str, tmp_path: Any) -> None:
    client = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, login_max_failures_address=3)))
    accounts = [await register(client) for _ in range(4)]
    for acct in accounts[:3]:
        await expect_error(await login(client, "wrong password", username=acct.username), 401)
    resp = await login(client, accounts[3].password, username=accounts[3].username)
    await expect_error(resp, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) >= 1


async def test_register_rate_limit(aiohttp_client: Any, database_url: str, tmp_path: Any) -> None:
    client = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, register_max_per_address=2)))
    await register(client)
    await register(client)
    name = unique()
    resp = await client.post("/api/auth/register", json={
        "email": f"{name}@example.com", "username": name, "password": "long enough"})
    await expect_error(resp, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) >= 1


async def test_bcrypt_runs_off_the_event_loop(
    client: TestClient, member: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    where: list[bool] = []
    loop_thread = threading.get_ident()

    def spy(real: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            where.append(threading.get_ident() == loop_thread)
            return real(*args)
        return wrapper

    monkeypatch.setattr(bcrypt, "checkpw", spy(bcrypt.checkpw))
    monkeypatch.setattr(bcrypt, "hashpw", spy(bcrypt.hashpw))
    logins = [login(client, member.password, username=member.username) for _ in range(4)]
    bad = [login(client, "wrong password", username=unique("nobody")) for _ in range(2)]
    results = await asyncio.gather(*logins, *bad, register(client), client.get("/api/health"))
    health = results[-1]
    assert health.status == 200
    assert [r.status for r in results[:4]] == [200] * 4
    assert [r.status for r in results[4:6]] == [401, 401]
    assert len(where) >= 7 and not any(where), "bcrypt ran on the event loop thread"


# --- tokens ---------------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _flip(segment: str, index: int) -> str:
    ch = segment[index]
    return segment[:index] + ("A" if ch != "A" else "B") + segment[index + 1:]


def bad_tokens(acct: Account, key: str) -> dict[str, str]:
    header, payload, signature = acct.access.split(".")
    claims = claims_of(acct.access)
    now = int(time.time())
    return {
        "expired": jwt.encode({**claims, "iat": now - 2000, "exp": now - 1000}, key, "HS256"),
        "tampered payload": f"{header}.{_flip(payload, len(payload) // 2)}.{signature}",
        "tampered signature": f"{header}.{payload}.{_flip(signature, 10)}",
        "other user in payload": f"{header}.{_b64({**claims, 'sub': str(acct.id + 1)})}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg none upper": f"{_b64({'alg': 'NONE', 'typ': 'JWT'})}.{payload}.",
        "wrong key": jwt.encode(claims, "another key that is long enough to be valid!!", "HS256"),
        "other algorithm": jwt.encode(claims, key, "HS512"),
        "wrong audience": jwt.encode({**claims, "aud": "elsewhere"}, key, "HS256"),
        "not an access token": jwt.encode({**claims, "typ": "refresh"}, key, "HS256"),
        "refresh token": acct.refresh,
        "garbage": "garbage",
        "three dots": "a.b.c",
        "empty segments": "..",
    }


async def test_bad_tokens_are_401(client: TestClient, member: Account) -> None:
    key = client.app[keys.CONFIG].secret_key
    for name, token in bad_tokens(member, key).items():
        resp = await client.get("/api/user/me", headers={"Authorization": f"Bearer {token}"})
        error = await expect_error(resp, 401, "unauthenticated")
        assert "invalid" in resp.headers["WWW-Authenticate"], name
        assert error["message"], name
    # The real one still works, so the failures above are about the tokens.
    assert await me(client, member.access) == 200


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_missing_or_odd_authorization_is_401(client: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    resp = await client.get("/api/user/me", headers=headers)
    await expect_error(resp, 401, "unauthenticated")


async def test_refresh_rotates(client: TestClient, member: Account) -> None:
    resp = await refresh(client, member.refresh)
    assert resp.status == 200
    pair = await resp.json()
    assert pair["refresh_token"] != member.refresh and pair["token_type"] == "Bearer"
    assert pair["user"]["id"] == member.id and "email" in pair["user"]
    assert await me(client, pair["access_token"]) == 200
    resp = await refresh(client, pair["refresh_token"])
    assert resp.status == 200
    third = await resp.json()
    assert third["refresh_token"] not in (member.refresh, pair["refresh_token"])
    assert await me(client, third["access_token"]) == 200


async def test_spent_refresh_within_grace_gets_the_same_pair(
    client: TestClient, member: Account
) -> None:
    first = await (await refresh(client, member.refresh)).json()
    replay = await refresh(client, member.refresh)
    assert replay.status == 200
    again = await replay.json()
    assert again["access_token"] == first["access_token"]
    assert again["refresh_token"] == first["refresh_token"]
    # Two tabs refreshing at once both end up on the same, working pair.
    both = await asyncio.gather(refresh(client, first["refresh_token"]),
                                refresh(client, first["refresh_token"]))
    pairs = [await r.json() for r in both]
    assert [r.status for r in both] == [200, 200]
    assert pairs[0]["refresh_token"] == pairs[1]["refresh_token"]
    assert await me(client, pairs[0]["access_token"]) == 200


async def test_spent_refresh_after_grace_revokes_the_family(
    aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    client = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, refresh_reuse_grace_seconds=0)))
    acct = await register(client)
    other = await (await login(client, acct.password, username=acct.username)).json()
    successor = await (await refresh(client, acct.refresh)).json()
    assert await me(client, successor["access_token"]) == 200
    await asyncio.sleep(1.1)
    await expect_error(await refresh(client, acct.refresh), 401, "unauthenticated")
    assert await me(client, successor["access_token"]) == 401
    assert await me(client, acct.access) == 401
    await expect_error(await refresh(client, successor["refresh_token"]), 401)
    # Another session of the same account is another family: untouched.
    assert await me(client, other["access_token"]) == 200
    assert (await refresh(client, other["refresh_token"])).status == 200


@pytest.mark.parametrize("token", [None, "", "short", "x" * 201, 12345, ["a" * 20], "y" * 43])
async def test_bad_refresh_tokens_are_401(client: TestClient, token: Any) -> None:
    body = {} if token is None else {"refresh_token": token}
    await expect_error(await client.post("/api/auth/refresh", json=body), 401, "unauthenticated")


async def test_logout_ends_only_this_session(client: TestClient, member: Account) -> None:
    other = await (await login(client, member.password, username=member.username)).json()
    resp = await client.post("/api/auth/logout", headers=member.headers)
    assert resp.status == 200
    assert await me(client, member.access) == 401
    await expect_error(await refresh(client, member.refresh), 401)
    assert await me(client, other["access_token"]) == 200
    assert (await refresh(client, other["refresh_token"])).status == 200
    await expect_error(await client.post("/api/auth/logout", headers=member.headers), 401)


async def test_logout_everywhere_flag_ends_every_session(
    client: TestClient, member: Account
) -> None:
    other = await (await login(client, member.password, username=member.username)).json()
    resp = await client.post("/api/auth/logout", headers=member.headers, json={"everywhere": True})
    assert resp.status == 200
    assert await me(client, member.access) == 401
    assert await me(client, other["access_token"]) == 401
    await expect_error(await refresh(client, other["refresh_token"]), 401)


async def test_logout_all_ends_every_session(client: TestClient, member: Account) -> None:
    other = await (await login(client, member.password, username=member.username)).json()
    resp = await client.post("/api/auth/logout-all", headers=member.headers)
    assert resp.status == 200
    for token in (member.access, other["access_token"]):
        assert await me(client, token) == 401
    for token in (member.refresh, other["refresh_token"]):
        await expect_error(await refresh(client, token), 401)
    assert (await login(client, member.password, username=member.username)).status == 200


async def test_password_change_revokes_other_sessions(client: TestClient, member: Account) -> None:
    other = await (await login(client, member.password, username=member.username)).json()
    resp = await client.put("/api/user/me", headers=member.headers, json={
        "current_password": member.password, "new_password": "a brand new one"})
    assert resp.status == 200
    body = await resp.json()
    fresh = body["tokens"]
    assert fresh["token_type"] == "Bearer" and body["id"] == member.id
    assert await me(client, fresh["access_token"]) == 200
    assert (await refresh(client, fresh["refresh_token"])).status == 200
    assert await me(client, other["access_token"]) == 401
    await expect_error(await refresh(client, other["refresh_token"]), 401)
    await expect_error(await login(client, member.password, username=member.username), 401)
    assert (await login(client, "a brand new one", username=member.username)).status == 200


async def test_password_change_needs_the_current_password(
    client: TestClient, member: Account
) -> None:
    for body, field in (({"new_password": "a brand new one"}, "current_password"),
                        ({"current_password": "wrong one!", "new_password": "a brand new one"},
                         "current_password"),
                        ({"current_password": member.password, "new_password": "short"},
                         "new_password")):
        resp = await client.put("/api/user/me", headers=member.headers, json=body)
        error = await expect_error(resp, 422, "invalid_input")
        assert field in error["details"]["fields"]
    assert await me(client, member.access) == 200
    assert (await login(client, member.password, username=member.username)).status == 200


async def test_disabling_revokes_and_blocks_login(
    client: TestClient, admin: Account, member: Account
) -> None:
    assert await me(client, member.access) == 200  # cached state is warm
    resp = await client.put(f"/api/user/{member.id}/disabled", headers=admin.headers,
                            json={"disabled": True})
    assert resp.status == 200 and (await resp.json())["disabled"] is True
    assert await me(client, member.access) == 401
    await expect_error(await refresh(client, member.refresh), 401)
    resp = await login(client, member.password, username=member.username)
    assert resp.status in (401, 403)
    await expect_error(resp, resp.status)
    resp = await client.put(f"/api/user/{member.id}/disabled", headers=admin.headers,
                            json={"disabled": False})
    assert resp.status == 200
    assert await me(client, member.access) == 401  # re-enabling does not revive old tokens
    assert (await login(client, member.password, username=member.username)).status == 200


async def test_role_change_takes_effect_on_the_next_request(
    client: TestClient, admin: Account, member: Account
) -> None:
    other_admin = await make_admin(client, await register(client))
    assert (await client.get("/api/user", headers=other_admin.headers)).status == 200
    resp = await client.put(f"/api/user/{other_admin.id}/role", headers=admin.headers,
                            json={"role": "member"})
    assert resp.status == 200 and (await resp.json())["role"] == "member"
    await expect_error(await client.get("/api/user", headers=other_admin.headers), 403, "forbidden")
    await expect_error(await client.put(f"/api/user/{member.id}/role", headers=other_admin.headers,
                                        json={"role": "admin"}), 403)
    await expect_error(await client.get("/api/user", headers=member.headers), 403)
    resp = await client.put(f"/api/user/{member.id}/role", headers=admin.headers,
                            json={"role": "admin"})
    assert resp.status == 200
    assert (await client.get("/api/user", headers=member.headers)).status == 200
    assert await me(client, other_admin.access) == 200  # a role change is not a logout


# --- CSRF -----------------------------------------------------------------------------------


def cookie(acct: Account) -> dict[str, str]:
    return {"Cookie": f"sonora_access={acct.access}"}


async def test_cookie_requests_need_the_csrf_token(client: TestClient, member: Account) -> None:
    resp = await client.get("/api/user/me", headers=cookie(member))
    assert resp.status == 200  # safe methods need no token
    resp = await client.put("/api/user/me", headers=cookie(member), json={"display_name": "Forged"})
    await expect_error(resp, 403, "forbidden")
    other = await (await login(client, member.password, username=member.username)).json()
    signer = client.app[keys.AUTH].signer
    wrong = csrf_for(signer, claims_of(other["access_token"])["sid"])
    resp = await client.put("/api/user/me", headers={**cookie(member), "X-CSRF-Token": wrong},
                            json={"display_name": "Forged"})
    await expect_error(resp, 403, "forbidden")
    resp = await client.post("/api/auth/logout", headers=cookie(member))
    await expect_error(resp, 403, "forbidden")
    body = await (await client.get("/api/user/me", headers=member.headers)).json()
    assert body["display_name"] != "Forged"
    assert await me(client, member.access) == 200  # the forged logout changed nothing

    token = csrf_for(signer, claims_of(member.access)["sid"])
    resp = await client.put("/api/user/me", headers={**cookie(member), "X-CSRF-Token": token},
                            json={"display_name": "Mine"})
    assert resp.status == 200 and (await resp.json())["display_name"] == "Mine"


async def test_bearer_requests_need_no_csrf_token(client: TestClient, member: Account) -> None:
    resp = await client.put("/api/user/me", headers=member.headers, json={"display_name": "Bearer"})
    assert resp.status == 200 and (await resp.json())["display_name"] == "Bearer"
