"""Message bus port: RabbitMQ through aio-pika (robust connection), or an in-process bus.

The event backbone (outbox relay, consumers, dead letters) builds on this port; here it owns the
connection's lifecycle, the topic exchange and the health answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aio_pika
from aio_pika.abc import AbstractRobustConnection

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[None]]


class BusUnavailable(Exception):
    """The broker cannot take a message right now."""


class Bus(Protocol):
    """What Sonora asks of a message bus."""

    name: str

    async def start(self) -> None: ...
    async def publish(self, routing_key: str, envelope: dict[str, Any]) -> None: ...
    async def healthy(self) -> bool: ...
    async def close(self) -> None: ...


class InProcessBus:
    """Delivers envelopes to handlers in this process; used when no broker is configured."""

    name = "in-process"

    def __init__(self, namespace: str = "sonora") -> None:
        self.namespace = namespace
        self.handlers: list[tuple[str, Handler]] = []

    async def start(self) -> None:
        return None

    def subscribe(self, pattern: str, handler: Handler) -> None:
        self.handlers.append((pattern, handler))

    async def publish(self, routing_key: str, envelope: dict[str, Any]) -> None:
        for pattern, handler in self.handlers:
            if topic_matches(pattern, routing_key):
                await handler(envelope)

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        self.handlers.clear()


class RabbitBus:
    """RabbitMQ: a robust connection, a confirming channel and the `<namespace>.events` exchange."""

    name = "rabbitmq"

    def __init__(self, url: str, namespace: str = "sonora", timeout: float = 5.0) -> None:
        self.url = url
        self.namespace = namespace
        self.timeout = timeout
        self.connection: AbstractRobustConnection | None = None
        self.channel: aio_pika.abc.AbstractRobustChannel | None = None
        self.exchange: aio_pika.abc.AbstractExchange | None = None

    @property
    def exchange_name(self) -> str:
        return f"{self.namespace}.events"

    async def start(self) -> None:
        """Connect and declare the exchange; raises BusUnavailable when the broker is unreachable."""
        try:
            self.connection = await asyncio.wait_for(
                aio_pika.connect_robust(self.url, timeout=self.timeout), self.timeout + 1
            )
            self.channel = await self.connection.channel(publisher_confirms=True)
            assert self.channel is not None
            self.exchange = await self.channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
            await self.close()
            raise BusUnavailable(f"cannot reach RabbitMQ ({exc or type(exc).__name__})") from exc

    async def publish(self, routing_key: str, envelope: dict[str, Any]) -> None:
        """Publish a persistent message and wait for the broker's confirm."""
        if self.exchange is None or self.connection is None or self.connection.is_closed:
            raise BusUnavailable("not connected to RabbitMQ")
        message = aio_pika.Message(
            json.dumps(envelope, separators=(",", ":")).encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(envelope.get("id", "")),
            type=routing_key,
        )
        try:
            await asyncio.wait_for(
                self.exchange.publish(message, routing_key=routing_key), self.timeout
            )
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError, RuntimeError) as exc:
            raise BusUnavailable(str(exc) or type(exc).__name__) from exc

    async def healthy(self) -> bool:
        return (
            self.connection is not None
            and not self.connection.is_closed
            and self.channel is not None
            and not self.channel.is_closed
        )

    async def close(self) -> None:
        if self.connection is not None:
            try:
                await self.connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; nothing to keep
                log.debug("error while closing the RabbitMQ connection", exc_info=True)
        self.connection = self.channel = self.exchange = None


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: `*` is one word, `#` is zero or more words."""
    p, k = pattern.split("."), key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(p):
            return j == len(k)
        if p[i] == "#":
            return any(match(i + 1, jj) for jj in range(j, len(k) + 1))
        return j < len(k) and (p[i] == "*" or p[i] == k[j]) and match(i + 1, j + 1)

    return match(0, 0)


def make_bus(url: str, namespace: str) -> Bus:
    """The configured bus: RabbitMQ when a URL is set, otherwise the in-process one."""
    return RabbitBus(url, namespace) if url else InProcessBus(namespace)
