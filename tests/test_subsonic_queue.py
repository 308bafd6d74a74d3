"""The saved play queue and the scan methods over /rest: getPlayQueue answers validly (empty
before any save), savePlayQueue round-trips and clears, each user has their own; getScanStatus
and startScan are admins' and report no scan running with the library's song count."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, register
from subsonic_read_support import catalogue, rest_params
from subsonic_support import call_both, call_json, error_code
from subsonic_write_support import sid


@pytest.fixture
async def cat(client: TestClient, admin: Account, audio_dir: Any) -> dict[str, Any]:
    return await catalogue(client, admin, audio_dir)


@pytest.fixture
async def auth(client: TestClient, member: Account) -> dict[str, str]:
    return await rest_params(client, member)



async def test_play_queue_round_trip(client, cat, auth, member):
    empty = (await call_both(client, "getPlayQueue", auth))["playQueue"]
    assert empty["username"] == member.username and empty.get("entry", []) == []
    assert "current" not in empty

    a, b, c = (sid(s) for s in cat["songs"])
    params = [*{**auth, "c": "Tablet"}.items(), ("id", a), ("id", b), ("id", a), ("id", c),
              ("current", b), ("position", "12345")]
    assert (await call_json(client, "savePlayQueue", params))["status"] == "ok"
    queue = (await call_both(client, "getPlayQueue", auth))["playQueue"]
    assert [e["id"] for e in queue["entry"]] == [a, b, a, c]
    assert queue["current"] == b and queue["position"] == 12345
    assert queue["changedBy"] == "Tablet" and queue["username"] == member.username

    # Another user's queue is their own.
    other = await rest_params(client, await register(client))
    assert (await call_json(client, "getPlayQueue", other))["playQueue"].get("entry", []) == []

    # No ids clears it.
    assert (await call_json(client, "savePlayQueue", auth))["status"] == "ok"
    assert (await call_json(client, "getPlayQueue", auth))["playQueue"].get("entry", []) == []


async def test_play_queue_refuses_bad_input(client, cat, auth):
    a = sid(cat["songs"][0])
    assert await error_code(client, "savePlayQueue", {**auth, "id": "tr-999999999"}) == 70
    assert await error_code(client, "savePlayQueue", {**auth, "id": "al-1"}) == 70
    assert await error_code(client, "savePlayQueue", {**auth, "id": a,
                                                "current": sid(cat["songs"][1])}) == 10
    assert await error_code(client, "savePlayQueue", {**auth, "id": a, "position": "soon"}) == 10
    # Past 1,000 songs a queue is refused. Sent as an app sends a long one, in a form body
    # (formPost), it is refused before the method reads it: the body's fields are capped at
    # 1,000 too (a GET that long is past the request line's 8 KiB). Nothing is saved.
    before = (await call_json(client, "getPlayQueue", auth))["playQueue"]
    resp = await client.post("/rest/savePlayQueue", params={**auth, "f": "json"},
                             data=[("id", a)] * 1001)
    refused = (await resp.json())["subsonic-response"]
    assert resp.status == 200 and refused["status"] == "failed", refused
    assert refused["error"]["code"] == 0 and "too large" in refused["error"]["message"]
    assert (await call_json(client, "getPlayQueue", auth))["playQueue"] == before
    huge = await call_json(client, "savePlayQueue", {**auth, "id": a, "position": "99999999999"})
    assert huge["status"] == "ok"


async def test_scan_methods_are_for_admins(client, cat, auth, admin):
    assert await error_code(client, "getScanStatus", auth) == 50
    assert await error_code(client, "startScan", auth) == 50
    admin_auth = await rest_params(client, admin)
    for method in ("getScanStatus", "startScan"):
        status = (await call_both(client, method, admin_auth))["scanStatus"]
        assert status["scanning"] is False and status["count"] >= len(cat["songs"])
