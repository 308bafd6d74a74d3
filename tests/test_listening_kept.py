"""What listening keeps beside the plays so its pages stay cheap at scale (issue 12): each play's
artist (a listener's top artists group by it), and the charts of the long periods (kept for a few
minutes in listening_charts, recomputed by the first request that finds them older)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from conftest import make_admin, make_config, register
from test_listening import upload_song

from app.main import create_app
from app.services import listening as listening_module
from app.web import keys


@pytest.fixture
async def local(aiohttp_client, database_url, tmp_path):
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path, amqp_url="")))
    admin = await make_admin(client, await register(client))
    return client, admin


async def record(client, user_id: int, song_id: int, times: int = 1) -> None:
    """Plays as the `play_counts` consumer writes them."""
    listening = client.app[keys.LISTENING]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for _ in range(times):
        async with client.app[keys.DB].transaction() as tx:
            await listening.apply(tx, {"data": {
                "user_id": user_id, "song_id": song_id, "play_id": uuid.uuid4().hex,
                "played_ms": 60_000, "played_at": now.isoformat() + "Z"}})


async def test_top_artists_come_from_the_plays_artist(local, audio_dir):
    client, admin = local
    a = await upload_song(client, admin, audio_dir)
    b = await upload_song(client, admin, audio_dir)
    await record(client, admin.id, a["id"], 3)
    await record(client, admin.id, b["id"], 1)
    db = client.app[keys.DB]
    recorded = await db.fetchall("SELECT DISTINCT artist_id FROM plays WHERE user_id = %s"
                                 " ORDER BY artist_id", (admin.id,))
    assert [r["artist_id"] for r in recorded] == sorted([a["artist"]["id"], b["artist"]["id"]])
    stats = await client.app[keys.LISTENING].stats(admin.id)
    expected = [(a["artist"]["id"], a["artist"]["name"], 3), (b["artist"]["id"], b["artist"]["name"], 1)]
    assert stats["artists"] == 2
    assert [(t["id"], t["name"], t["plays"]) for t in stats["top_artists"]] == expected
    # Plays written without their artist (by other means) fall back to their song's.
    await db.execute("UPDATE plays SET artist_id = NULL WHERE user_id = %s", (admin.id,))
    again = await client.app[keys.LISTENING].stats(admin.id)
    assert again["artists"] == 2
    assert [(t["id"], t["name"], t["plays"]) for t in again["top_artists"]] == expected


async def test_long_charts_are_kept_then_recomputed(local, audio_dir, monkeypatch):
    client, admin = local
    listening = client.app[keys.LISTENING]
    song = await upload_song(client, admin, audio_dir)
    await record(client, admin.id, song["id"], 2)
    await client.app[keys.DB].execute("DELETE FROM listening_charts")
    first = await listening.charts("year", 100)
    plays = {c["song"]["id"]: c["plays"] for c in first}
    assert plays[song["id"]] == 2
    # A play after the chart was kept shows once the kept chart is old, not before.
    await record(client, admin.id, song["id"])
    await listening.cache.bump("charts")
    kept = await listening.charts("year", 100)
    assert {c["song"]["id"]: c["plays"] for c in kept}[song["id"]] == 2
    monkeypatch.setattr(listening_module, "CHART_SNAPSHOT_SECONDS", 0)
    await listening.cache.bump("charts")
    fresh = await listening.charts("year", 100)
    assert {c["song"]["id"]: c["plays"] for c in fresh}[song["id"]] == 3
    # The short periods are read live.
    day = await listening.charts("day", 100)
    assert {c["song"]["id"]: c["plays"] for c in day}[song["id"]] == 3
