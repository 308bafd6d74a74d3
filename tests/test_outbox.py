"""The outbox relay against the real MariaDB and RabbitMQ: publishing, outages, duplicates, dead
letters, several relays at once, and the in-process path."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from backbone_support import (
    audit_rows,
    backbone_consumers,
    dead_messages,
    emit_admin,
    namespace,
    open_db,
    processed,
    rabbit_bus,
    tag,
    unpublished,
)
from conftest import AMQP_URL, make_config
from support import eventually
from tcpproxy import TcpProxy

from app.adapters.bus import BusUnavailable, InProcessBus
from app.events.outbox import OutboxRelay
from app.events.worker import start_backbone
from app.repos.db import Database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with open_db(database_url) as database:
        yield database


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        relay.stop()
        await task


async def test_relay_publishes_committed_events_as_envelopes(db: Database) -> None:
    ns = namespace()
    async with rabbit_bus(ns) as bus:
        # A plain AMQP consumer, to see exactly what goes on the wire.
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(f"{ns}.events", "admin.#")
            prefix = tag()
            [event_id] = await emit_admin(db, prefix, 1)
            relay = OutboxRelay(db, bus, poll_interval=5)
            async with running(relay):
                relay.wake()  # woken: no waiting for the 5 s poll
                message = await _get(queue, event_id)
            assert message.routing_key == f"admin.{prefix}.did"
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
            body = json.loads(message.body)
            assert set(body) == {"id", "type", "occurred_at", "data"}
            assert body["id"] == event_id and body["type"] == f"admin.{prefix}.did"
            assert body["occurred_at"].endswith("Z")
            assert body["data"]["action"] == f"{prefix}.did"
            assert await unpublished(db, [event_id]) == 0
        finally:
            await connection.close()


async def _get(queue: aio_pika.abc.AbstractQueue, event_id: str
               ) -> aio_pika.abc.AbstractIncomingMessage:
    """The message of `event_id` (the outbox is shared by the run: other tests' events come too)."""
    for _ in range(250):
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.02)
        elif message.message_id == event_id:
            return message
    raise AssertionError("the event did not arrive")


@pytest.mark.parametrize("outage", ["refuse", "blackhole"])
async def test_events_wait_in_the_outbox_while_rabbitmq_is_down(db: Database, outage: str) -> None:
    """Writes commit during the outage; after it every event is applied exactly once."""
    ns = namespace()
    port = int(AMQP_URL.rsplit(":", 1)[1].strip("/"))
    prefix = tag()
    async with TcpProxy("127.0.0.1", port) as proxy, \
            rabbit_bus(ns, proxy.url("amqp", "guest:guest", "/"), timeout=2) as web_bus, \
            rabbit_bus(ns, proxy.url("amqp", "guest:guest", "/"), timeout=2) as worker_bus:
        for spec in backbone_consumers(db):
            await worker_bus.consume(spec.name, spec.patterns, spec.handler)
        relay = OutboxRelay(db, web_bus, poll_interval=0.05)
        async with running(relay):
            before = await emit_admin(db, prefix, 10)
            await eventually(lambda: _equal(audit_rows(db, before), 10))

            proxy.cut(outage)
            during = await emit_admin(db, prefix, 20, per_tx=4)  # the writes still commit
            await eventually(lambda: _attempted(db, during))
            assert await unpublished(db, during) == 20
            proxy.restore()

            await eventually(lambda: _equal(audit_rows(db, before + during), 30), timeout=20)
            await asyncio.sleep(0.3)  # any duplicate would land now
    ids = before + during
    assert await audit_rows(db, ids) == 30
    assert await processed(db, "audit", ids) == 30
    assert await unpublished(db, ids) == 0
    error = await db.fetchval(
        "SELECT last_error FROM outbox WHERE event_id = %s", (during[0],))
    assert error  # the failure was noted on the row


async def _equal(count: Any, expected: int) -> bool:
    return bool(await count == expected)


async def _attempted(db: Database, ids: list[str]) -> bool:
    return bool(await db.fetchval(
        "SELECT COUNT(*) FROM outbox WHERE attempts > 0 AND event_id = %s", (ids[0],)))


async def test_publish_pending_raises_and_keeps_rows_when_the_bus_is_down(db: Database) -> None:
    ids = await emit_admin(db, tag(), 2)
    bus = InProcessBus(namespace())
    await bus.close()  # a closed bus refuses every message
    relay = OutboxRelay(db, bus)
    with pytest.raises(BusUnavailable):
        await relay.publish_pending()
    assert await unpublished(db, ids) == 2
    # Tidy: publish them on a working bus so later tests start clean.
    await OutboxRelay(db, InProcessBus()).publish_pending()


