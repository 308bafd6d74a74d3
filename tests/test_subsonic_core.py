"""The /rest core (SPEC 13): transport (bare and `.view`, GET and form POST, repeated parameters,
XML, JSON and JSONP), the envelope, errors as HTTP 200 envelopes, the auth decision table row by
row, every auth mode of an app password, rate limiting, logs free of credentials, and the first
methods — every `f=json` answer validated against the OpenSubsonic schemas, every XML answer
compared with the JSON one."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, make_admin, make_config, register
from multidict import MultiDict, MultiDictProxy
from subsonic_support import (
    BASE,
    CLIENT,
    assert_valid,
    assert_xml_matches_json,
    call,
    call_both,
    call_json,
    credentials,
    error_of,
    md5_hex,
    new_app_password,
    parse_xml,
    token_params,
)

from app.main import SUBSONIC_TABLES, VERSION, create_app
from app.web import keys
from app.web.middlewares import ACCESS_LINES
from app.web.subsonic.errors import SubsonicError
from app.web.subsonic.params import Params, numeric_id
from app.web.subsonic.registry import ADMIN, Call, Methods, SubsonicApi

MODES = ["p", "enc", "ENC", "token", "apiKey"]


@pytest.fixture
async def secret(client: TestClient, member: Account) -> str:
    return await new_app_password(client, member)


def with_base(**params: str) -> dict[str, str]:
    return {**BASE, **params}


async def code_of(client: TestClient, method: str, params: Any, **kw: Any) -> int:
    inner = await call_json(client, method, params, **kw)
    return error_of(inner)[0]


# ---------------------------------------------------------------- auth modes


@pytest.mark.parametrize("mode", MODES)
async def test_every_auth_mode_of_an_app_password(client, member, secret, mode):
    inner = await call_both(client, "ping", with_base(**credentials(mode, member.username, secret)))
    assert inner["status"] == "ok"


@pytest.mark.parametrize("salt", [
    "a",  # one character
    "123456",  # digits, as subsonic-cli sends (1 to 6 of them)
    "0123456789abcdef0123456789abcdef",  # 32 hex characters, as knuckles sends
    "Ab_-9zQ_x-",  # base64url with '_' and '-', as subsonic-api sends
    "sälz ☃",  # not ASCII: hashed as UTF-8
])
async def test_token_auth_takes_any_salt(client, member, secret, salt):
    inner = await call_json(client, "ping", with_base(**token_params(member.username, secret, salt)))
    assert inner["status"] == "ok"


async def test_token_in_upper_case_and_username_in_any_case(client, member, secret):
    params = token_params(member.username.upper(), secret, "s4lt")
    params["t"] = params["t"].upper()
    assert (await call_json(client, "ping", with_base(**params)))["status"] == "ok"
    plain = with_base(u=member.username.upper(), p=secret)
    assert (await call_json(client, "ping", plain))["status"] == "ok"


async def test_each_of_several_app_passwords_works(client, member):
    first = await new_app_password(client, member, "phone")
    second = await new_app_password(client, member, "desktop")
    for secret in (first, second):
        for mode in ("p", "token", "apiKey"):
            params = with_base(**credentials(mode, member.username, secret))
            assert (await call_json(client, "ping", params))["status"] == "ok"


async def test_the_account_password_is_refused(client, member, secret):
    """bcrypt account passwords never work on /rest, in any mode, and the message says where to
    make an app password."""
    for params in (
        {"u": member.username, "p": member.password},
        {"u": member.username, "p": "enc:" + member.password.encode().hex()},
        token_params(member.username, member.password, "abcdef"),
    ):
        inner = await call_json(client, "ping", with_base(**params))
        code, message = error_of(inner)
        assert code == 40
        assert "/me" in message and "Apps and devices" in message and "app password" in message
        assert inner["error"]["helpUrl"].endswith("/me#apps")
    assert await code_of(client, "ping", with_base(apiKey=member.password)) == 44


async def test_an_app_password_works_only_for_its_own_account(client, member, secret):
    other = await register(client)
    other_secret = await new_app_password(client, other)
    assert await code_of(client, "ping", with_base(u=member.username, p=other_secret)) == 40
    params = token_params(member.username, other_secret, "salt99")
    assert await code_of(client, "ping", with_base(**params)) == 40
    assert await code_of(client, "ping", with_base(u="nobody-at-all", p=secret)) == 40


@pytest.mark.parametrize("bad", ["enc:zz", "enc:abc", "enc:", "enc:c3", "x" * 300, " " + "a"])
async def test_malformed_passwords_are_wrong_not_errors(client, member, secret, bad):
    assert await code_of(client, "ping", with_base(u=member.username, p=bad)) == 40


# ---------------------------------------------------------------- the decision table, in order


async def test_decision_table_row_by_row(client, member, secret):
    u = member.username
    good_token = token_params(u, secret, "abc123")
    rows: list[tuple[str, dict[str, str], int]] = [
        # 1. no v or no c → 10, whatever else is sent (even right or conflicting credentials)
        ("no v", {"c": CLIENT, "u": u, "p": secret}, 10),
        ("no c", {"v": "1.16.1", "u": u, "p": secret}, 10),
        ("empty v", {"v": "", "c": CLIENT, "u": u, "p": secret}, 10),
        ("no v, conflicting", {"c": CLIENT, "apiKey": secret, "u": u}, 10),
        # 2. apiKey with any of u/p/t/s → 43, before the key is even looked at
        ("apiKey+u", with_base(apiKey=secret, u=u), 43),
        ("apiKey+p", with_base(apiKey=secret, p=secret), 43),
        ("apiKey+t", with_base(apiKey=secret, t=good_token["t"]), 43),
        ("apiKey+s", with_base(apiKey=secret, s="abc123"), 43),
        ("unknown apiKey+u", with_base(apiKey="not-a-key", u=u), 43),
        # 3. unknown apiKey → 44
        ("unknown apiKey", with_base(apiKey="not-a-key"), 44),
        # 4. no credentials → 10
        ("nothing", with_base(), 10),
        ("u alone", with_base(u=u), 10),
        ("empty p", with_base(u=u, p=""), 10),
        # 5. p with t or s → 43, before the missing half of the token is noticed
        ("p+t", with_base(u=u, p=secret, t=good_token["t"]), 43),
        ("p+s", with_base(u=u, p=secret, s="abc123"), 43),
        ("p+t+s", with_base(**good_token, p=secret), 43),
        ("wrong p+t", with_base(u=u, p="wrong", t=good_token["t"]), 43),
        # 6. t without s, or s without t → 10
        ("t alone", with_base(u=u, t=good_token["t"]), 10),
        ("s alone", with_base(u=u, s="abc123"), 10),
        # ... and without u → 10
        ("p without u", with_base(p=secret), 10),
        ("t+s without u", with_base(t=good_token["t"], s="abc123"), 10),
        # 7. wrong → 40
        ("wrong p", with_base(u=u, p="wrong"), 40),
        ("wrong t", with_base(u=u, t=md5_hex("wrong" + "abc123"), s="abc123"), 40),
        ("t not hex", with_base(u=u, t="zz", s="abc123"), 40),
        ("unknown user", with_base(u="nobody-here", p=secret), 40),
        # and right → ok
        ("right p", with_base(u=u, p=secret), -1),
        ("right t", with_base(**good_token), -1),
        ("right apiKey", with_base(apiKey=secret), -1),
    ]
    for label, params, expected in rows:
        inner = await call_json(client, "ping", params)
        got = error_of(inner)[0] if inner["status"] == "failed" else -1
        assert got == expected, f"{label}: expected {expected}, got {got} ({inner})"


async def test_decision_table_in_xml_and_by_post(client, member, secret):
    """The same errors come in XML (the default) and with the parameters in a form body."""
    status, content_type, text = await call(client, "ping", with_base(apiKey=secret, u="x"), fmt=None)
    assert status == 200 and content_type == "text/xml"
    root = parse_xml(text)
    assert root.get("status") == "failed"
    error = root.find("{http://subsonic.org/restapi}error")
    assert error is not None and error.get("code") == "43"
    inner = await call_json(client, "ping", with_base(u=member.username, p="wrong"), post=True)
    assert error_of(inner)[0] == 40


# ---------------------------------------------------------------- transport


@pytest.mark.parametrize(("post", "view"), [(False, False), (False, True), (True, False), (True, True)])
async def test_bare_and_view_get_and_form_post(client, member, secret, post, view):
    params = with_base(**credentials("token", member.username, secret))
    inner = await call_both(client, "getUser", {**params, "username": member.username},
                            post=post, view=view)
    assert inner["user"]["username"] == member.username


async def test_query_and_form_body_are_merged(client, member, secret):
    resp = await client.post(f"/rest/ping.view?v=1.16.1&c={CLIENT}&f=json",
                             data={"u": member.username, "p": secret})
    body = await resp.json()
    assert resp.status == 200 and body["subsonic-response"]["status"] == "ok"


async def test_booleans_and_repeats_reach_methods(aiohttp_client, database_url, tmp_path):
    """A method reads repeated parameters (query and body together), booleans in any case, and
    gets errors 10 and 70 from the typed getters; an exception inside it is error 0, logged."""
    echo = Methods()

    @echo.method("echoTest")
    async def echo_test(call: Call) -> dict[str, Any]:
        p = call.params
        return {"echo": {"id": p.texts("id"), "flag": p.flag("flag", False),
                         "size": p.integer("size", 10, lo=0, hi=500, clamp=True)}}

    @echo.method("needsNumber")
    async def needs_number(call: Call) -> dict[str, Any]:
        return {"echo": {"n": call.params.integer("n", lo=1, hi=9)}}

    @echo.method("byId")
    async def by_id(call: Call) -> dict[str, Any]:
        return {"echo": {"id": numeric_id(call.params.text("id"), "al-")}}

    @echo.method("explodes")
    async def explodes(call: Call) -> dict[str, Any]:
        raise RuntimeError("boom")

    @echo.method("adminOnly", access=ADMIN)
    async def admin_only(call: Call) -> dict[str, Any]:
        return {}

    app = create_app(make_config(database_url, tmp_path))
    app[keys.SUBSONIC] = SubsonicApi([*SUBSONIC_TABLES, echo], VERSION)
    client = await aiohttp_client(app)
    member = await register(client)
    secret = await new_app_password(client, member)
    auth = with_base(u=member.username, p=secret)

    async def inner(method: str, params: list[tuple[str, str]], **kw: Any) -> dict[str, Any]:
        status, _, text = await call(client, method, [*auth.items(), *params], **kw)
        assert status == 200
        return dict(json.loads(text)["subsonic-response"])

    got = await inner("echoTest", [("id", "1"), ("id", "2"), ("flag", "TRUE"), ("size", "99999")])
    assert got["echo"] == {"id": ["1", "2"], "flag": True, "size": 500}
    resp = await client.post("/rest/echoTest?id=1&id=2&f=json&" + "&".join(f"{k}={v}" for k, v in auth.items()),
                             data=[("id", "3"), ("flag", "0")])
    assert (await resp.json())["subsonic-response"]["echo"] == {"id": ["1", "2", "3"], "flag": False, "size": 10}
    for flag, expected in (("True", True), ("1", True), ("false", False), ("FALSE", False)):
        assert (await inner("echoTest", [("flag", flag)]))["echo"]["flag"] is expected
    assert error_of(await inner("echoTest", [("flag", "yes please")]))[0] == 10
    assert error_of(await inner("echoTest", [("size", "ten")]))[0] == 10
    assert error_of(await inner("needsNumber", []))[0] == 10
    assert error_of(await inner("needsNumber", [("n", "42")]))[0] == 10
    assert (await inner("needsNumber", [("n", "4")]))["echo"] == {"n": 4}
    assert (await inner("byId", [("id", "al-7")]))["echo"] == {"id": 7}
    for bad in ("7", "ar-7", "al-", "al-x", "al-99999999999999999999", "al-٣"):
        assert error_of(await inner("byId", [("id", bad)]))[0] == 70, bad
    assert error_of(await inner("adminOnly", []))[0] == 50
    code, message = error_of(await inner("explodes", []))
    assert code == 0 and "boom" not in message


def test_params_reads_repeats_in_order() -> None:
    params = Params(MultiDictProxy(MultiDict([("id", "a"), ("x", ""), ("id", "b"), ("id", "")])))
    assert params.texts("id") == ["a", "b"]
    assert params.get("x") is None and params.optional_text("x", "d") == "d"
    with pytest.raises(SubsonicError) as info:
        params.text("missing")
    assert info.value.code == 10


async def test_jsonp(client, member, secret):
    params = with_base(u=member.username, p=secret, f="jsonp", callback="app.cb_1")
    status, content_type, text = await call(client, "ping", params, fmt=None)
    assert status == 200 and content_type == "application/javascript"
    assert text.startswith("app.cb_1(") and text.endswith(");")
    body = json.loads(text[len("app.cb_1("):-2])
    assert_valid("ping", body)
    assert body["subsonic-response"]["status"] == "ok"
    for callback in ("", "alert(1)//", "a b", "1abc", "x" * 200, "</script>"):
        params = with_base(u=member.username, p=secret, f="jsonp", callback=callback)
        status, content_type, text = await call(client, "ping", params, fmt=None)
        assert status == 200 and content_type == "application/json", callback
        body = json.loads(text)
        assert_valid("ping", body)
        assert error_of(body["subsonic-response"])[0] == 10


async def test_unknown_format_is_an_xml_error(client, member, secret):
    status, content_type, text = await call(client, "ping", with_base(u=member.username, p=secret, f="yaml"), fmt=None)
    assert status == 200 and content_type == "text/xml"
    assert parse_xml(text).get("status") == "failed"


@pytest.mark.parametrize("path", ["/rest/noSuchMethod", "/rest/noSuchMethod.view", "/rest/", "/rest",
                                  "/rest/a/b", "/rest/ping.view/extra", "/rest/%3Cscript%3E"])
async def test_unknown_methods_are_error_0(client, member, secret, path):
    params = with_base(u=member.username, p=secret, f="json")
    for method in ("GET", "POST", "PUT", "DELETE"):
        resp = await client.request(method, path, params=params)
        assert resp.status == 200, (method, path)
        body = await resp.json()
        assert_valid("ping", body)  # the generic envelope
        code, message = error_of(body["subsonic-response"])
        assert code == 0 and message, (method, path)


async def test_hostile_input_gets_envelopes(client, member, secret):
    auth = with_base(u=member.username, p=secret)
    # A form body that is not UTF-8, and one past the size limit: still envelopes.
    resp = await client.post("/rest/ping?f=json", data=b"u=\xff\xfe",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 200 and error_of((await resp.json())["subsonic-response"])[0] == 0
    resp = await client.post("/rest/ping?f=json", data=io.BytesIO(b"p=" + b"a" * (2 * 1024 * 1024)),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 200 and error_of((await resp.json())["subsonic-response"])[0] == 0
    # A multipart body is not read (formPost is urlencoded); the query still counts.
    resp = await client.post("/rest/ping", params={**auth, "f": "json"}, data={"x": "1"},
                             headers={"Content-Type": "multipart/form-data"})
    assert resp.status == 200 and (await resp.json())["subsonic-response"]["status"] == "ok"
    # Odd values everywhere: never a 500.
    for params in ({**auth, "u": "\x00'; DROP TABLE users; --"}, {**auth, "c": "☃" * 500},
                   {**auth, "p": "../../etc/passwd"}, {**auth, "v": "999.0.0"}):
        status, _, text = await call(client, "ping", params)
        assert status == 200
        assert_valid("ping", json.loads(text))


async def test_cookies_do_not_authenticate_and_need_no_csrf(client, member, secret):
    """A browser session is no credential on /rest, and /rest form posts need no CSRF token."""
    from test_pages import login_as

    await login_as(client, member)
    assert await code_of(client, "ping", with_base()) == 10
    inner = await call_json(client, "ping", with_base(u=member.username, p=secret), post=True)
    assert inner["status"] == "ok"


# ---------------------------------------------------------------- rate limiting


async def test_failures_are_rate_limited_per_account_and_address(aiohttp_client, database_url, tmp_path):
    client = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, login_max_failures_account_address=3,
        trusted_proxies=("127.0.0.1",))))
    member = await register(client)
    secret = await new_app_password(client, member)
    bystander = await register(client)
    bystander_secret = await new_app_password(client, bystander)
    for _ in range(3):
        assert await code_of(client, "ping", with_base(u=member.username, p="wrong")) == 40
    status, _, text = await call(client, "ping", with_base(u=member.username, p=secret))
    inner = json.loads(text)["subsonic-response"]
    code, message = error_of(inner)
    assert code == 0 and "Too many" in message  # even the right password waits
    resp = await client.get("/rest/ping", params={**with_base(u=member.username, p=secret), "f": "json"})
    assert 1 <= int(resp.headers["Retry-After"]) <= 901
    assert_valid("ping", await resp.json())
    token = token_params(member.username.upper(), secret, "x1")  # any spelling of the account
    assert error_of(await call_json(client, "ping", with_base(**token)))[0] == 0
    # Someone else's failures do not lock the owner out from another address ...
    elsewhere = {"X-Forwarded-For": "203.0.113.9"}
    inner = await call_json(client, "ping", with_base(u=member.username, p=secret), headers=elsewhere)
    assert inner["status"] == "ok"
    # ... nor another account from the same address.
    inner = await call_json(client, "ping", with_base(u=bystander.username, p=bystander_secret))
    assert inner["status"] == "ok"


async def test_api_key_failures_are_rate_limited_per_address(aiohttp_client, database_url, tmp_path):
    client = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, login_max_failures_address=3)))
    member = await register(client)
    secret = await new_app_password(client, member)
    for n in range(3):
        assert await code_of(client, "ping", with_base(apiKey=f"guess-{n}")) == 44
    code, message = error_of(await call_json(client, "ping", with_base(apiKey=secret)))
    assert code == 0 and "Too many" in message


async def test_a_success_resets_the_account_counter(aiohttp_client, database_url, tmp_path):
    client = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, login_max_failures_account_address=3)))
    member = await register(client)
    secret = await new_app_password(client, member)
    for round_ in range(2):
        for _ in range(2):
            assert await code_of(client, "ping", with_base(u=member.username, p="wrong")) == 40
        # A salt never used before, so the check is made, not remembered.
        fresh = token_params(member.username, secret, f"salt{round_}")
        assert (await call_json(client, "ping", with_base(**fresh)))["status"] == "ok"


# ---------------------------------------------------------------- no credential in any log line


async def test_no_credential_reaches_a_log_line(aiohttp_client, database_url, tmp_path, caplog):
    explode = Methods()

    @explode.method("explodes")
    async def explodes(call: Call) -> dict[str, Any]:
        raise ValueError("a method failed")

    app = create_app(make_config(database_url, tmp_path))
    app[keys.SUBSONIC] = SubsonicApi([*SUBSONIC_TABLES, explode], VERSION)
    client = await aiohttp_client(app)
    member = await register(client)
    secret = await new_app_password(client, member)
    salt = "SaltValue-9f3k"
    token = md5_hex(secret + salt)
    wrong_secret = "wrong-secret-value-42"
    caplog.set_level(logging.DEBUG)
    ACCESS_LINES.flush()
    for method in ("ping", "getUser", "explodes", "noSuchMethod"):
        for params in (with_base(u=member.username, p=secret, username=member.username),
                       with_base(u=member.username, p="enc:" + secret.encode().hex()),
                       with_base(u=member.username, t=token, s=salt),
                       with_base(apiKey=secret),
                       with_base(u=member.username, p=wrong_secret),
                       with_base(apiKey=wrong_secret),
                       with_base(apiKey=secret, u=member.username, p=secret, t=token, s=salt)):
            for post in (False, True):
                await call(client, method, params, post=post)
                await call(client, method, params, post=post, fmt="xml", view=True)
    ACCESS_LINES.flush()
    records = caplog.records
    assert any(r.name == "sonora.access" and "/rest/ping" in r.getMessage() for r in records)
    assert any(r.name == "sonora.subsonic" and r.exc_info for r in records), "the failure is logged"
    handler = logging.StreamHandler()
    text = "\n".join(handler.format(r) for r in records)
    for value in (secret, secret.encode().hex(), token, salt, wrong_secret):
        assert value not in text, "a credential reached the logs"
    assert member.password not in text


# ---------------------------------------------------------------- the methods


async def test_ping_and_license(client, member, secret):
    auth = with_base(u=member.username, p=secret)
    assert (await call_both(client, "ping", auth))["status"] == "ok"
    inner = await call_both(client, "getLicense", auth)
    assert inner["license"]["valid"] is True


async def test_open_subsonic_extensions_are_public_and_exact(client):
    for params in ({}, {"c": CLIENT}, {"u": "nobody", "p": "wrong"}, {"apiKey": "bad", "u": "x"}):
        inner = await call_both(client, "getOpenSubsonicExtensions", params)
        assert inner["status"] == "ok"
        assert inner["openSubsonicExtensions"] == [
            {"name": "apiKeyAuthentication", "versions": [1]},
            {"name": "formPost", "versions": [1]},
            {"name": "songLyrics", "versions": [1]},
            {"name": "topSongsByArtistId", "versions": [1]},
        ]
    _, _, text = await call(client, "getOpenSubsonicExtensions", {}, fmt=None)
    elements = parse_xml(text).findall("{http://subsonic.org/restapi}openSubsonicExtensions")
    assert {e.get("name") for e in elements} == {"formPost", "apiKeyAuthentication",
                                                 "songLyrics", "topSongsByArtistId"}
    assert [v.text for v in elements[0].findall("{http://subsonic.org/restapi}versions")] == ["1"]


async def test_token_info_is_for_api_keys(client, member, secret):
    inner = await call_both(client, "tokenInfo", with_base(apiKey=secret))
    assert inner["tokenInfo"] == {"username": member.username}
    for mode in ("p", "token"):
        inner = await call_both(client, "tokenInfo", with_base(**credentials(mode, member.username, secret)))
        assert error_of(inner)[0] == 42
    assert error_of(await call_both(client, "tokenInfo", with_base(apiKey="nope")))[0] == 44


async def test_music_folders(client, member, secret):
    inner = await call_both(client, "getMusicFolders", with_base(apiKey=secret))
    assert inner["musicFolders"] == {"musicFolder": [{"id": 1, "name": "Music"}]}


async def test_get_user_own_and_others(client, member, secret):
    auth = with_base(u=member.username, p=secret)
    inner = await call_both(client, "getUser", {**auth, "username": member.username})
    user = inner["user"]
    assert user["username"] == member.username and user["email"] == member.user["email"]
    assert user["adminRole"] is False and user["streamRole"] is True and user["uploadRole"] is False
    assert user["playlistRole"] and user["coverArtRole"] and user["downloadRole"]
    assert user["folder"] == [1]
    other = await register(client)
    assert error_of(await call_both(client, "getUser", {**auth, "username": other.username}))[0] == 50
    assert error_of(await call_both(client, "getUser", auth))[0] == 10
    admin = await make_admin(client, await register(client))
    admin_secret = await new_app_password(client, admin)
    admin_auth = with_base(u=admin.username, t=md5_hex(admin_secret + "x"), s="x")
    inner = await call_both(client, "getUser", {**admin_auth, "username": other.username.upper()})
    assert inner["user"]["username"] == other.username and inner["user"]["adminRole"] is False
    inner = await call_both(client, "getUser", {**admin_auth, "username": admin.username})
    assert inner["user"]["adminRole"] is True and inner["user"]["uploadRole"] is True
    assert error_of(await call_both(client, "getUser", {**admin_auth, "username": "nobody-x"}))[0] == 70


async def test_get_users_is_for_admins(client, member, secret):
    assert error_of(await call_both(client, "getUsers", with_base(apiKey=secret)))[0] == 50
    admin = await make_admin(client, await register(client))
    admin_secret = await new_app_password(client, admin)
    inner = await call_both(client, "getUsers", with_base(apiKey=admin_secret))
    names = {u["username"] for u in inner["users"]["user"]}
    assert {member.username, admin.username} <= names
    assert all(isinstance(u["folder"], list) for u in inner["users"]["user"])


async def test_xml_envelope_attributes(client, member, secret):
    _, _, text = await call(client, "getUser", with_base(u=member.username, p=secret, username=member.username), fmt=None)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = parse_xml(text)
    assert root.attrib == {"status": "ok", "version": "1.16.1", "type": "sonora",
                           "serverVersion": VERSION, "openSubsonic": "true"}
    user = root.find("{http://subsonic.org/restapi}user")
    assert user is not None and user.get("adminRole") == "false"
    assert [f.text for f in user.findall("{http://subsonic.org/restapi}folder")] == ["1"]


def test_the_checks_catch_wrong_answers() -> None:
    """The schema check and the XML comparison are not vacuous."""
    head = {"status": "ok", "version": "1.16.1", "type": "sonora", "serverVersion": "1",
            "openSubsonic": True}
    assert_valid("ping", {"subsonic-response": head})
    for wrong in ({**head, "openSubsonic": "true"}, {k: v for k, v in head.items() if k != "type"},
                  {**head, "status": "failed"}, {**head, "status": "failed", "error": {"code": 41.5}},
                  {**head, "status": "failed", "error": {"code": 99}}):
        with pytest.raises(AssertionError):
            assert_valid("ping", {"subsonic-response": wrong})
    with pytest.raises(AssertionError):  # a user without its roles
        assert_valid("getUser", {"subsonic-response": {**head, "user": {"username": "x"}}})
    with pytest.raises(AssertionError):  # folders as a number, not an array of them
        assert_valid("getMusicFolders", {"subsonic-response": {
            **head, "musicFolders": {"musicFolder": [{"id": "one"}]}}})
    xml = ('<?xml version="1.0" encoding="UTF-8"?><subsonic-response xmlns="http://subsonic.org/restapi"'
           ' status="ok" version="1.16.1" type="sonora" serverVersion="1" openSubsonic="true">'
           '<openSubsonicExtensions name="formPost"><versions>1</versions></openSubsonicExtensions>'
           '</subsonic-response>')
    good = {"subsonic-response": {**head, "openSubsonicExtensions": [{"name": "formPost", "versions": [1]}]}}
    assert_xml_matches_json(xml, good)
    for wrong_json in ({"subsonic-response": {**head, "openSubsonicExtensions": [{"name": "formPost", "versions": [2]}]}},
                       {"subsonic-response": {**head, "openSubsonicExtensions": []}},
                       {"subsonic-response": {**head, "openSubsonicExtensions": {"name": "formPost", "versions": [1, 2]}}}):
        with pytest.raises(AssertionError):
            assert_xml_matches_json(xml, wrong_json)
    with pytest.raises(AssertionError):  # not in the namespace
        assert_xml_matches_json(xml.replace(' xmlns="http://subsonic.org/restapi"', ""), good)


def test_the_envelope_encodes_what_the_fast_paths_do_not_take() -> None:
    """JSON through orjson with `json` as the fallback, XML with scalars told by type: names
    with characters XML forbids, a lone surrogate, a huge integer, times, and a `Walked` list
    all come out as the slow, careful path would write them."""
    from app.web.subsonic import envelope
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)
    entries = envelope.Walked([{"id": "ar-1", "name": "Tab\there", "albumCount": 3},
                               {"id": "ar-2", "name": "Bell\x07 & <Co>", "albumCount": 0}])
    value = {"subsonic-response": {"status": "ok", "created": when, "gone": None,
                                   "index": [{"name": "A", "artist": entries}],
                                   "big": 2**70, "odd": "a\ud800b", "flag": True}}
    data = json.loads(envelope.json_bytes(value).decode("utf-8"))["subsonic-response"]
    assert data["created"] == "2024-05-06T07:08:09.123Z" and "gone" not in data
    assert data["big"] == 2**70 and data["flag"] is True and data["odd"] == "a?b"
    assert data["index"][0]["artist"][1]["name"] == "Bell\x07 & <Co>"  # JSON escapes it
    assert json.loads(envelope.json_bytes({"v": "é ✓"})) == {"v": "é ✓"}  # the fast path
    out: list[str] = []
    envelope._element("r", {"name": "Bell\x07 & <Co>", "n": 7, "t": True, "when": when,
                            "artist": entries, "plain": "Ünïcode ✓"}, out)
    xml = "".join(out)
    assert 'name="Bell &amp; &lt;Co&gt;"' in xml  # the control character dropped, the rest escaped
    assert 'n="7" t="true" when="2024-05-06T07:08:09.123Z"' in xml and 'plain="Ünïcode ✓"' in xml
    assert '<artist id="ar-1" name="Tab&#9;here" albumCount="3"/>' in xml
