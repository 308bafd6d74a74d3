"""Listener pages through the real app: cookie sign-in with the pre-login CSRF token, the layout,
profile settings, escaping, redirects and security headers."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, make_config, register, unique
from markupsafe import escape
from yarl import URL

from app.main import create_app
from app.web import keys
from app.web.flash import FLASH_COOKIE
from app.web.render import safe_next
from app.web.session import ACCESS_COOKIE

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
XSS_NAMES = ["<script>alert(1)</script>", '"><svg onload=alert(1)>']


def csrf_of(page: str) -> str:
    match = CSRF_FIELD.search(page)
    assert match, "no csrf_token field in the page"
    return html.unescape(match.group(1))


async def form_token(client: TestClient, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return csrf_of(await resp.text())


async def page_login(client: TestClient, login: str, password: str, next_: str | None = None):
    token = await form_token(client, "/login")
    data = {"csrf_token": token, "login": login, "password": password}
    if next_ is not None:
        data["next"] = next_
    return await client.post("/login", data=data, allow_redirects=False)


async def login_as(client: TestClient, account: Account) -> None:
    resp = await page_login(client, account.username, account.password)
    assert resp.status == 302, await resp.text()


async def post_form(client: TestClient, path: str, data: dict[str, Any], source_page: str = "/me"):
    """POST a page form with the session's CSRF token, taken from a page as a browser would."""
    token = await form_token(client, source_page)
    return await client.post(path, data={"csrf_token": token, **data}, allow_redirects=False)


async def display_name(client: TestClient, user_id: int) -> str:
    return str((await client.app[keys.USERS].get(user_id))["display_name"])


# ---------------------------------------------------------------- redirects and sign-in


@pytest.mark.parametrize("path", ["/", "/me", "/admin", "/admin/users", "/user/someone"])
async def test_anonymous_pages_redirect_to_login(client, path):
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert location.path == "/login" and location.query["next"] == path


async def test_login_form_success_shows_display_name(client):
    acct = await register(client, display_name="Ada Lovelace")
    resp = await page_login(client, acct.username, acct.password)
    assert resp.status == 302 and resp.headers["Location"] == "/"
    assert ACCESS_COOKIE in resp.cookies
    home = await client.get("/")
    text = await home.text()
    assert home.status == 200
    assert "Ada Lovelace" in text and "Recently played" in text
    assert '<meta name="csrf-token"' in text and 'id="player"' in text


async def test_login_by_email_keeps_safe_next(client):
    acct = await register(client)
    resp = await page_login(client, acct.user["username"] + "@example.com", acct.password, "/me?tab=1")
    assert resp.status == 302 and resp.headers["Location"] == "/me?tab=1"


async def test_wrong_password_rerenders_with_401(client, member):
    resp = await page_login(client, member.username, "not the password")
    text = await resp.text()
    assert resp.status == 401
    assert "Wrong username, email or password" in text
    assert f'value="{member.username}"' in text  # the login is kept, the password is not
    unknown = await page_login(client, "nobody-" + unique(), "whatever1")
    assert unknown.status == 401 and "Wrong username, email or password" in await unknown.text()
    assert ACCESS_COOKIE not in resp.cookies


async def test_login_rate_limit_shows_retry_time(aiohttp_client, database_url, tmp_path):
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path,
                                                         login_max_failures_account=2)))
    acct = await register(client)
    statuses = [(await page_login(client, acct.username, "wrong password")).status for _ in range(3)]
    assert statuses[:2] == [401, 401] and statuses[2] == 429
    resp = await page_login(client, acct.username, acct.password)
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert "Too many attempts. Try again in" in await resp.text()


@pytest.mark.parametrize("target", [
    "//evil.example", "https://evil.example", "/\\evil.example", "///evil.example",
    "/\t/evil.example", "javascript:alert(1)", "evil.example",
])
async def test_open_redirects_land_home(client, member, target):
    resp = await page_login(client, member.username, member.password, target)
    assert resp.status == 302 and resp.headers["Location"] == "/"


async def test_login_page_next_is_sanitised_in_form(client):
    resp = await client.get("/login", params={"next": "//evil.example"})
    assert 'name="next" value="/"' in await resp.text()


def test_safe_next():
    assert safe_next("/album/3?x=1#t") == "/album/3?x=1#t"
    for bad in ("//x", "https://x", "/\\x", "x", "", None, 5, "/a\nb", "http:/x"):
        assert safe_next(bad) == "/"


async def test_login_without_csrf_is_refused(client, member):
    await client.get("/login")
    resp = await client.post("/login", data={"login": member.username, "password": member.password},
                             allow_redirects=False)
    assert resp.status == 403
    assert ACCESS_COOKIE not in resp.cookies
    assert "text/html" in resp.headers["Content-Type"]


