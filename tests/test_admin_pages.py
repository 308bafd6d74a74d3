"""Admin pages through the real app: rights checked in the server on every page and form, user
management through the forms (no JavaScript needed), flash messages and escaping."""

from __future__ import annotations

import re

import pytest
from conftest import make_admin, make_config, register, unique
from markupsafe import escape
from test_pages import XSS_NAMES, csrf_of, form_token, login_as, post_form
from yarl import URL

from app.main import create_app
from app.services.users import NewAccount
from app.web import keys

ADMIN_GETS = ["/admin", "/admin/users", "/admin/users?q=a&page=2", "/admin/users/new",
              "/admin/users/{id}/delete"]
ADMIN_POSTS = [
    ("/admin/users/{id}/role", {"role": "admin"}),
    ("/admin/users/{id}/disabled", {"disabled": "1"}),
    ("/admin/users/{id}/delete", {}),
    ("/admin/users/new", {"email": "x@example.com", "username": "made_by_member",
                          "password": "long enough 1", "role": "admin"}),
]


async def user_row(client, user_id):
    return await client.app[keys.USERS].repo.by_id(user_id)


async def test_member_gets_403_on_every_admin_page(client, member):
    victim = await register(client)
    await login_as(client, member)
    for path in ADMIN_GETS:
        resp = await client.get(path.format(id=victim.id), allow_redirects=False)
        assert resp.status == 403, path
        assert "go in there" in await resp.text()
    for path, data in ADMIN_POSTS:
        resp = await post_form(client, path.format(id=victim.id), data)
        assert resp.status == 403, path
    row = await user_row(client, victim.id)
    assert row["role"] == "member" and not row["disabled"]
    assert await client.app[keys.USERS].repo.find_existing("x@example.com", "made_by_member") is None


async def test_member_cannot_promote_self(client, member):
    await login_as(client, member)
    resp = await post_form(client, f"/admin/users/{member.id}/role", {"role": "admin"})
    assert resp.status == 403
    assert (await user_row(client, member.id))["role"] == "member"
    # And the admin pages are still closed to them.
    assert (await client.get("/admin", allow_redirects=False)).status == 403


async def test_admin_nav_only_for_admins(client, member, admin):
    await login_as(client, member)
    assert "/admin/users" not in await (await client.get("/")).text()
    client.session.cookie_jar.clear()
    await login_as(client, admin)
    assert "/admin/users" in await (await client.get("/")).text()


async def test_dashboard_counts(client, admin):
    await login_as(client, admin)
    resp = await client.get("/admin")
    text = await resp.text()
    assert resp.status == 200
    total = await client.app[keys.USERS].count()
    assert f'<span class="stat-value">{total}</span>' in text
    catalog = await client.app[keys.CATALOG].counts()
    assert f'<span class="stat-value">{catalog["songs"]}</span>' in text
    assert "Storage used" in text and 'href="/admin/songs"' in text


async def test_search_and_paging(client, admin):
    tag = unique("pg")
    for i in range(22):
        await register(client, username=f"{tag}x{i:02d}", display_name=f"Pager {i}")
    await login_as(client, admin)
    first = await (await client.get("/admin/users", params={"q": tag})).text()
    assert "22 accounts matching your search" in first
    assert first.count('class="user-cell-name"') == 20
    assert "Page 1 of 2" in first
    next_url = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_url
    second = await (await client.get(next_url.group(1).replace("&amp;", "&"))).text()
    assert second.count('class="user-cell-name"') == 2 and "Page 2 of 2" in second
    none = await (await client.get("/admin/users", params={"q": "%_no_match_" + tag})).text()
    assert "No users match" in none


async def test_change_role_disable_enable(client, admin, member):
    await login_as(client, admin)
    back = f"/admin/users?q={member.username}"
    resp = await post_form(client, f"/admin/users/{member.id}/role", {"role": "admin", "back": back},
                           source_page="/admin/users")
    assert resp.status == 302 and resp.headers["Location"] == back
    assert (await user_row(client, member.id))["role"] == "admin"
    page = await (await client.get(back)).text()
    assert f"{member.username} is now an admin." in page

    resp = await post_form(client, f"/admin/users/{member.id}/disabled", {"disabled": "1"},
                           source_page="/admin/users")
    assert resp.status == 302 and resp.headers["Location"] == "/admin/users"
    assert (await user_row(client, member.id))["disabled"]
    assert (await client.get("/api/user/me", headers=member.headers)).status == 401
    assert "Disabled" in await (await client.get(back)).text()

    await post_form(client, f"/admin/users/{member.id}/disabled", {"disabled": "0"},
                    source_page="/admin/users")
    assert not (await user_row(client, member.id))["disabled"]


async def test_back_cannot_leave_the_users_list(client, admin, member):
    await login_as(client, admin)
    resp = await post_form(client, f"/admin/users/{member.id}/role",
                           {"role": "member", "back": "//evil.example/admin/users"},
                           source_page="/admin/users")
    assert resp.headers["Location"] == "/admin/users"


