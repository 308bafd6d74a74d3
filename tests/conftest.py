"""Shared fixtures: a database of the run's own on the real MariaDB, the real Redis and RabbitMQ,
and the real app factory."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import streamcore
from app.config import Config, load_config
from app.main import create_app
from bench.common import admin_sql

MYSQL_URL = os.environ.get("SONORA_TEST_MYSQL", "mysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("SONORA_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("SONORA_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
RUN_ID = uuid.uuid4().hex[:8]
_names = itertools.count(1)


def unique(prefix: str = "u") -> str:
    """A name no other test of this run uses."""
    return f"{prefix}{RUN_ID}{next(_names)}"


async def _admin_sql(statement: str) -> None:
    await admin_sql(statement, MYSQL_URL)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of this run's own, dropped at the end."""
    name = f"sonora_test_{RUN_ID}"
    yield f"{MYSQL_URL}/{name}"
    asyncio.run(_admin_sql(f"DROP DATABASE IF EXISTS `{name}`"))


NAMESPACES: list[str] = []
CONSUMER_NAMES = ("audit", "play_counts", "search_index")


@pytest.fixture(scope="session", autouse=True)
def _cleanup_broker() -> Iterator[None]:
    """The broker is shared and outlives the run: delete the queues and exchanges of every
    namespace this run's apps used."""
    yield
    from backbone_support import delete_rabbit

    async def clean() -> None:
        for ns in NAMESPACES:
            await delete_rabbit(ns, [f"{ns}.{name}" for name in CONSUMER_NAMES])

    asyncio.run(clean())


def make_config(database_url: str, tmp_path: Any, **overrides: Any) -> Config:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "amqp_url": AMQP_URL,
        "namespace": f"test_{RUN_ID}_{secrets.token_hex(3)}",
        "secret_key": secrets.token_urlsafe(48),
        "bcrypt_rounds": 4,
        "data_dir": str(tmp_path),
        "register_max_per_address": 100_000,
        "login_max_failures_address": 100_000,
    }
    values.update(overrides)
    NAMESPACES.append(values["namespace"])
    return load_config(environ={}, env_file=None, **values)


@pytest.fixture
def config(database_url: str, tmp_path: Any) -> Config:
    return make_config(database_url, tmp_path)


@pytest.fixture
async def client(aiohttp_client: Any, config: Config) -> AsyncIterator[TestClient]:
    yield await aiohttp_client(create_app(config))


class Account:
    """A registered user and their tokens."""

    def __init__(self, data: dict[str, Any], password: str) -> None:
        self.data = data
        self.password = password
        self.user = data["user"]
        self.id = data["user"]["id"]
        self.username = data["user"]["username"]
        self.access = data["access_token"]
        self.refresh = data["refresh_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def register(client: TestClient, **fields: Any) -> Account:
    name = unique()
    body = {"email": f"{name}@example.com", "username": name, "password": "correct horse 1"}
    body.update(fields)
    resp = await client.post("/api/auth/register", json=body)
    assert resp.status == 201, await resp.text()
    return Account(await resp.json(), body["password"])


async def make_admin(client: TestClient, account: Account) -> Account:
    """Promote through SQL (the first admin comes from the command line, not the API)."""
    from app.web import keys

    db = client.app[keys.DB]
    await db.execute("UPDATE users SET role = 'admin' WHERE id = %s", (account.id,))
    await client.app[keys.AUTH].authstate.forget_user(account.id)
    return account


@pytest.fixture
async def member(client: TestClient) -> Account:
    return await register(client)


@pytest.fixture
async def admin(client: TestClient) -> Account:
    return await make_admin(client, await register(client))


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tmp_path_factory.mktemp("audio")


_tones = itertools.count(1)


def make_audio(directory: Any, fmt: str = "mp3", seconds: float = 2.0, **tags: Any) -> Any:
    """A real audio file made by ffmpeg, with a tone no other file of the run has (so each is new
    content for the catalogue's duplicate check)."""
    from pathlib import Path

    from app.media import audiogen

    n = next(_tones)
    ext = {"ogg": ".ogg", "opus": ".opus", "m4a": ".m4a", "alac": ".m4a"}.get(fmt, f".{fmt}")
    return audiogen.generate(Path(directory) / f"t{RUN_ID}-{n}{ext}", fmt, seconds=seconds,
                             frequency=200.0 + n * 7.3, **tags)


# streamcore: every case runs on each available implementation.
IMPLEMENTATIONS: list[Any] = [streamcore._pystream]
if streamcore._cstream is not None:
    IMPLEMENTATIONS.append(streamcore._cstream)


@pytest.fixture(params=IMPLEMENTATIONS, ids=[m.__name__.rsplit(".", 1)[-1] for m in IMPLEMENTATIONS])
def impl(request: pytest.FixtureRequest) -> Any:
    """One streamcore implementation module (_pystream always, _cstream when built)."""
    return request.param


@pytest.fixture(scope="session")
def audio_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, bytes]:
    """A few MB of random bytes standing in for an uploaded song."""
    data = os.urandom(3 * 1024 * 1024 + 12345)
    path = tmp_path_factory.mktemp("media") / "song.mp3"
    path.write_bytes(data)
    return path, data