async def test_signed_in_visitor_skips_login_page(client, member):
    await login_as(client, member)
    resp = await client.get("/login?next=/me", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/me"


# ---------------------------------------------------------------- registration and logout


async def test_register_form_creates_account_and_signs_in(client):
    name = unique()
    token = await form_token(client, "/register")
    resp = await client.post("/register", data={
        "csrf_token": token, "email": f"{name}@example.com", "username": name,
        "display_name": "Grace Hopper", "password": "long enough 1", "confirm_password": "long enough 1",
    }, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/"
    home = await (await client.get("/")).text()
    assert "Grace Hopper" in home and "Welcome to Sonora, Grace Hopper!" in home
    # The flash is shown once.
    assert "Welcome to Sonora" not in await (await client.get("/")).text()


async def test_register_form_errors(client, member):
    token = await form_token(client, "/register")
    base = {"csrf_token": token, "email": "x@example.com", "username": unique(),
            "password": "long enough 1"}
    resp = await client.post("/register", data={**base, "confirm_password": "different 1"})
    assert resp.status == 422
    assert "Confirm password does not match the password" in await resp.text()
    resp = await client.post("/register", data={**base, "email": "bad", "username": "a",
                                                "confirm_password": "long enough 1"})
    text = await resp.text()
    assert resp.status == 422 and "Email must be an email address" in text and 'aria-invalid="true"' in text
    resp = await client.post("/register", data={**base, "username": member.username,
                                                "confirm_password": "long enough 1"})
    assert resp.status == 409 and "Username is already taken" in await resp.text()


async def test_register_closed(aiohttp_client, database_url, tmp_path):
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path,
                                                         open_registration=False)))
    page = await client.get("/register")
    text = await page.text()
    assert page.status == 200 and "Registration is closed" in text
    name = unique()
    resp = await client.post("/register", data={
        "csrf_token": csrf_of(await (await client.get("/login")).text()),
        "email": f"{name}@example.com", "username": name, "password": "long enough 1",
        "confirm_password": "long enough 1",
    }, allow_redirects=False)
    assert resp.status == 403
    assert await client.app[keys.DB].fetchval(
        "SELECT COUNT(*) FROM users WHERE username_canon = %s", (name.lower(),)) == 0


async def test_logout_revokes_the_session(client, member):
    await login_as(client, member)
    resp = await post_form(client, "/logout", {})
    assert resp.status == 302 and resp.headers["Location"] == "/login"
    login = await client.get("/login")
    assert "You have been logged out." in await login.text()
    again = await client.get("/", allow_redirects=False)
    assert again.status == 302 and again.headers["Location"].startswith("/login")
    revoked = await client.app[keys.DB].fetchval(
        "SELECT COUNT(*) FROM sessions WHERE user_id = %s AND revoked_reason = 'logout'", (member.id,))
    assert revoked == 1
    # Only this browser's session ended: the fixture's API token still works.
    assert (await client.get("/api/user/me", headers=member.headers)).status == 200


# ---------------------------------------------------------------- profile and settings


async def test_profile_update_with_flash(client, member):
    await login_as(client, member)
    resp = await post_form(client, "/me/profile", {"display_name": "New Name", "bio": "Line 1\nLine 2"})
    assert resp.status == 302 and resp.headers["Location"] == "/me"
    assert FLASH_COOKIE in resp.cookies
    page = await (await client.get("/me")).text()
    assert "Profile saved." in page and 'value="New Name"' in page
    assert await display_name(client, member.id) == "New Name"


async def test_profile_field_errors(client, member):
    await login_as(client, member)
    resp = await post_form(client, "/me/profile", {"display_name": "", "bio": "x" * 501})
    text = await resp.text()
    assert resp.status == 422
    assert "Display name must be 1 to 64 characters" in text and "Bio must be 0 to 500" in text


async def test_post_without_csrf_changes_nothing(client, member):
    await login_as(client, member)
    before = await display_name(client, member.id)
    resp = await client.post("/me/profile", data={"display_name": "Hacked", "bio": ""},
                             allow_redirects=False)
    assert resp.status == 403
    resp = await client.post("/me/profile", data={"csrf_token": "forged", "display_name": "Hacked"},
                             allow_redirects=False)
    assert resp.status == 403
    assert await display_name(client, member.id) == before


async def test_email_change_needs_current_password(client, member):
    await login_as(client, member)
    new_email = f"{unique()}@example.org"
    resp = await post_form(client, "/me/email", {"email": new_email, "current_password": "wrong pass"})
    assert resp.status == 422 and "Current password is wrong" in await resp.text()
    resp = await post_form(client, "/me/email", {"email": new_email,
                                                 "current_password": member.password})
    assert resp.status == 302
    assert (await client.app[keys.USERS].get(member.id))["email"] == new_email


