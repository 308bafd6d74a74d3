"""The connection handler (app/web/server.py, SPEC 10): slow clients are cut off without slowing
anyone else, and requests aiohttp cannot parse get the error shape under /api."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import make_config

from app.main import create_app
from app.web import keys

SLOW = {"request_head_timeout": 1.0, "request_body_grace_seconds": 1.5,
        "request_body_min_rate": 2000.0}


@pytest.fixture
async def slow_client(aiohttp_client: Any, database_url: str, tmp_path: Any) -> TestClient:
    return await aiohttp_client(create_app(make_config(database_url, tmp_path, **SLOW)))


async def closed_without_answer(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection (EOF or reset) without sending anything."""
    try:
        data = await reader.read(65536)
    except (ConnectionResetError, BrokenPipeError):
        return True
    return data == b""


async def raw(client: TestClient, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read(1 << 20)
    writer.close()
    return answer


def split(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


async def test_trickled_heads_are_closed_and_others_are_served(slow_client: TestClient) -> None:
    client = slow_client
    conns = [await asyncio.open_connection(client.server.host, client.server.port)
             for _ in range(200)]
    head = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200

    async def trickle(writer: asyncio.StreamWriter) -> None:
        try:
            for byte in head:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)
        except (ConnectionResetError, BrokenPipeError):
            return

    tricklers = [asyncio.create_task(trickle(w)) for _, w in conns]
    try:
        await asyncio.sleep(0.3)
        # A normal client meanwhile is answered, repeatedly, while 200 connections trickle.
        for _ in range(5):
            resp = await client.get("/api/health")
            assert resp.status in (200, 503)
            assert "status" in await resp.json()
        results = await asyncio.wait_for(
            asyncio.gather(*(closed_without_answer(r) for r, _ in conns)), timeout=60)
        assert all(results), results.count(False)
    finally:
        for task in tricklers:
            task.cancel()
        for _, w in conns:
            w.close()
    resp = await client.get("/api/health")
    assert resp.status in (200, 503)


async def test_a_silent_connection_is_closed(slow_client: TestClient) -> None:
    reader, writer = await asyncio.open_connection(slow_client.server.host, slow_client.server.port)
    try:
        assert await asyncio.wait_for(closed_without_answer(reader), timeout=30)
    finally:
        writer.close()


async def test_bodies_below_the_floor_are_closed_and_faster_ones_answered(
    slow_client: TestClient,
) -> None:
    client = slow_client
    head = (b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n")
    conns = [await asyncio.open_connection(client.server.host, client.server.port)
             for _ in range(60)]

    async def trickle(writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        try:
            for _ in range(1000):
                writer.write(b" ")  # 10 bytes a second, well below 2000
                await writer.drain()
                await asyncio.sleep(0.1)
        except (ConnectionResetError, BrokenPipeError):
            return

    tricklers = [asyncio.create_task(trickle(w)) for _, w in conns]
    try:
        # A client above the floor, slower than the grace period, is read to the end and answered.
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        body = b" " * 19_998 + b"{}"
        writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 1000):  # ~10,000 bytes a second for 2 s
            writer.write(body[i:i + 1000])
            await writer.drain()
            await asyncio.sleep(0.1)
        answer = await asyncio.wait_for(reader.read(1 << 16), timeout=30)
        writer.close()
        status, _, payload = split(answer)
        assert status == 401, answer[:300]
        assert json.loads(payload)["error"]["code"] == "unauthenticated"
        resp = await client.get("/api/health")
        assert resp.status in (200, 503)
        results = await asyncio.wait_for(
            asyncio.gather(*(closed_without_answer(r) for r, _ in conns)), timeout=60)
        assert all(results), results.count(False)
    finally:
        for task in tricklers:
            task.cancel()
        for _, w in conns:
            w.close()


async def test_defaults_do_not_cut_ordinary_requests(client: TestClient) -> None:
    assert client.app[keys.CONFIG].request_head_timeout == 20.0
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    await asyncio.sleep(1.5)  # slower than the test settings above allow, well within 20 s
    writer.write(b"Connection: close\r\n\r\n")
    status, _, _ = split(await asyncio.wait_for(reader.read(1 << 16), timeout=30))
    writer.close()
    assert status in (200, 503)


async def test_a_slow_body_is_not_taken_for_a_slow_head(
    aiohttp_client: Any, database_url: str, tmp_path: Any
) -> None:
    """With the floor off, a body arriving for longer than the head deadline is still read."""
    client = await aiohttp_client(create_app(make_config(
        database_url, tmp_path, request_head_timeout=0.5, request_body_min_rate=0.0)))
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    body = b" " * 8 + b"{}"
    writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
    for i in range(len(body)):  # 10 bytes over 1.5 s: three head deadlines
        writer.write(body[i:i + 1])
        await writer.drain()
        await asyncio.sleep(0.15)
    status, _, _ = split(await asyncio.wait_for(reader.read(1 << 16), timeout=30))
    writer.close()
    assert status == 401


@pytest.mark.parametrize("request_bytes", [
    b"GET /api/song?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/song HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    b"GET /api/song HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    + b"\r\n",
    b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
    b"GET /api HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
], ids=["request-line", "header-line", "too-many-headers", "bad-content-length", "api-root"])
async def test_unparseable_requests_under_api_get_the_error_shape(
    client: TestClient, request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    status, headers, body = split(await raw(client, request_bytes))
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request" and error["message"]
    assert set(json.loads(body)) == {"error"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    # What was sent is not repeated, in the answer or the log (a header may carry a credential).
    assert b"aaaaaaaa" not in body and b"zz" not in body
    assert "aaaaaaaa" not in caplog.text


async def test_unparseable_requests_elsewhere_stay_plain(client: TestClient) -> None:
    status, headers, body = split(await raw(
        client, b"GET /library?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 400
    assert headers["content-type"].startswith("text/plain")
    assert b"error" not in body
