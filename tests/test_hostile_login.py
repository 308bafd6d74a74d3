"""Login rate limits (SPEC 5.4): someone else's failures never lock an account's owner out.

Addresses are varied with X-Forwarded-For behind a trusted proxy (the test client is 127.0.0.1)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from conftest import Account, make_config, register

from app.main import create_app

DEFAULTS = {"login_max_failures_address": 100, "trusted_proxies": ("127.0.0.1",)}


async def login(client: TestClient, acct: Account, password: str, address: str) -> Any:
    return await client.post("/api/auth/login",
                             json={"username": acct.username, "password": password},
                             headers={"X-Forwarded-For": address})


async def expect(resp: Any, status: int) -> None:
    assert resp.status == status, (resp.status, await resp.text())
    if status >= 400:
        body = await resp.json()
        assert body["error"]["code"] == {401: "unauthenticated", 429: "rate_limited"}[status]
    if status == 429:
        assert 1 <= int(resp.headers["Retry-After"]) <= 901


async def app_client(aiohttp_client: Any, database_url: str, tmp_path: Any,
                     **overrides: Any) -> TestClient:
    config = make_config(database_url, tmp_path, **{**DEFAULTS, **overrides})
    assert config.login_max_failures_account_address == overrides.get(
        "login_max_failures_account_address", 10)
    return await aiohttp_client(create_app(config))


async def test_failures_from_one_address_do_not_lock_the_owner_out(
    aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    client = await app_client(aiohttp_client, database_url, tmp_path)
    victim = await register(client)
    for _ in range(10):
        await expect(await login(client, victim, "wrong password", "203.0.113.7"), 401)
    for _ in range(3):
        await expect(await login(client, victim, "wrong password", "203.0.113.7"), 429)
    # Even the right password waits at the attacker's address…
    await expect(await login(client, victim, victim.password, "203.0.113.7"), 429)
    # …but the owner, elsewhere, gets in; and again after that.
    await expect(await login(client, victim, victim.password, "198.51.100.20"), 200)
    await expect(await login(client, victim, victim.password, "198.51.100.20"), 200)
    await expect(await login(client, victim, "wrong password", "203.0.113.7"), 429)


async def test_concurrent_failures_past_the_budget_are_429(
    aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    """More attempts in flight at once than the budget has room for."""
    client = await app_client(aiohttp_client, database_url, tmp_path)
    victim = await register(client)
    responses = await asyncio.gather(*(
        login(client, victim, "wrong password", "203.0.113.8") for _ in range(40)))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(401) <= 10 and statuses.count(429) >= 30, statuses
    assert set(statuses) <= {401, 429}
    await expect(await login(client, victim, victim.password, "198.51.100.21"), 200)


async def test_the_account_budget_from_all_addresses(
    aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    client = await app_client(aiohttp_client, database_url, tmp_path,
                              login_max_failures_account=6)
    victim, other = await register(client), await register(client)
    for n in range(6):  # six addresses, one failure each: no address reaches its own budget
        await expect(await login(client, victim, "wrong password", f"192.0.2.{n + 1}"), 401)
    await expect(await login(client, victim, victim.password, "198.51.100.30"), 429)
    await expect(await login(client, other, other.password, "192.0.2.1"), 200)


async def test_the_address_budget_across_accounts(
    aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    client = await app_client(aiohttp_client, database_url, tmp_path,
                              login_max_failures_address=4)
    accounts = [await register(client) for _ in range(5)]
    for acct in accounts[:4]:
        await expect(await login(client, acct, "wrong password", "203.0.113.9"), 401)
    await expect(await login(client, accounts[4], accounts[4].password, "203.0.113.9"), 429)
    await expect(await login(client, accounts[4], accounts[4].password, "203.0.113.10"), 200)
    await expect(await login(client, accounts[0], accounts[0].password, "203.0.113.10"), 200)