async def test_password_change_keeps_this_browser_signed_in(client, member):
    await login_as(client, member)
    resp = await post_form(client, "/me/password", {
        "current_password": member.password, "new_password": "brand new pw 9",
        "confirm_password": "brand new pw 9"})
    assert resp.status == 302 and ACCESS_COOKIE in resp.cookies
    page = await client.get("/me")
    assert page.status == 200 and "Password changed." in await page.text()
    # Every other session (the fixture's API token) has ended.
    api = await client.get("/api/user/me", headers=member.headers)
    assert api.status == 401
    client.session.cookie_jar.clear()
    assert (await page_login(client, member.username, member.password)).status == 401
    assert (await page_login(client, member.username, "brand new pw 9")).status == 302


async def test_password_confirmation_mismatch(client, member):
    await login_as(client, member)
    resp = await post_form(client, "/me/password", {
        "current_password": member.password, "new_password": "brand new pw 9",
        "confirm_password": "other"})
    assert resp.status == 422 and "does not match the new password" in await resp.text()


async def test_logout_everywhere(client, member):
    await login_as(client, member)
    resp = await post_form(client, "/me/logout-all", {})
    assert resp.status == 302 and resp.headers["Location"] == "/login"
    assert (await client.get("/api/user/me", headers=member.headers)).status == 401
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_forged_flash_cookie_is_ignored(client, member):
    await login_as(client, member)
    client.session.cookie_jar.update_cookies({FLASH_COOKIE: "W1sic3VjY2VzcyIsIkhpIl1d.bad"})
    assert "flash-success" not in await (await client.get("/")).text()


# ---------------------------------------------------------------- profiles, escaping, errors


async def test_public_profile(client, member):
    other = await register(client, display_name="Public Person")
    await login_as(client, member)
    resp = await client.get(f"/user/{other.username}")
    text = await resp.text()
    assert resp.status == 200 and "Public Person" in text and "Member since" in text
    assert "@example.com" not in text.split('class="content"')[1]  # no email of the other user
    missing = await client.get("/user/no-such-user-here")
    assert missing.status == 404 and "This track skipped" in await missing.text()


@pytest.mark.parametrize("evil", XSS_NAMES)
async def test_display_names_are_escaped(client, evil):
    acct = await register(client, display_name=evil)
    await login_as(client, acct)
    for path in ("/", f"/user/{acct.username}", "/me"):
        text = await (await client.get(path)).text()
        assert evil not in text, path
        assert str(escape(evil)) in text, path


async def test_security_headers_on_pages(client, member):
    await login_as(client, member)
    for path in ("/login", "/", "/no/such/page"):
        resp = await client.get(path)
        h = resp.headers
        assert "default-src 'self'" in h["Content-Security-Policy"], path
        assert "script-src 'self'" in h["Content-Security-Policy"]
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] and h["X-Frame-Options"] == "DENY"


async def test_pages_have_no_inline_script_or_style(client, member):
    await login_as(client, member)
    for path in ("/login", "/register", "/", "/me", f"/user/{member.username}", "/nope"):
        text = await (await client.get(path)).text()
        assert "<style" not in text and " style=" not in text, path
        assert re.search(r"<script(?![^>]*\bsrc=)", text) is None, path


async def test_unknown_path_renders_404_page(client):
    resp = await client.get("/no/such/page")
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("text/html")
    text = await resp.text()
    assert "This track skipped" in text and "/static/css/app.css" in text


async def test_static_assets_are_served(client):
    page = await (await client.get("/login")).text()
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', page):
        resp = await client.get(html.unescape(asset))
        assert resp.status == 200, asset


async def test_modules_go_by_one_plain_url_and_are_revalidated(client, member):
    """A module loaded by two URLs runs twice (two uploads per click): pages name each module by
    the URL its imports use (`./app.js`), and those answers are revalidated rather than cached."""
    await login_as(client, member)
    page = await (await client.get("/")).text()
    modules = re.findall(r'<script type="module" src="([^"]+)"', page)
    assert "/static/js/app.js" in modules and "/static/js/player.js" in modules
    assert all("?" not in m for m in modules), modules
    for path in modules:
        source = await (await client.get(path)).text()
        for imported in re.findall(r'from "(\./[^"]+)"', source):
            assert "?" not in imported and str(URL(path).join(URL(imported))) in modules, (path, imported)
    resp = await client.get("/static/js/app.js")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"
    etag = resp.headers["ETag"]
    again = await client.get("/static/js/app.js", headers={"If-None-Match": etag})
    assert again.status == 304
