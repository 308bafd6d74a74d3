"""Play reports → play.recorded through the outbox → history and counts, exactly once."""

from __future__ import annotations

import asyncio
import io
import os
import random
import secrets
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from conftest import AMQP_URL, Account, make_admin, make_audio, make_config, register, unique
from support import eventually
from tcpproxy import TcpProxy
from test_pages import form_token, login_as

from app.events.worker import Worker
from app.main import create_app
from app.web import keys

ROOT = Path(__file__).resolve().parent.parent


async def upload_song(client, admin: Account, audio_dir, seconds: float = 2.0) -> dict:
    path = make_audio(audio_dir, "mp3", seconds=seconds, title=unique("Song "), artist=unique("A"))
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name)
    resp = await client.post("/api/song", data=form, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def play_count(client, song_id: int) -> int:
    return int(await client.app[keys.DB].fetchval("SELECT play_count FROM songs WHERE id = %s", (song_id,)))


def play(song_id: int, played_ms: int = 60_000, play_id: str | None = None) -> dict:
    return {"song_id": song_id, "played_ms": played_ms, "play_id": play_id or uuid.uuid4().hex}


@pytest.fixture
async def local(aiohttp_client, database_url, tmp_path):
    """An app with no broker: `serve` runs the consumers itself (SPEC 2)."""
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path, amqp_url="")))
    admin = await make_admin(client, await register(client))
    return client, admin


async def test_threshold_and_answer(local, audio_dir):
    client, admin = local
    song = await upload_song(client, admin, audio_dir, seconds=2.0)  # counts after half of it
    half = song["duration_ms"] // 2
    resp = await client.post("/api/stream/play", json=play(song["id"], half - 1), headers=admin.headers)
    assert resp.status == 202 and await resp.json() == {"counted": False}
    resp = await client.post("/api/stream/play", json=play(song["id"], half), headers=admin.headers)
    assert resp.status == 202 and await resp.json() == {"counted": True}

    async def counted() -> bool:
        return await play_count(client, song["id"]) == 1

    await eventually(counted)
    history = await (await client.get("/api/stream/history", headers=admin.headers)).json()
    assert history["total"] == 1 and history["items"][0]["song"]["id"] == song["id"]
    assert history["items"][0]["played_at"].endswith("Z")
    resp = await client.get(f"/api/song/{song['id']}/play-count", headers=admin.headers)
    assert await resp.json() == {"song_id": song["id"], "play_count": 1}
    assert (await (await client.get(f"/api/song/{song['id']}", headers=admin.headers)).json())["play_count"] == 1


@pytest.mark.parametrize("body", [
    {"song_id": "1", "played_ms": 1000, "play_id": "x"},
    {"song_id": 1, "played_ms": -1, "play_id": "x"},
    {"song_id": 1, "played_ms": 1000, "play_id": ""},
    {"song_id": 1, "played_ms": 1000, "play_id": "a" * 65},
    {"song_id": 1, "played_ms": True, "play_id": "x"},
    {"played_ms": 1000, "play_id": "x"},
])
async def test_bad_reports_are_422(client, member, body):
    resp = await client.post("/api/stream/play", json=body, headers=member.headers)
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "invalid_input"


async def test_unknown_song_is_404_and_anonymous_is_401(client, member):
    resp = await client.post("/api/stream/play", json=play(10**15), headers=member.headers)
    assert resp.status == 404
    assert (await client.post("/api/stream/play", json=play(1))).status == 401


async def test_100_concurrent_reports_count_100_and_retries_count_once(local, audio_dir):
    client, admin = local
    listener = await register(client)
    song = await upload_song(client, admin, audio_dir, seconds=40.0)
    replies = await asyncio.gather(*(
        client.post("/api/stream/play", json=play(song["id"]), headers=listener.headers)
        for _ in range(100)
    ))
    assert [r.status for r in replies] == [202] * 100
    same = play(song["id"], 31_000, "retry-me")
    for _ in range(5):
        assert (await client.post("/api/stream/play", json=same, headers=listener.headers)).status == 202

    async def settled() -> bool:
        return await play_count(client, song["id"]) >= 101

    await eventually(settled, timeout=20)
    await asyncio.sleep(0.3)
    assert await play_count(client, song["id"]) == 101
    history = await (await client.get("/api/stream/history?limit=1", headers=listener.headers)).json()
    assert history["total"] == 101
    # The same play_id from another user is another play.
    assert (await client.post("/api/stream/play", json=same, headers=admin.headers)).status == 202

    async def other() -> bool:
        return await play_count(client, song["id"]) == 102

    await eventually(other)


