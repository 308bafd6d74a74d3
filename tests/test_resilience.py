"""Outages, simulated by cutting a TCP proxy between the app and a shared service (never by
stopping the service): Redis down mid-run, RabbitMQ down, MySQL unreachable at start-up."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from conftest import AMQP_URL, REDIS_URL, make_admin, make_config, register
from tcpproxy import TcpProxy
from test_auth import expect_error, login, me

from app.adapters.kv import RedisKV
from app.main import create_app

ROOT = Path(__file__).resolve().parent.parent


def _target(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@pytest.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    async with TcpProxy(*_target(REDIS_URL, 6379)) as proxy:
        yield proxy


@pytest.fixture
async def amqp_proxy() -> AsyncIterator[TcpProxy]:
    async with TcpProxy(*_target(AMQP_URL, 5672)) as proxy:
        yield proxy


@pytest.fixture
async def cut_client(
    redis_proxy: TcpProxy, aiohttp_client: Any, database_url: str, tmp_path: Any
) -> AsyncIterator[TestClient]:
    """The app with Redis reached through the proxy (closed before the proxy goes away)."""
    config = make_config(database_url, tmp_path, redis_url=redis_proxy.url("redis", path="/0"))
    client = await aiohttp_client(create_app(config))
    yield client
    redis_proxy.restore()
    await client.close()


async def health(client: TestClient) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/api/health")
    return resp.status, await resp.json()


async def back_up(client: TestClient, proxy: TcpProxy) -> None:
    """Restore the proxy and wait until the app's Redis adapter has left its cool-down."""
    proxy.restore()
    await asyncio.sleep(RedisKV.COOL_DOWN + 0.1)


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
async def test_requests_keep_working_while_redis_is_cut(
    cut_client: TestClient, redis_proxy: TcpProxy, mode: str
) -> None:
    client = cut_client
    before = await register(client)
    assert await me(client, before.access) == 200
    status, body = await health(client)
    assert status == 200 and body["dependencies"]["cache"]["status"] == "up"

    redis_proxy.cut(mode)
    acct = await register(client)
    assert await me(client, acct.access) == 200
    assert await me(client, before.access) == 200
    resp = await login(client, before.password, username=before.username)
    assert resp.status == 200
    assert await me(client, (await resp.json())["access_token"]) == 200
    await expect_error(await login(client, "wrong password", username=before.username), 401)
    refreshed = await client.post("/api/auth/refresh", json={"refresh_token": acct.refresh})
    assert refreshed.status == 200
    status, body = await health(client)
    assert status == 200
    assert body["dependencies"]["cache"]["status"] == "down"
    assert body["dependencies"]["database"]["status"] == "up"
    assert body["status"] == "degraded"

    await back_up(client, redis_proxy)
    status, body = await health(client)
    assert status == 200 and body["dependencies"]["cache"]["status"] == "up"
    assert await me(client, acct.access) == 200


async def test_logout_while_redis_is_cut_still_holds_after_restore(
    cut_client: TestClient, redis_proxy: TcpProxy
) -> None:
    client = cut_client
    acct = await register(client)
    other = await (await login(client, acct.password, username=acct.username)).json()
    assert await me(client, acct.access) == 200  # its state is now cached in Redis
    assert await me(client, other["access_token"]) == 200
    redis_proxy.cut()
    assert (await client.post("/api/auth/logout", headers=acct.headers)).status == 200
    assert await me(client, acct.access) == 401  # fails closed: MySQL answers
    await back_up(client, redis_proxy)
    assert await me(client, acct.access) == 401  # the stale cached state was dropped
    assert await me(client, acct.access) == 401
    await expect_error(await client.post("/api/auth/refresh",
                                         json={"refresh_token": acct.refresh}), 401)
    assert await me(client, other["access_token"]) == 200