async def test_duplicate_delivery_changes_nothing(db: Database) -> None:
    ns = namespace()
    [event_id] = await emit_admin(db, tag(), 1)
    row = await db.fetchone("SELECT type, payload FROM outbox WHERE event_id = %s", (event_id,))
    assert row is not None
    async with rabbit_bus(ns) as bus:
        for spec in backbone_consumers(db):
            await bus.consume(spec.name, spec.patterns, spec.handler)
        await bus.publish(row["type"], json.loads(row["payload"]))
        await bus.publish(row["type"], json.loads(row["payload"]))
        await eventually(lambda: _equal(processed(db, "audit", [event_id]), 1))
        await asyncio.sleep(0.3)
    assert await audit_rows(db, [event_id]) == 1


async def test_a_handler_that_always_fails_sends_the_event_to_dead_letters(db: Database) -> None:
    ns = namespace()
    [event_id] = await emit_admin(db, tag(), 1)
    calls = []

    async def broken(envelope: dict[str, Any]) -> None:
        calls.append(envelope["id"])
        raise RuntimeError("cannot apply")

    async with rabbit_bus(ns) as bus:
        await bus.consume("broken", ["admin.#"], broken, max_attempts=4)
        async with running(OutboxRelay(db, bus, poll_interval=0.05)):
            found: list[aio_pika.abc.AbstractIncomingMessage] = []

            async def dead() -> bool:
                found.extend(m for m in await dead_messages(ns)
                             if json.loads(m.body)["id"] == event_id)
                return bool(found)

            await eventually(dead)
    [message] = found
    assert message.headers["x-consumer"] == "broken"
    assert message.headers["x-attempts"] == 4
    assert "cannot apply" in str(message.headers["x-error"])
    assert calls.count(event_id) == 4


async def test_several_relays_publish_each_event_once(db: Database) -> None:
    received: list[str] = []
    prefix = tag()

    async def record(envelope: dict[str, Any]) -> None:
        if envelope["data"]["action"].startswith(prefix):
            received.append(envelope["id"])

    buses = [InProcessBus(namespace()) for _ in range(3)]
    for bus in buses:
        await bus.consume("record", ["admin.#"], record)
    ids = await emit_admin(db, prefix, 150, per_tx=10)
    relays = [OutboxRelay(db, bus, batch=7) for bus in buses]
    counts = await asyncio.gather(*(_drain(relay) for relay in relays))
    for bus in buses:
        await bus.close()
    assert sorted(received) == sorted(ids)  # every event once, none twice
    assert sum(counts) >= 150
    assert await unpublished(db, ids) == 0


async def _drain(relay: OutboxRelay) -> int:
    total = 0
    while count := await relay.publish_pending():
        total += count
    return total


async def test_in_process_bus_gives_the_same_audit_result(
    db: Database, database_url: str, tmp_path: Any
) -> None:
    config = make_config(database_url, tmp_path, amqp_url="")
    bus = InProcessBus(config.namespace, retry_delay=0.01)
    backbone = await start_backbone(config, db, bus, run_consumers=True)
    try:
        ids = await emit_admin(db, tag(), 25, per_tx=5)
        backbone.relay.wake()
        await eventually(lambda: _equal(audit_rows(db, ids), 25))
        # A duplicate publication (as after a relay crash) is absorbed.
        row = await db.fetchone("SELECT type, payload FROM outbox WHERE event_id = %s", (ids[0],))
        assert row is not None
        await bus.publish(row["type"], json.loads(row["payload"]))
    finally:
        await backbone.stop()
        await bus.close()
    assert await audit_rows(db, ids) == 25
    assert await processed(db, "audit", ids) == 25
    assert bus.dead == []


async def test_purge_published_keeps_recent_and_pending_rows(db: Database) -> None:
    ids = await emit_admin(db, tag(), 3)
    await db.execute(
        "UPDATE outbox SET published_at = UTC_TIMESTAMP(6) - INTERVAL 10 DAY WHERE event_id = %s",
        (ids[0],))
    await db.execute("UPDATE outbox SET published_at = UTC_TIMESTAMP(6) WHERE event_id = %s",
                     (ids[1],))
    relay = OutboxRelay(db, InProcessBus())
    assert await relay.purge_published(older_than_days=7) >= 1
    left = await db.fetchall("SELECT event_id FROM outbox WHERE event_id IN (%s, %s, %s)", ids)
    assert sorted(r["event_id"] for r in left) == sorted(ids[1:])
    await relay.publish_pending()


async def test_serve_side_relay_keeps_events_for_a_worker_that_never_ran(
    db: Database, database_url: str, tmp_path: Any
) -> None:
    """With a broker, `serve` only relays; it declares the consumers' queues so nothing is dropped
    as unroutable before the first worker starts."""
    ns = namespace()
    config = make_config(database_url, tmp_path, namespace=ns)
    ids = await emit_admin(db, tag(), 5)
    async with rabbit_bus(ns) as web_bus:
        backbone = await start_backbone(config, db, web_bus, run_consumers=False)
        try:
            await eventually(lambda: _equal(unpublished(db, ids), 0))
        finally:
            await backbone.stop()
        async with rabbit_bus(ns) as worker_bus:
            for spec in backbone_consumers(db):
                await worker_bus.consume(spec.name, spec.patterns, spec.handler)
            await eventually(lambda: _equal(audit_rows(db, ids), 5))