async def test_history_tops_stats_charts(local, audio_dir):
    client, admin = local
    a = await upload_song(client, admin, audio_dir)
    b = await upload_song(client, admin, audio_dir)
    for song, times in ((a, 3), (b, 1)):
        for _ in range(times):
            await client.post("/api/stream/play", json=play(song["id"]), headers=admin.headers)

    async def done() -> bool:
        return await play_count(client, a["id"]) == 3 and await play_count(client, b["id"]) == 1

    await eventually(done)
    h = admin.headers
    top = await (await client.get("/api/stream/top-songs?period=week", headers=h)).json()
    assert [(t["song"]["id"], t["plays"]) for t in top["items"]] == [(a["id"], 3), (b["id"], 1)]
    recent = await (await client.get("/api/stream/recent", headers=h)).json()
    assert {r["song"]["id"] for r in recent["items"]} == {a["id"], b["id"]}
    stats = await (await client.get("/api/stream/stats", headers=h)).json()
    assert stats["plays"] == 4 and stats["songs"] == 2 and len(stats["per_day"]) == 31
    assert stats["per_day"][-1]["plays"] == 4
    charts = await (await client.get("/api/stream/charts?period=day", headers=h)).json()
    charted = [c["song"]["id"] for c in charts["items"]]  # everyone's plays today, other tests' too
    assert charted.index(a["id"]) < charted.index(b["id"])
    assert (await client.get("/api/stream/top-songs?period=decade", headers=h)).status == 422
    # Clearing the history hides it from the listener; the songs keep their counts.
    assert (await client.delete("/api/stream/history", headers=h)).status == 204
    history = await (await client.get("/api/stream/history", headers=h)).json()
    assert history["total"] == 0
    assert await play_count(client, a["id"]) == 3
    other = await register(client)
    mine = await (await client.get("/api/stream/history", headers=other.headers)).json()
    assert mine["total"] == 0


async def test_reports_while_rabbitmq_is_cut_count_exactly_once_it_is_back(
    aiohttp_client, database_url, tmp_path, audio_dir
):
    async with TcpProxy("127.0.0.1", 5672) as proxy:
        config = make_config(database_url, tmp_path,
                             amqp_url=proxy.url("amqp", "guest:guest@", "/"))
        client = await aiohttp_client(create_app(config))
        admin = await make_admin(client, await register(client))
        song = await upload_song(client, admin, audio_dir, seconds=40.0)
        proxy.cut("refuse")
        replies = await asyncio.gather(*(
            client.post("/api/stream/play", json=play(song["id"]), headers=admin.headers)
            for _ in range(20)
        ))
        assert [r.status for r in replies] == [202] * 20
        pending = await client.app[keys.DB].fetchval(
            "SELECT COUNT(*) FROM outbox WHERE type = 'play.recorded' AND published_at IS NULL"
            " AND payload LIKE %s", (f'%"song_id":{song["id"]},%',)
        )
        assert pending == 20
        proxy.restore()
        worker = Worker(config.replace(amqp_url=AMQP_URL))
        await worker.start()
        try:
            async def all_counted() -> bool:
                return await play_count(client, song["id"]) >= 20

            await eventually(all_counted, timeout=30)
            await asyncio.sleep(0.5)
            assert await play_count(client, song["id"]) == 20
        finally:
            await worker.stop()


