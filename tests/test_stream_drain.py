"""Pacing end to end, stalled readers, and draining streams on SIGTERM (SPEC §6)."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import AMQP_URL, REDIS_URL, make_audio, make_config, unique
from test_stream import upload_song

from app.main import create_app
from app.web import keys

ROOT = Path(__file__).resolve().parent.parent


async def settled(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_a_lone_stream_gets_the_whole_budget(aiohttp_client: Any, database_url: str,
                                                   tmp_path: Path, audio_dir: Path) -> None:
    """With an egress budget of 1.6 Mbit/s (200 kB/s), one WAV stream (owed 1.5 × its bitrate,
    264.6 kB/s, after a 1 s burst) is held to the budget, which it has to itself; the limiter's
    accounting says so, and every byte arrives right."""
    config = make_config(database_url, tmp_path, stream_burst_seconds=1, stream_pace=1.5,
                         stream_egress_mbps=1.6)
    client = await aiohttp_client(create_app(config))
    sched = client.app[keys.STREAMING].scheduler
    song = await upload_song(client, make_audio(audio_dir, "wav", seconds=4.0))
    shares = []
    got = bytearray()
    async with client.get(song.url, headers=song.account.headers) as resp:
        assert resp.status == 200
        while chunk := await resp.content.readany():
            got += chunk
            shares.extend(p.share for p in sched.pacers())
    assert bytes(got) == song.body
    assert sched.waits > 0
    assert shares and max(shares) == pytest.approx(200_000)
    slots = client.app[keys.STREAMING].service.slots
    await settled(lambda: slots.total() == 0 and sched.streams == 0, 5.0)


async def test_a_stalled_reader_is_closed_and_its_slot_freed(
    aiohttp_client: Any, database_url: str, tmp_path: Path, audio_dir: Path
) -> None:
    config = make_config(database_url, tmp_path, stream_pace=0)
    client = await aiohttp_client(create_app(config))
    state = client.app[keys.STREAMING]
    state.stall_timeout = 1.0
    # 60 s of WAV, ~10 MB: more than loopback's socket buffers can hide.
    song = await upload_song(client, make_audio(audio_dir, "wav", seconds=60.0))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (client.host, client.port))
    request = (f"GET {song.url} HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {song.account.access}\r\n\r\n")
    await loop.sock_sendall(sock, request.encode())
    head = await loop.sock_recv(sock, 4096)
    assert head.startswith(b"HTTP/1.1 200")
    # Read nothing more: the server's writes stop, and after the stall timeout it gives up.
    await asyncio.sleep(0.2)
    assert state.service.slots.in_use(song.account.id) == 1
    await settled(lambda: state.service.slots.in_use(song.account.id) == 0, 10.0)
    got = len(head)
    while chunk := await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10):
        got += len(chunk)
    sock.close()
    assert got < len(song.body), "the connection was closed before the whole file went"
    # The server goes on serving others.
    resp = await client.get(song.url, headers={**song.account.headers, "Range": "bytes=0-99"})
    assert resp.status == 206 and await resp.read() == song.body[:100]


# --- SIGTERM drains ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m app serve` in a subprocess, with its own namespace and data directory."""

    def __init__(self, database_url: str, tmp_path: Path, **settings: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "SONORA_DATABASE_URL": database_url, "SONORA_REDIS_URL": REDIS_URL,
            "SONORA_AMQP_URL": AMQP_URL, "SONORA_SECRET_KEY": secrets.token_urlsafe(36),
            "SONORA_DATA_DIR": str(tmp_path), "SONORA_HOST": "127.0.0.1",
            "SONORA_PORT": str(self.port), "SONORA_NAMESPACE": unique("drain"),
            "SONORA_BCRYPT_ROUNDS": "4", "SONORA_LOG_LEVEL": "WARNING",
            **{f"SONORA_{k.upper()}": v for k, v in settings.items()},
        }
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the server did not start")

    def admin(self) -> tuple[str, str]:
        name = unique("drain")
        password = "correct horse 1"
        subprocess.run([sys.executable, "-m", "app", "create-user", "--admin", "--email",
                        f"{name}@example.com", "--username", name, "--password", password],
                       cwd=ROOT, env=self.env, check=True, capture_output=True)
        return name, password

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server_factory(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(**settings: str) -> Server:
        server = Server(database_url, tmp_path / f"s{len(servers)}", **settings)
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


async def paced_download_then_sigterm(server: Server, audio_dir: Path) -> tuple[int, bytes, float, int]:
    """Upload a 10 s WAV, start a paced download, SIGTERM after 1 s; (received, file, seconds
    from SIGTERM to the end of the download, exit code)."""
    name, password = server.admin()
    server.start()
    assert server.proc is not None
    path = make_audio(audio_dir, "wav", seconds=10.0)
    body = path.read_bytes()
    async with aiohttp.ClientSession(server.base) as session:
        login = await session.post("/api/auth/login", json={"username": name, "password": password})
        assert login.status == 200, await login.text()
        h = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(body), filename=path.name,
                       content_type="application/octet-stream")
        up = await session.post("/api/song", data=form, headers=h)
        assert up.status == 201, await up.text()
        song_id = (await up.json())["id"]
        received = bytearray()
        async with session.get(f"/api/stream/{song_id}", headers=h) as resp:
            assert resp.status == 200
            started = time.monotonic()
            while time.monotonic() - started < 1.0:
                received += await resp.content.readany()
            server.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(0.5)
            # No new connections are accepted while the streams drain.
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            try:
                while chunk := await resp.content.readany():
                    received += chunk
            except aiohttp.ClientPayloadError:
                pass  # cut after the grace period
            drained = time.monotonic() - signalled
    code = await asyncio.to_thread(server.proc.wait, 30)
    return len(received), body if bytes(received) == body else b"", drained, code


async def test_sigterm_lets_a_stream_finish(server_factory: Callable[..., Server],
                                            audio_dir: Path) -> None:
    # An egress budget of 4x the WAV's bitrate, which the lone stream has to itself: the 10 s
    # file takes ~2.5 s, within the grace.
    server = server_factory(stream_burst_seconds="1", stream_egress_mbps="5.6448")
    received, same, drained, code = await paced_download_then_sigterm(server, audio_dir)
    assert same, f"the download was cut at {received} bytes"
    assert drained < 8, drained
    assert code == 0


@pytest.mark.slow
async def test_sigterm_cuts_a_stream_after_the_grace_period(
    server_factory: Callable[..., Server], audio_dir: Path
) -> None:
    # A budget of half the WAV's bitrate: the 10 s file would take 20 s; the grace is 10 s.
    server = server_factory(stream_burst_seconds="1", stream_egress_mbps="0.7056")
    received, same, drained, code = await paced_download_then_sigterm(server, audio_dir)
    assert not same and received > 0
    assert 9 <= drained <= 14, drained
    assert code == 0
