"""/api/user: one's own profile, and the admin's user management (checked in the server)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import RUN_ID, Account, register, unique
from test_auth import USER_FIELDS, expect_error, login, me

from app.web import keys


def admin_calls(target: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", "/api/user", None),
        ("PUT", f"/api/user/{target}/role", {"role": "admin"}),
        ("PUT", f"/api/user/{target}/disabled", {"disabled": True}),
        ("DELETE", f"/api/user/{target}", None),
    ]


async def state_of(client: TestClient, user_id: int) -> dict[str, Any] | None:
    return await client.app[keys.DB].fetchone(
        "SELECT username, display_name, role, disabled, token_version FROM users WHERE id = %s",
        (user_id,))


async def test_profile_read_and_update(client: TestClient, member: Account) -> None:
    resp = await client.get("/api/user/me", headers=member.headers)
    body = await resp.json()
    assert USER_FIELDS | {"email"} <= set(body) and body["id"] == member.id
    resp = await client.put("/api/user/me", headers=member.headers,
                            json={"display_name": "  New Name ", "bio": "hi", "unknown": 1})
    assert resp.status == 200
    body = await resp.json()
    assert body["display_name"] == "New Name" and body["bio"] == "hi"
    assert "tokens" not in body  # no password change, no new tokens


async def test_profile_ignores_fields_a_client_may_not_set(
    client: TestClient, member: Account
) -> None:
    before = await state_of(client, member.id)
    resp = await client.put("/api/user/me", headers=member.headers, json={
        "role": "admin", "id": 1, "owner_id": 1, "disabled": True, "token_version": 7,
        "display_name": "Still Member"})
    assert resp.status == 200
    body = await resp.json()
    assert body["role"] == "member" and body["id"] == member.id and body["disabled"] is False
    after = await state_of(client, member.id)
    assert after == {**before, "display_name": "Still Member"}
    await expect_error(await client.get("/api/user", headers=member.headers), 403)


@pytest.mark.parametrize(("body", "field"), [
    ({"display_name": ""}, "display_name"),
    ({"display_name": 5}, "display_name"),
    ({"display_name": "x" * 65}, "display_name"),
    ({"bio": ["list"]}, "bio"),
    ({"username": "no spaces allowed"}, "username"),
    ({"email": "nope"}, "email"),
])
async def test_profile_refuses_bad_fields(
    client: TestClient, member: Account, body: dict[str, Any], field: str
) -> None:
    before = await state_of(client, member.id)
    error = await expect_error(await client.put("/api/user/me", headers=member.headers, json=body),
                               422, "invalid_input")
    assert field in error["details"]["fields"]
    assert await state_of(client, member.id) == before


async def test_profile_username_taken_in_any_case_is_409(
    client: TestClient, member: Account
) -> None:
    other = await register(client)
    before = await state_of(client, member.id)
    for field, value in (("username", other.username.upper()),
                         ("email", other.user["email"].upper())):
        body = {field: value, "current_password": member.password}
        resp = await client.put("/api/user/me", headers=member.headers, json=body)
        error = await expect_error(resp, 409, "conflict")
        assert error["details"]["field"] == field
    assert await state_of(client, member.id) == before
    # Changing only the letter case of one's own name is not a conflict.
    resp = await client.put("/api/user/me", headers=member.headers,
                            json={"username": member.username.upper()})
    assert resp.status == 200 and (await resp.json())["username"] == member.username.upper()


async def test_members_get_403_on_every_admin_endpoint(client: TestClient, member: Account) -> None:
    victim = await register(client)
    for target in (victim.id, member.id):
        for method, path, body in admin_calls(target):
            resp = await client.request(method, path, json=body, headers=member.headers)
            await expect_error(resp, 403, "forbidden")
    assert await state_of(client, victim.id) == {
        "username": victim.username, "display_name": victim.username, "role": "member",
        "disabled": 0, "token_version": 0}
    assert (await state_of(client, member.id))["role"] == "member"  # type: ignore[index]
    assert await me(client, victim.access) == 200


async def test_anonymous_gets_401_on_every_admin_endpoint(client: TestClient, member: Account) -> None:
    for method, path, body in admin_calls(member.id):
        await expect_error(await client.request(method, path, json=body), 401, "unauthenticated")
    assert await me(client, member.access) == 200


async def test_admin_list_search_and_paging(client: TestClient, admin: Account) -> None:
    tag = f"zq{RUN_ID}"
    made = [await register(client, username=f"{tag}{i}", email=f"{tag}{i}@example.com",
                           display_name=f"Person {i}") for i in range(5)]
    resp = await client.get("/api/user", headers=admin.headers, params={"q": tag.upper()})
    assert resp.status == 200
    body = await resp.json()
    assert set(body) >= {"items", "total", "limit", "offset"}
    assert body["total"] == 5 and body["limit"] == 20 and body["offset"] == 0
    assert [u["id"] for u in body["items"]] == [a.id for a in made]
    assert all(USER_FIELDS | {"email"} <= set(u) for u in body["items"])

    page = await (await client.get("/api/user", headers=admin.headers,
                                   params={"q": tag, "limit": 2, "offset": 2})).json()
    assert [u["id"] for u in page["items"]] == [made[2].id, made[3].id]
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 2
    page3 = await (await client.get("/api/user", headers=admin.headers,
                                    params={"q": tag, "limit": 2, "page": 3})).json()
    assert [u["id"] for u in page3["items"]] == [made[4].id] and page3["offset"] == 4
    empty = await (await client.get("/api/user", headers=admin.headers,
                                    params={"q": tag, "offset": 50})).json()
    assert empty["items"] == [] and empty["total"] == 5
    whole = await (await client.get("/api/user", headers=admin.headers,
                                    params={"limit": 100, "sort": "evil", "role": "admin"})).json()
    assert whole["limit"] == 100 and whole["total"] >= 6  # unknown params are not filters


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "101"}, {"offset": "-1"},
                                    {"limit": "abc"}, {"page": "0"}, {"page": "x"},
                                    {"limit": "1.5"}, {"offset": "99999999999999999999999"}])
async def test_admin_list_refuses_bad_paging(
    client: TestClient, admin: Account, params: dict[str, str]
) -> None:
    error = await expect_error(await client.get("/api/user", headers=admin.headers, params=params),
                               422, "invalid_input")
    assert set(error["details"]["fields"]) <= {"limit", "offset", "page"}
    assert error["details"]["fields"]


@pytest.mark.parametrize("q", ["%", "_", "\\", "' OR 1=1 --", "\"; DROP TABLE users; --",
                               "%' UNION SELECT password_hash FROM users #"])
async def test_admin_search_with_sql_metacharacters(
    client: TestClient, admin: Account, q: str
) -> None:
    db = client.app[keys.DB]
    count = await db.fetchval("SELECT COUNT(*) FROM users")
    literal = await db.fetchval(
        "SELECT COUNT(*) FROM users WHERE INSTR(username_canon, %s) OR INSTR(email_canon, %s)"
        " OR INSTR(LOWER(display_name), %s)", (q.lower(),) * 3)
    resp = await client.get("/api/user", headers=admin.headers, params={"q": q, "limit": 100})
    assert resp.status == 200
    body = await resp.json()
    assert body["total"] == literal < count  # matched literally, never as a pattern
    for user in body["items"]:
        assert any(q.lower() in user[f].lower() for f in ("username", "email", "display_name"))
    assert await db.fetchval("SELECT COUNT(*) FROM users") == count


async def test_admin_cannot_demote_disable_or_delete_themselves(
    client: TestClient, admin: Account
) -> None:
    for method, path, body in (("PUT", f"/api/user/{admin.id}/role", {"role": "member"}),
                               ("PUT", f"/api/user/{admin.id}/disabled", {"disabled": True}),
                               ("DELETE", f"/api/user/{admin.id}", None)):
        await expect_error(await client.request(method, path, json=body, headers=admin.headers),
                           403, "forbidden")
    assert await state_of(client, admin.id) == {
        "username": admin.username, "display_name": admin.username, "role": "admin",
        "disabled": 0, "token_version": 0}
    assert (await client.get("/api/user", headers=admin.headers)).status == 200
    # Keeping one's own admin role (a no-op) is allowed.
    resp = await client.put(f"/api/user/{admin.id}/role", headers=admin.headers, json={"role": "admin"})
    assert resp.status == 200


async def test_admin_deletes_a_user(client: TestClient, admin: Account, member: Account) -> None:
    assert await me(client, member.access) == 200
    resp = await client.delete(f"/api/user/{member.id}", headers=admin.headers)
    assert resp.status == 204
    assert await state_of(client, member.id) is None
    assert await me(client, member.access) == 401
    await expect_error(await client.post("/api/auth/refresh",
                                         json={"refresh_token": member.refresh}), 401)
    await expect_error(await login(client, member.password, username=member.username), 401)
    await expect_error(await client.delete(f"/api/user/{member.id}", headers=admin.headers),
                       404, "not_found")


@pytest.mark.parametrize(("path", "body", "field"), [
    ("role", {"role": "owner"}, "role"),
    ("role", {"role": ["admin"]}, "role"),
    ("role", {}, "role"),
    ("disabled", {"disabled": "yes"}, "disabled"),
    ("disabled", {"disabled": 1}, "disabled"),
    ("disabled", {}, "disabled"),
])
async def test_admin_changes_refuse_bad_values(
    client: TestClient, admin: Account, member: Account, path: str, body: dict, field: str
) -> None:
    before = await state_of(client, member.id)
    resp = await client.put(f"/api/user/{member.id}/{path}", headers=admin.headers, json=body)
    error = await expect_error(resp, 422, "invalid_input")
    assert field in error["details"]["fields"]
    assert await state_of(client, member.id) == before


async def test_admin_changes_on_unknown_users_are_404(client: TestClient, admin: Account) -> None:
    missing = 2**62
    for method, path, body in admin_calls(missing)[1:]:
        await expect_error(await client.request(method, path, json=body, headers=admin.headers),
                           404, "not_found")


async def test_user_names_are_unique(client: TestClient) -> None:
    name = unique()
    await register(client, username=name)
    resp = await client.post("/api/auth/register", json={
        "email": f"other{name}@example.com", "username": name.upper(), "password": "long enough"})
    await expect_error(resp, 409, "conflict")
