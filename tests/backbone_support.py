"""Helpers shared by the event-backbone tests: a migrated database, RabbitMQ buses that clean up
after themselves, emitting admin events and counting their effects (waiting for them: support.eventually)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aio_pika
from conftest import AMQP_URL, RUN_ID, unique

from app.adapters.bus import RabbitBus
from app.adapters.kv import MemoryKV
from app.config import Config
from app.container import build_services
from app.events import AdminAction, emit
from app.events.consumers import ConsumerSpec, consumers
from app.repos.db import Database
from app.repos.migrate import migrate


def namespace() -> str:
    """A namespace (exchange and queue prefix) of one test."""
    return f"test_{RUN_ID}_{secrets.token_hex(3)}"


@contextlib.asynccontextmanager
async def open_db(database_url: str) -> AsyncIterator[Database]:
    """The run's database, migrated."""
    db = Database(database_url, maxsize=20)
    await db.connect()
    await migrate(db)
    try:
        yield db
    finally:
        await db.close()


def backbone_consumers(db: Database) -> list[ConsumerSpec]:
    """The consumers over `db` with services from the composition root, search indexing left
    out (these tests open no index; their settings are the defaults)."""
    return consumers(build_services(Config(), db, MemoryKV(), local_cache=False), search_index=False)


async def delete_rabbit(ns: str, queues: Iterable[str]) -> None:
    """Delete a test's queues and its exchange (the broker is shared and outlives the run)."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        for name in set(queues) | {f"{ns}.dead"}:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()
        channel = await connection.channel()
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await channel.exchange_delete(f"{ns}.events")
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def rabbit_bus(ns: str, url: str = AMQP_URL, **kwargs: Any) -> AsyncIterator[RabbitBus]:
    """A started RabbitBus of namespace `ns`; its queues and exchange are deleted afterwards."""
    kwargs.setdefault("retry_delay", 0.01)
    kwargs.setdefault("reconnect_interval", 0.5)
    bus = RabbitBus(url, ns, **kwargs)
    await bus.start()
    try:
        yield bus
    finally:
        queues = set(bus.declared_queues)
        await bus.close()
        await delete_rabbit(ns, queues)


async def dead_messages(ns: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message of `<ns>.dead` (a passive declare: the queue must exist)."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{ns}.dead", passive=True)
        found = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            found.append(message)
        return found
    finally:
        await connection.close()


def admin_event(tag: str, i: int = 0) -> AdminAction:
    """An admin event whose action starts with `tag` (so a test can count its own)."""
    return AdminAction(
        actor_id=1, actor_username="root", action=f"{tag}.did", target_type="user",
        target_id=i, summary=f"event {i}", details={"i": i},
    )


async def emit_admin(db: Database, tag: str, count: int, per_tx: int = 1) -> list[str]:
    """Commit `count` admin events, `per_tx` to a transaction; returns their ids."""
    ids: list[str] = []
    for start in range(0, count, per_tx):
        async with db.transaction() as tx:
            for i in range(start, min(start + per_tx, count)):
                ids.append(await emit(tx, admin_event(tag, i)))
    return ids


async def audit_rows(db: Database, ids: list[str]) -> int:
    """How many audit rows these events produced (duplicates would count twice)."""
    if not ids:
        return 0
    marks = ", ".join(["%s"] * len(ids))
    return int(await db.fetchval(f"SELECT COUNT(*) FROM audit_log WHERE event_id IN ({marks})", ids))


async def processed(db: Database, consumer: str, ids: list[str]) -> int:
    marks = ", ".join(["%s"] * len(ids))
    return int(await db.fetchval(
        f"SELECT COUNT(*) FROM processed_events WHERE consumer = %s AND event_id IN ({marks})",
        [consumer, *ids],
    ))


async def unpublished(db: Database, ids: list[str]) -> int:
    marks = ", ".join(["%s"] * len(ids))
    return int(await db.fetchval(
        f"SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND event_id IN ({marks})", ids
    ))


def tag() -> str:
    """A unique action prefix."""
    return unique("t")
