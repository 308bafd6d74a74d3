"""Helpers for the tests of the /rest methods that serve media or change things (media,
annotation, playlists): binary answers read as bytes, a song's stored file, play counts, and an
app without a broker whose consumers run in process (as `serve` runs them, SPEC 2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy
from subsonic_support import Params, assert_valid

from app.web import keys


def _items(params: Params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


async def fetch(client: TestClient, method: str, params: Params, *, head: bool = False,
                headers: Mapping[str, str] | None = None
                ) -> tuple[int, CIMultiDictProxy[str], bytes]:
    """A binary method's answer: (status, headers, body bytes)."""
    items = _items(params)
    if head:
        resp = await client.head(f"/rest/{method}", params=items, headers=headers)
    else:
        resp = await client.get(f"/rest/{method}", params=items, headers=headers)
    return resp.status, resp.headers, await resp.read()


async def binary_error(client: TestClient, method: str, params: Params,
                       headers: Mapping[str, str] | None = None) -> tuple[int, str]:
    """The error envelope a binary method answers (f=json), validated against the reference's
    failure shape (the binary methods' schemas have no JSON branch; ping's does): its code and
    message."""
    status, got, body = await fetch(client, method, [*_items(params), ("f", "json")],
                                    headers=headers)
    assert status == 200, (status, body[:300])
    assert got["Content-Type"].startswith("application/json"), got["Content-Type"]
    answer = json.loads(body)
    assert_valid("ping", answer)
    inner = answer["subsonic-response"]
    assert inner["status"] == "failed", inner
    return int(inner["error"]["code"]), str(inner["error"]["message"])


async def stored_bytes(client: TestClient, song_id: int) -> bytes:
    """The song's file as stored (what stream and download must send byte for byte)."""
    song = await client.app[keys.STREAM].files.get(song_id)
    return Path(song.path).read_bytes()


async def play_count(client: TestClient, song_id: int) -> int:
    return int(await client.app[keys.DB].fetchval(
        "SELECT play_count FROM songs WHERE id = %s", (song_id,)))


async def plays_of(client: TestClient, user_id: int, song_id: int) -> int:
    return int(await client.app[keys.DB].fetchval(
        "SELECT COUNT(*) FROM plays WHERE user_id = %s AND song_id = %s", (user_id, song_id)))


def sid(song: Mapping[str, Any]) -> str:
    """A song's /rest id."""
    return f"tr-{song['id']}"
