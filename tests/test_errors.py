"""Every error under /api has one shape, and bad input gets a 4xx that changes nothing."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, unique
from test_auth import expect_error

from app.web import keys

MiB = 1024 * 1024


async def users_count(client: TestClient) -> int:
    return int(await client.app[keys.DB].fetchval("SELECT COUNT(*) FROM users"))


async def test_unknown_route_is_404(client: TestClient, member: Account) -> None:
    for path in ("/api/nope", "/api/user/me/nope", "/api", "/api/"):
        await expect_error(await client.get(path), 404, "not_found")
        await expect_error(await client.get(path, headers=member.headers), 404, "not_found")


async def test_wrong_method_is_405_with_allow(client: TestClient, member: Account) -> None:
    resp = await client.delete("/api/auth/login")
    await expect_error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]
    resp = await client.patch("/api/user/me", headers=member.headers, json={})
    await expect_error(resp, 405)
    assert {"GET", "PUT"} <= set(resp.headers["Allow"].replace(" ", "").split(","))


@pytest.mark.parametrize("raw", [b"{", b"{'a': 1}", b"nope", b'{"a": }', b"\xff\xfe", b"[1,]",
                                 b'{"a": NaN', b"\x00"])
async def test_invalid_json_is_400(client: TestClient, raw: bytes) -> None:
    before = await users_count(client)
    resp = await client.post("/api/auth/register", data=raw,
                             headers={"Content-Type": "application/json"})
    await expect_error(resp, 400, "invalid_json")
    assert await users_count(client) == before


@pytest.mark.parametrize("raw", [b"[]", b'["email"]', b"42", b'"string"', b"null", b"true"])
async def test_json_that_is_not_an_object_is_422(client: TestClient, raw: bytes) -> None:
    resp = await client.post("/api/auth/register", data=raw,
                             headers={"Content-Type": "application/json"})
    await expect_error(resp, 422, "invalid_input")


@pytest.mark.parametrize("depth", [33, 1000, 10_000, 100_000])
async def test_deeply_nested_json_is_400_never_500(
    client: TestClient, member: Account, depth: int
) -> None:
    for opening, closing in (("[", "]"), ('{"a":', "}")):
        raw = '{"display_name": ' + opening * depth + "1" + closing * depth + "}"
        for method, path, headers in (("POST", "/api/auth/register", {}),
                                      ("PUT", "/api/user/me", member.headers)):
            resp = await client.request(method, path, data=raw.encode(),
                                        headers={**headers, "Content-Type": "application/json"})
            await expect_error(resp, 400, "invalid_json")
    resp = await client.post("/api/auth/login", data=("[" * depth).encode())
    await expect_error(resp, 400, "invalid_json")


async def test_body_over_one_mib_is_413(client: TestClient, member: Account) -> None:
    before = await users_count(client)
    name = unique()
    padding = "x" * (MiB + 10)
    raw = f'{{"email": "{name}@example.com", "username": "{name}", "password": "long enough", ' \
          f'"pad": "{padding}"}}'
    resp = await client.post("/api/auth/register", data=io.BytesIO(raw.encode()),
                             headers={"Content-Type": "application/json"})
    await expect_error(resp, 413, "too_large")
    assert await users_count(client) == before
    resp = await client.put("/api/user/me", headers={**member.headers,
                                                      "Content-Type": "application/json"},
                            data=io.BytesIO(b'{"display_name": "big", "pad": "' + b"y" * (2 * MiB) + b'"}'))
    await expect_error(resp, 413, "too_large")
    profile = await (await client.get("/api/user/me", headers=member.headers)).json()
    assert profile["display_name"] != "big"


@pytest.mark.parametrize("raw_id", ["99999999999999999999999", "18446744073709551616",
                                    "9223372036854775808", "0", "00000000000000000000001"])
async def test_huge_or_odd_ids_are_4xx(client: TestClient, admin: Account, raw_id: str) -> None:
    for method, path, body in (("PUT", f"/api/user/{raw_id}/role", {"role": "admin"}),
                               ("PUT", f"/api/user/{raw_id}/disabled", {"disabled": True}),
                               ("DELETE", f"/api/user/{raw_id}", None)):
        resp = await client.request(method, path, json=body, headers=admin.headers)
        assert 400 <= resp.status < 500, (path, resp.status)
        await expect_error(resp, resp.status)


@pytest.mark.parametrize("path", ["/api/user/abc/role", "/api/user/-1/role", "/api/user/1.5/role",
                                  "/api/user/%31/role", "/api/user/1%2F/role",
                                  "/api/user/..%2F..%2Fetc/role", "/api/user/ 1/role"])
async def test_non_digit_ids_do_not_match(client: TestClient, admin: Account, path: str) -> None:
    resp = await client.put(path, json={"role": "admin"}, headers=admin.headers)
    if path == "/api/user/%31/role":  # percent-decoded to /api/user/1/role: a real id
        assert resp.status in (200, 403, 404)
        await resp.read()
        return
    await expect_error(resp, 404, "not_found")


async def test_unknown_query_params_and_body_fields_are_ignored(
    client: TestClient, member: Account
) -> None:
    resp = await client.get("/api/user/me", headers=member.headers,
                            params={"id": "1", "role": "admin", "'; DROP": "x"})
    body = await resp.json()
    assert resp.status == 200 and body["id"] == member.id and body["role"] == "member"
    resp = await client.post("/api/auth/login", json={
        "username": member.username, "password": member.password, "extra": {"deep": [1]}})
    assert resp.status == 200


async def test_sql_metacharacters_in_fields_change_nothing(client: TestClient) -> None:
    before = await users_count(client)
    for username in ("' OR '1'='1", "admin'--", 'x"; DROP TABLE users; --'):
        resp = await client.post("/api/auth/login", json={"username": username, "password": "' OR 1=1 --"})
        await expect_error(resp, 401)
        resp = await client.post("/api/auth/register", json={
            "email": f"{unique()}@example.com", "username": username, "password": "long enough"})
        await expect_error(resp, 422, "invalid_input")
    assert await users_count(client) == before


async def test_every_api_error_has_one_shape(client: TestClient, member: Account) -> None:
    """A battery across statuses; `expect_error` checks exactly {"error": {code, message, details?}}."""
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/api/user/me", {}, 401),
        ("GET", "/api/user", {"headers": member.headers}, 403),
        ("GET", "/api/missing", {}, 404),
        ("PUT", "/api/health", {}, 405),
        ("POST", "/api/auth/login", {"data": b"{", "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/api/auth/register", {"json": {"email": 1}}, 422),
        ("POST", "/api/auth/register", {"json": {"email": member.user["email"],
                                                 "username": unique(), "password": "long enough"}}, 409),
    ]
    for method, path, kwargs, status in cases:
        resp = await client.request(method, path, **kwargs)
        error = await expect_error(resp, status)
        assert resp.content_type == "application/json"
        assert "Traceback" not in error["message"]
        if "details" in error:
            assert isinstance(error["details"], dict)