async def test_cannot_remove_own_admin_role_shows_flash(client, admin):
    await login_as(client, admin)
    resp = await post_form(client, f"/admin/users/{admin.id}/role", {"role": "member"},
                           source_page="/admin/users")
    assert resp.status == 302
    page = await (await client.get(resp.headers["Location"])).text()
    assert "You cannot remove your own admin role" in page and "flash-error" in page
    assert (await user_row(client, admin.id))["role"] == "admin"
    resp = await post_form(client, f"/admin/users/{admin.id}/role", {"role": "superuser"},
                           source_page="/admin/users")
    assert "Role must be member or admin." in await (await client.get(resp.headers["Location"])).text()


async def test_delete_with_confirmation_page(client, admin):
    victim = await register(client, display_name="Soon Gone")
    await login_as(client, admin)
    confirm = await client.get(f"/admin/users/{victim.id}/delete",
                               params={"back": f"/admin/users?q={victim.username}"})
    text = await confirm.text()
    assert confirm.status == 200
    assert "Delete Soon Gone?" in text and "This cannot be undone" in text
    assert f'value="/admin/users?q={victim.username}"' in text
    assert await user_row(client, victim.id) is not None  # GET changes nothing
    resp = await client.post(f"/admin/users/{victim.id}/delete",
                             data={"csrf_token": csrf_of(text), "back": "/admin/users"},
                             allow_redirects=False)
    assert resp.status == 302
    assert await user_row(client, victim.id) is None
    assert f"{victim.username} has been deleted." in await (await client.get("/admin/users")).text()
    gone = await client.get(f"/admin/users/{victim.id}/delete")
    assert gone.status == 404


async def test_cannot_delete_self(client, admin):
    await login_as(client, admin)
    page = await (await client.get(f"/admin/users/{admin.id}/delete")).text()
    assert "You cannot delete your own account here." in page
    resp = await post_form(client, f"/admin/users/{admin.id}/delete", {}, source_page="/admin/users")
    assert resp.status == 302
    assert await user_row(client, admin.id) is not None


async def test_create_user(client, admin):
    await login_as(client, admin)
    name = unique()
    token = await form_token(client, "/admin/users/new")
    resp = await client.post("/admin/users/new", data={
        "csrf_token": token, "email": f"{name}@example.com", "username": name,
        "display_name": "Made Here", "password": "long enough 1", "role": "admin",
    }, allow_redirects=False)
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert location.path == "/admin/users" and location.query["q"] == name
    row = await client.app[keys.USERS].by_username(name)
    assert row["role"] == "admin" and row["display_name"] == "Made Here"
    page = await (await client.get(str(location))).text()
    assert f"Account {name} created." in page


async def test_create_user_errors(client, admin, member):
    await login_as(client, admin)
    token = await form_token(client, "/admin/users/new")
    resp = await client.post("/admin/users/new", data={
        "csrf_token": token, "email": "nope", "username": "x", "password": "short"})
    text = await resp.text()
    assert resp.status == 422
    assert "Email must be an email address" in text and "Initial password must be 8 to 128" in text
    resp = await client.post("/admin/users/new", data={
        "csrf_token": token, "email": f"{unique()}@example.com", "username": member.username,
        "password": "long enough 1"})
    assert resp.status == 409 and "Username is already taken" in await resp.text()


async def test_admin_creates_accounts_when_registration_is_closed(aiohttp_client, database_url,
                                                                   tmp_path):
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path,
                                                         open_registration=False)))
    boss = await client.app[keys.USERS].create(
        NewAccount(f"{unique()}@example.com", unique(), "long enough 1", "Boss"), role="admin")
    token = await form_token(client, "/login")
    await client.post("/login", data={"csrf_token": token, "login": boss["username"],
                                      "password": "long enough 1"}, allow_redirects=False)
    name = unique()
    resp = await post_form(client, "/admin/users/new", {
        "email": f"{name}@example.com", "username": name, "password": "long enough 1"},
        source_page="/admin/users/new")
    assert resp.status == 302
    assert (await client.app[keys.USERS].by_username(name))["role"] == "member"


@pytest.mark.parametrize("evil", XSS_NAMES)
async def test_user_list_escapes_names(client, admin, evil):
    victim = await register(client, display_name=evil)
    await login_as(client, admin)
    for path in (f"/admin/users?q={victim.username}", f"/admin/users/{victim.id}/delete"):
        text = await (await client.get(path)).text()
        assert evil not in text and str(escape(evil)) in text, path


async def test_search_query_is_escaped(client, admin):
    await login_as(client, admin)
    text = await (await client.get("/admin/users", params={"q": '"><script>x()</script>'})).text()
    assert "<script>x()" not in text and "&lt;script&gt;x()" in text


async def test_admin_post_without_csrf_changes_nothing(client, admin, member):
    await login_as(client, admin)
    resp = await client.post(f"/admin/users/{member.id}/role", data={"role": "admin"},
                             allow_redirects=False)
    assert resp.status == 403
    assert (await user_row(client, member.id))["role"] == "member"


async def test_promoted_through_sql_helper_is_admin(client):
    acct = await make_admin(client, await register(client))
    await login_as(client, acct)
    assert (await client.get("/admin/users")).status == 200