async def test_worker_killed_mid_stream_counts_exactly_after_restart(
    aiohttp_client, database_url, tmp_path, audio_dir
):
    config = make_config(database_url, tmp_path)
    client = await aiohttp_client(create_app(config))
    admin = await make_admin(client, await register(client))
    song = await upload_song(client, admin, audio_dir, seconds=40.0)
    for _ in range(4):
        await asyncio.gather(*(
            client.post("/api/stream/play", json=play(song["id"]), headers=admin.headers)
            for _ in range(50)
        ))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONORA_")}
    env.update({"SONORA_DATABASE_URL": config.database_url, "SONORA_AMQP_URL": AMQP_URL,
                "SONORA_NAMESPACE": config.namespace, "SONORA_REDIS_URL": config.redis_url,
                "SONORA_SECRET_KEY": secrets.token_urlsafe(48), "SONORA_DATA_DIR": str(tmp_path)})
    log = tmp_path / "worker.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)

    proc = start()
    try:
        async def some() -> bool:
            return await play_count(client, song["id"]) >= 1

        await eventually(some, timeout=30, every=0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert await play_count(client, song["id"]) < 200, "killed too late to prove anything"
        proc = start()

        async def all_counted() -> bool:
            return await play_count(client, song["id"]) >= 200

        await eventually(all_counted, timeout=60)
        await asyncio.sleep(0.5)
        assert await play_count(client, song["id"]) == 200
        rows = await client.app[keys.DB].fetchval("SELECT COUNT(*) FROM plays WHERE song_id = %s", (song["id"],))
        assert rows == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()


async def test_repeated_reports_of_a_listen_update_its_time_and_count_once(local, audio_dir):
    """Players report a listen at the threshold and again as it goes on (the end, a skip, leaving
    the page): hundreds of such reports, shuffled and concurrent, converge to one count per
    play_id and the longest time reported for each."""
    client, admin = local
    listener = await register(client)
    song = await upload_song(client, admin, audio_dir, seconds=40.0)  # counts from 20 s
    other = await upload_song(client, admin, audio_dir, seconds=40.0)
    rng = random.Random(10)
    finals = {f"listen-{n}": rng.randrange(20_000, 600_000) for n in range(60)}
    reports = []
    for play_id, final in finals.items():
        reports.append(play(song["id"], rng.randrange(0, 20_000), play_id))  # below: not counted
        steps = sorted(rng.randrange(20_000, final + 1) for _ in range(3))
        reports += [play(song["id"], ms, play_id) for ms in (*steps, final, final)]
    rng.shuffle(reports)
    replies = await asyncio.gather(*(
        client.post("/api/stream/play", json=body, headers=listener.headers) for body in reports
    ))
    assert len(reports) == 360 and {r.status for r in replies} == {202}
    # A play_id already used for one song, reported for another: the first song keeps its play.
    reused = "listen-0"
    resp = await client.post("/api/stream/play", json=play(other["id"], 900_000, reused), headers=listener.headers)
    assert resp.status == 202
    expected_ms = sum(finals.values())

    async def converged() -> bool:
        stats = await (await client.get("/api/stream/stats", headers=listener.headers)).json()
        return stats["plays"] == 60 and stats["listened_ms"] == expected_ms

    await eventually(converged, timeout=30)
    await asyncio.sleep(0.3)  # nothing late changes it
    stats = await (await client.get("/api/stream/stats", headers=listener.headers)).json()
    assert (stats["plays"], stats["listened_ms"]) == (60, expected_ms)
    assert await play_count(client, song["id"]) == 60
    assert await play_count(client, other["id"]) == 0
    history = await (await client.get("/api/stream/history?limit=100", headers=listener.headers)).json()
    assert history["total"] == 60
    assert {h["play_id"]: h["played_ms"] for h in history["items"]} == finals
    assert {h["song"]["id"] for h in history["items"]} == {song["id"]}


async def test_a_beacon_report_is_a_form_with_the_csrf_token(local, audio_dir):
    """navigator.sendBeacon cannot set headers: the page's report comes as a form with the
    session cookie and a csrf_token field; without the token it is refused and changes nothing."""
    client, admin = local
    song = await upload_song(client, admin, audio_dir, seconds=40.0)
    member = await register(client)
    await login_as(client, member)
    token = await form_token(client, "/me")
    fields = {"song_id": str(song["id"]), "played_ms": "25000", "play_id": "beacon-1"}
    resp = await client.post("/api/stream/play", data=fields)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    for bad in ({"song_id": "x"}, {"played_ms": "-5"}, {"played_ms": "١٢"}, {"play_id": ""}):
        resp = await client.post("/api/stream/play", data={**fields, **bad, "csrf_token": token})
        assert resp.status == 422, bad
        assert (await resp.json())["error"]["code"] == "invalid_input"
    await asyncio.sleep(0.3)
    assert await play_count(client, song["id"]) == 0
    resp = await client.post("/api/stream/play", data={**fields, "csrf_token": token})
    assert resp.status == 202 and await resp.json() == {"counted": True}
    # The same listen, later (the page was left): its time grows, its count does not.
    resp = await client.post("/api/stream/play", data={**fields, "played_ms": "41000", "csrf_token": token})
    assert resp.status == 202

    async def recorded() -> bool:
        stats = await (await client.get("/api/stream/stats")).json()
        return stats["plays"] == 1 and stats["listened_ms"] == 41_000

    await eventually(recorded)
    assert await play_count(client, song["id"]) == 1
