"""One contract, two buses: every test here runs on RabbitMQ (a namespace of its own, deleted
afterwards) and on the in-process bus."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from backbone_support import dead_messages, namespace, rabbit_bus
from conftest import AMQP_URL
from support import eventually
from tcpproxy import TcpProxy

from app.adapters.bus import Bus, InProcessBus, RabbitBus, topic_matches


@pytest.fixture(params=["rabbitmq", "in-process"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "rabbitmq":
        async with rabbit_bus(namespace()) as rabbit:
            yield rabbit
    else:
        local = InProcessBus(namespace(), retry_delay=0.01)
        await local.start()
        yield local
        await local.close()


def message(routing_key: str, **data: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": routing_key, "occurred_at": "2024-01-01T00:00:00Z",
            "data": data}


class Recorder:
    """A handler that remembers what it got, failing its first `fail` calls (or every call)."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, envelope: dict[str, Any]) -> None:
        self.calls.append(envelope)
        if self.fail < 0 or len(self.calls) <= self.fail:
            raise RuntimeError("handler failed on purpose")

    @property
    def ids(self) -> list[str]:
        return [c["id"] for c in self.calls]


async def dead_letters(bus: Bus, expected: int) -> list[tuple[dict[str, Any], bytes]]:
    """(headers, body) of the bus's dead letters, once `expected` of them are there."""
    if isinstance(bus, InProcessBus):
        await eventually(lambda: _true(len(bus.dead) >= expected))
        return [({"x-consumer": d.consumer, "x-error": d.error, "x-attempts": d.attempts}, d.body)
                for d in bus.dead]
    assert isinstance(bus, RabbitBus)
    found: list[tuple[dict[str, Any], bytes]] = []

    async def collect() -> bool:
        found.extend((dict(m.headers), m.body) for m in await dead_messages(bus.namespace))
        return len(found) >= expected

    await eventually(collect)
    return found


async def _true(value: bool) -> bool:
    return value


def test_topic_matching() -> None:
    assert topic_matches("catalog.*.*", "catalog.song.upserted")
    assert not topic_matches("catalog.*.*", "catalog.song")
    assert topic_matches("admin.#", "admin.user.role_changed")
    assert topic_matches("admin.#", "admin")
    assert not topic_matches("admin.#", "play.recorded")
    assert topic_matches("#", "play.recorded")


async def test_patterns_route_each_message_to_matching_consumers(bus: Bus) -> None:
    catalog, admin = Recorder(), Recorder()
    await bus.consume("catalog", ["catalog.*.*"], catalog)
    await bus.consume("admin", ["admin.#"], admin)
    sent = {key: message(key) for key in
            ["catalog.song.upserted", "admin.user.role_changed", "play.recorded", "catalog.song",
             "admin.x"]}
    for key, envelope in sent.items():
        await bus.publish(key, envelope)
    await eventually(lambda: _true(len(catalog.calls) >= 1 and len(admin.calls) >= 2))
    await asyncio.sleep(0.1)  # nothing more arrives
    assert catalog.ids == [sent["catalog.song.upserted"]["id"]]
    assert sorted(admin.ids) == sorted([sent["admin.user.role_changed"]["id"], sent["admin.x"]["id"]])
    assert admin.calls[0] == sent[admin.calls[0]["type"]]  # the envelope arrives unchanged


async def test_each_consumer_gets_its_own_copy(bus: Bus) -> None:
    first, second = Recorder(), Recorder()
    await bus.consume("first", ["admin.#"], first)
    await bus.consume("second", ["admin.#"], second)
    envelope = message("admin.user.deleted", user=7)
    await bus.publish("admin.user.deleted", envelope)
    await eventually(lambda: _true(len(first.calls) == 1 and len(second.calls) == 1))
    assert first.calls == second.calls == [envelope]


async def test_failing_handler_is_retried_until_it_succeeds(bus: Bus) -> None:
    flaky = Recorder(fail=2)
    await bus.consume("flaky", ["play.*"], flaky, max_attempts=5)
    envelope = message("play.recorded")
    await bus.publish("play.recorded", envelope)
    await eventually(lambda: _true(len(flaky.calls) == 3))
    await asyncio.sleep(0.1)
    assert flaky.ids == [envelope["id"]] * 3
    assert not await _dead_now(bus)


async def test_poison_message_goes_to_dead_letters_after_max_attempts(bus: Bus) -> None:
    poison = Recorder(fail=-1)
    await bus.consume("poison", ["admin.#"], poison, max_attempts=3)
    envelope = message("admin.user.deleted")
    await bus.publish("admin.user.deleted", envelope)
    [(headers, body)] = await dead_letters(bus, 1)
    assert json.loads(body) == envelope
    assert headers["x-consumer"] == "poison"
    assert headers["x-attempts"] == 3
    assert "handler failed on purpose" in headers["x-error"]
    assert len(poison.calls) == 3


async def test_malformed_message_goes_straight_to_dead_letters(bus: Bus) -> None:
    handler = Recorder()
    await bus.consume("strict", ["admin.#"], handler)
    assert isinstance(bus, RabbitBus | InProcessBus)
    await bus.publish_raw("admin.user.deleted", b"{not json")
    await bus.publish_raw("admin.user.deleted", b"[1, 2]")  # JSON, but not an envelope
    dead = await dead_letters(bus, 2)
    assert sorted(body for _, body in dead) == [b"[1, 2]", b"{not json"]
    assert all(h["x-consumer"] == "strict" for h, _ in dead)
    assert handler.calls == []


async def test_stop_consuming_lets_handlers_in_flight_finish(bus: Bus) -> None:
    started, finished = asyncio.Event(), []

    async def slow(envelope: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(envelope["id"])

    await bus.consume("slow", ["admin.#"], slow)
    envelope = message("admin.user.deleted")
    await bus.publish("admin.user.deleted", envelope)
    await asyncio.wait_for(started.wait(), 5)
    await bus.stop_consuming()
    assert finished == [envelope["id"]]


async def _dead_now(bus: Bus) -> bool:
    if isinstance(bus, InProcessBus):
        return bool(bus.dead)
    assert isinstance(bus, RabbitBus)
    return bool(await dead_messages(bus.namespace))


async def test_rabbit_consumers_resume_after_the_broker_comes_back() -> None:
    """aio-pika's robust connection restores channels, queues, bindings and consumers."""
    host, port = "127.0.0.1", int(AMQP_URL.rsplit(":", 1)[1].strip("/"))
    async with TcpProxy(host, port) as proxy, \
            rabbit_bus(namespace(), proxy.url("amqp", "guest:guest", "/")) as bus:
        got = Recorder()
        await bus.consume("resume", ["admin.#"], got)
        await bus.publish("admin.a", message("admin.a"))
        await eventually(lambda: _true(len(got.calls) == 1))
        proxy.cut()
        await asyncio.sleep(0.5)  # the client notices and starts reconnecting (refused)
        proxy.restore()
        # Publishing fails until the connection is back; then the consumer gets the message.
        envelope = message("admin.b")

        async def published() -> bool:
            try:
                await bus.publish("admin.b", envelope)
            except Exception:  # noqa: BLE001 - not reconnected yet
                return False
            return True

        await eventually(published, timeout=15, every=0.2)
        await eventually(lambda: _true(envelope["id"] in got.ids), timeout=10)
        assert proxy.accepted >= 2  # it really reconnected
