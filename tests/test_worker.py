"""The worker as a real process: it relays and consumes, survives SIGKILL without losing or doubling
an effect, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from backbone_support import (
    audit_rows,
    delete_rabbit,
    emit_admin,
    namespace,
    open_db,
    processed,
    tag,
    unpublished,
)
from conftest import AMQP_URL, CONSUMER_NAMES, make_config
from support import eventually

from app.events import CatalogChanged, emit_many
from app.events.worker import run
from app.repos.db import Database

ROOT = Path(__file__).resolve().parent.parent
# `python -m app worker` is wired by app/cli/commands.py; this is the same entry point.
START = (
    "import logging, sys\n"
    "from app.config import load_config\n"
    "from app.events.worker import run\n"
    "logging.basicConfig(level='INFO')\n"
    "sys.exit(run(load_config(env_file=None)))\n"
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with open_db(database_url) as database:
        yield database


class WorkerProcess:
    """Starts and stops `app.events.worker.run` in a subprocess of its own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited here
                [sys.executable, "-c", START], cwd=ROOT, env=self.env, stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def stop(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        for _ in range(300):
            if (code := self.proc.poll()) is not None:
                return code
            await asyncio.sleep(0.05)
        self.proc.kill()
        raise AssertionError("the worker did not stop within 15 s:\n" + self.log.read_text())


@pytest.fixture
def worker_env(database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    ns = namespace()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONORA_")}
    env.update({
        "SONORA_DATABASE_URL": database_url,
        "SONORA_AMQP_URL": AMQP_URL,
        "SONORA_NAMESPACE": ns,
        "SONORA_SECRET_KEY": secrets.token_urlsafe(48),
        "SONORA_DATA_DIR": str(tmp_path),
    })
    yield env
    asyncio.run(delete_rabbit(ns, [f"{ns}.{name}" for name in CONSUMER_NAMES]))


async def test_worker_survives_sigkill_and_applies_every_effect_once(
    db: Database, worker_env: dict[str, str], tmp_path: Path
) -> None:
    worker = WorkerProcess(worker_env, tmp_path / "worker.log")
    ids = await emit_admin(db, tag(), 200, per_tx=5)
    worker.start()
    try:
        # Killed mid-stream: some events applied, some published but unacked, some unpublished.
        await eventually(lambda: _at_least(audit_rows(db, ids), 20), timeout=20, every=0.005)
        assert await worker.stop(signal.SIGKILL) == -signal.SIGKILL
        killed_at = await audit_rows(db, ids)
        worker.start()
        await eventually(lambda: _at_least(audit_rows(db, ids), 200), timeout=20)
        await asyncio.sleep(0.5)  # redeliveries would land now
        assert await worker.stop(signal.SIGTERM) == 0
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.kill()
    assert await audit_rows(db, ids) == 200, f"killed with {killed_at} applied"
    assert await processed(db, "audit", ids) == 200
    assert await unpublished(db, ids) == 0


async def _at_least(count: Any, expected: int) -> bool:
    return bool(await count >= expected)


async def test_worker_stops_cleanly_on_sigterm(
    db: Database, worker_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    worker = WorkerProcess(worker_env, log)
    worker.start()
    try:
        ids = await emit_admin(db, tag(), 1)
        await eventually(lambda: _at_least(audit_rows(db, ids), 1), timeout=20)
        assert await worker.stop(signal.SIGTERM) == 0
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.kill()
    assert "stopping the worker" in log.read_text()


def test_worker_without_a_broker_has_nothing_to_do(database_url: str, tmp_path: Path) -> None:
    assert run(make_config(database_url, tmp_path, amqp_url="")) == 0


async def test_a_small_pool_worker_drains_a_redelivered_backlog_and_stops_quickly(
    db: Database, worker_env: dict[str, str], tmp_path: Path
) -> None:
    """The report's lock-up: a backlog of catalogue and admin events, far more than the worker's
    pool, killed mid-stream and redelivered after a restart; it drains and SIGTERM stops it."""
    worker_env["SONORA_WORKER_DB_POOL"] = "3"
    t = tag()
    artists = []
    for i in range(30):
        name = f"{t} artist {i}"
        artists.append(await db.execute(
            "INSERT INTO artists (name, name_canon) VALUES (%s, %s)", (name, name.lower())))
    catalog: list[str] = []
    for start in range(0, 300, 50):
        async with db.transaction() as tx:
            catalog += await emit_many(tx, [CatalogChanged("artist", artists[i % 30], "upserted")
                                            for i in range(start, start + 50)])
    audit = await emit_admin(db, t, 300, per_tx=25)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(worker_env, log)
    worker.start()
    try:
        await eventually(lambda: _at_least(audit_rows(db, audit), 30), timeout=30, every=0.005)
        assert await worker.stop(signal.SIGKILL) == -signal.SIGKILL
        worker.start()
        await eventually(lambda: _at_least(processed(db, "search_index", catalog), 300),
                         timeout=60)
        await eventually(lambda: _at_least(audit_rows(db, audit), 300), timeout=60)
        assert await worker.stop(signal.SIGTERM) == 0
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.kill()
    assert await audit_rows(db, audit) == 300
    assert await processed(db, "search_index", catalog) == 300
    text = log.read_text()
    assert "prefetch 1" in text  # (3 connections - 2 kept for the relay) // 3 consumers
    assert "still running after" not in text and "NestedConnection" not in text