async def test_demotion_and_disabling_while_redis_is_cut_hold_after_restore(
    cut_client: TestClient, redis_proxy: TcpProxy
) -> None:
    client = cut_client
    boss = await make_admin(client, await register(client))
    deputy = await make_admin(client, await register(client))
    member = await register(client)
    assert (await client.get("/api/user", headers=deputy.headers)).status == 200
    assert await me(client, member.access) == 200
    redis_proxy.cut()
    resp = await client.put(f"/api/user/{deputy.id}/role", headers=boss.headers,
                            json={"role": "member"})
    assert resp.status == 200
    resp = await client.put(f"/api/user/{member.id}/disabled", headers=boss.headers,
                            json={"disabled": True})
    assert resp.status == 200
    await expect_error(await client.get("/api/user", headers=deputy.headers), 403)
    assert await me(client, member.access) == 401
    await back_up(client, redis_proxy)
    await expect_error(await client.get("/api/user", headers=deputy.headers), 403)
    assert await me(client, member.access) == 401


async def test_revoked_while_redis_is_up_stays_revoked_while_it_is_cut(
    cut_client: TestClient, redis_proxy: TcpProxy
) -> None:
    client = cut_client
    acct = await register(client)
    assert await me(client, acct.access) == 200
    assert (await client.post("/api/auth/logout-all", headers=acct.headers)).status == 200
    assert await me(client, acct.access) == 401
    redis_proxy.cut()
    assert await me(client, acct.access) == 401
    await expect_error(await client.post("/api/auth/refresh",
                                         json={"refresh_token": acct.refresh}), 401)
    redis_proxy.cut("blackhole")
    assert await me(client, acct.access) == 401


async def test_login_limits_still_hold_while_redis_is_cut(
    redis_proxy: TcpProxy, aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    config = make_config(database_url, tmp_path, redis_url=redis_proxy.url("redis", path="/0"),
                         login_max_failures_account=2)
    client = await aiohttp_client(create_app(config))
    try:
        acct = await register(client)
        redis_proxy.cut()
        for _ in range(2):
            await expect_error(await login(client, "wrong password", username=acct.username), 401)
        resp = await login(client, acct.password, username=acct.username)
        await expect_error(resp, 429, "rate_limited")
        assert int(resp.headers["Retry-After"]) >= 1
    finally:
        redis_proxy.restore()
        await client.close()


async def test_app_starts_with_the_broker_cut_and_reports_it(
    amqp_proxy: TcpProxy, aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    amqp_proxy.cut()
    user = urlsplit(AMQP_URL)
    url = amqp_proxy.url("amqp", f"{user.username or 'guest'}:{user.password or 'guest'}", "/")
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path, amqp_url=url)))
    try:
        status, body = await health(client)
        assert status == 200
        assert body["dependencies"]["broker"] == {"status": "down", "required": False,
                                                  "backend": "rabbitmq"}
        assert body["status"] == "degraded"
        acct = await register(client)
        assert await me(client, acct.access) == 200
    finally:
        await client.close()


async def test_broker_cut_mid_run_is_reported(
    amqp_proxy: TcpProxy, aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    user = urlsplit(AMQP_URL)
    url = amqp_proxy.url("amqp", f"{user.username or 'guest'}:{user.password or 'guest'}", "/")
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path, amqp_url=url)))
    try:
        status, body = await health(client)
        assert status == 200 and body["dependencies"]["broker"]["status"] == "up"
        amqp_proxy.cut()
        for _ in range(50):
            status, body = await health(client)
            if body["dependencies"]["broker"]["status"] == "down":
                break
            await asyncio.sleep(0.1)
        assert status == 200 and body["dependencies"]["broker"]["status"] == "down"
        assert (await register(client)).id > 0
    finally:
        await client.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "0"]])
def test_start_up_with_mysql_unreachable_fails_with_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "SONORA_DATABASE_URL": f"mysql://root@127.0.0.1:{_closed_port()}/sonora",
        "SONORA_DATA_DIR": str(tmp_path / "data"),
    }
    if command[0] == "serve":
        command = ["serve", "--port", str(_closed_port())]
    done = subprocess.run(
        [sys.executable, "-m", "app", *command], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0
    assert len(lines) == 1, done.stderr
    assert "MySQL" in lines[0] and "SONORA_DATABASE_URL" in lines[0]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
