"""Message bus port: RabbitMQ through aio-pika (robust connection), or an in-process bus.

Both carry envelopes `{id, type, occurred_at, data}` (app.events) with the same contract
(tests/test_bus_contract.py runs on both):

- `publish(routing_key, envelope)` returns once the message is safely taken (RabbitMQ: the broker's
  publisher confirm) or raises `BusUnavailable`; handlers never run inside `publish`.
- `consume(name, patterns, handler)` gives consumer `name` its own queue `<namespace>.<name>` bound to
  the topic patterns; each message reaches each matching consumer once (at least once).
- A handler that raises is retried (after a short, growing delay) until `max_attempts` deliveries
  have failed; then the message goes to the dead letters (`<namespace>.dead`, or the in-process
  `dead` list). A message that is not a JSON object goes there at once.
- `consume(..., prefetch=n)` lets at most `n` of a consumer's messages be handled at once; the
  backbone derives `n` from its connection pool (app/events/worker.py), so the handlers in flight never
  want more connections than the pool has.
- `stop_consuming(timeout)` stops taking messages and waits up to `timeout` for the handlers in
  flight; those still running then are cancelled (their messages are redelivered, not lost).
- `consumer_stats()` tells, per consumer, the queue depth, the deliveries in flight and the age of
  the oldest, and when it last acknowledged one: what /api/health judges liveness by.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

from app.config import Config

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[None]]
PREFETCH = 32
MAX_ERROR_CHARS = 500


class BusUnavailable(Exception):
    """The broker cannot take a message right now."""


class Bus(Protocol):
    """What Sonora asks of a message bus."""

    name: str

    async def start(self) -> None: ...
    async def publish(self, routing_key: str, envelope: dict[str, Any]) -> None: ...
    async def declare(self, name: str, patterns: list[str]) -> None: ...
    async def consume(
        self, name: str, patterns: list[str], handler: Handler, *, max_attempts: int = 5,
        prefetch: int | None = None,
    ) -> None: ...
    async def stop_consuming(self, timeout: float = 10.0) -> None: ...
    async def consumer_stats(self) -> list[ConsumerStats]: ...
    async def queue_depth(self, name: str) -> int | None: ...
    async def healthy(self) -> bool: ...
    async def close(self) -> None: ...


def _decode(body: bytes) -> dict[str, Any]:
    """The envelope in a message body; ValueError when it is not a JSON object."""
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("the message is not a JSON object")
    return value


def _encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


@dataclass
class ConsumerStats:
    """A consumer's progress as its process sees it (monotonic clock of that process)."""

    name: str
    prefetch: int
    started_at: float = field(default_factory=time.monotonic)
    depth: int | None = None  # messages waiting in its queue (not yet delivered), last sampled
    acked: int = 0  # deliveries settled since it started (handled, retried or dead-lettered)
    last_ack_at: float | None = None
    # The last moment it was keeping up: an ack, or a sample with nothing waiting or in flight.
    progress_at: float = field(default_factory=time.monotonic)
    delivered_at: dict[int, float] = field(default_factory=dict)  # in flight: token -> start

    def begin(self, token: int) -> None:
        now = time.monotonic()
        if not self.delivered_at and not self.depth:
            self.progress_at = now  # work arrives at an idle consumer: its clock starts now
        self.delivered_at[token] = now

    def settle(self, token: int, acked: bool = True) -> None:
        self.delivered_at.pop(token, None)
        if acked:
            self.acked += 1
            self.last_ack_at = self.progress_at = time.monotonic()

    def sampled(self, depth: int | None) -> None:
        self.depth = depth
        if not depth and not self.delivered_at:
            self.progress_at = time.monotonic()

    def report(self, stall_after: float) -> dict[str, Any]:
        """The JSON /api/health shows; `stalled` when work waits and nothing moved for
        `stall_after` seconds, or one delivery has been in flight that long."""
        now = time.monotonic()
        oldest = min(self.delivered_at.values(), default=None)
        oldest_age = None if oldest is None else now - oldest
        backlog = bool(self.depth) or bool(self.delivered_at)
        stalled = backlog and (now - self.progress_at > stall_after
                               or (oldest_age is not None and oldest_age > stall_after))
        return {
            "name": self.name,
            "status": "stalled" if stalled else ("busy" if backlog else "idle"),
            "queue_depth": self.depth,
            "in_flight": len(self.delivered_at),
            "prefetch": self.prefetch,
            "oldest_unacked_seconds": None if oldest_age is None else round(oldest_age, 3),
            "last_ack_seconds_ago": (None if self.last_ack_at is None
                                     else round(now - self.last_ack_at, 3)),
            "acked": self.acked,
        }


class _InFlight:
    """The handlers running, so a stop can wait for them to finish (and cancel the stragglers)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.idle = asyncio.Event()
        self.idle.set()

    @property
    def count(self) -> int:
        return len(self.tasks)

    def enter(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.idle.clear()

    def leave(self) -> None:
        self.tasks.discard(asyncio.current_task())  # type: ignore[arg-type,unused-ignore]
        if not self.tasks:
            self.idle.set()

    async def wait(self, timeout: float) -> None:
        """Wait for the handlers in flight; cancel those still running after `timeout`."""
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
        except TimeoutError:
            stragglers = [t for t in self.tasks if t is not asyncio.current_task()]
            log.warning("%d event handler(s) still running after %.0f s; cancelled (their "
                        "messages are redelivered)", len(stragglers), timeout)
            for task in stragglers:
                task.cancel()
            if stragglers:
                await asyncio.wait(stragglers, timeout=1.0)


# --------------------------------------------------------------------------------------------
# In process


@dataclass
class DeadLetter:
    """A message no handler could take: kept for inspection (in-process bus)."""

    consumer: str
    routing_key: str
    body: bytes
    error: str
    attempts: int

    @property
    def envelope(self) -> dict[str, Any] | None:
        try:
            return _decode(self.body)
        except ValueError:
            return None


@dataclass
class _LocalConsumer:
    name: str
    patterns: list[str]
    handler: Handler
    max_attempts: int
    stats: ConsumerStats
    queue: asyncio.Queue[tuple[str, bytes, int]] = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class InProcessBus:
    """Delivers envelopes to consumers in this process; used when no broker is configured.

    Messages are carried as JSON bytes (so what cannot cross RabbitMQ cannot cross this either), one
    asyncio queue per consumer and `prefetch` draining tasks (one by default: in order). Queued
    messages live in memory only: a crash loses those already marked published in the outbox (a
    clean stop drains them first).
    """

    name = "in-process"

    def __init__(self, namespace: str = "sonora", retry_delay: float = 0.2) -> None:
        self.namespace = namespace
        self.retry_delay = retry_delay
        self.consumers: dict[str, _LocalConsumer] = {}
        self.dead: list[DeadLetter] = []
        self._closed = False

    async def start(self) -> None:
        self._closed = False

    async def publish(self, routing_key: str, envelope: dict[str, Any]) -> None:
        """Queue the envelope for every consumer bound to a matching pattern."""
        await self.publish_raw(routing_key, _encode(envelope))

    async def publish_raw(self, routing_key: str, body: bytes) -> None:
        """Queue a body as it is (used by tests and by tools replaying dead letters)."""
        if self._closed:
            raise BusUnavailable("the in-process bus is closed")
        for consumer in self.consumers.values():
            if any(topic_matches(p, routing_key) for p in consumer.patterns):
                consumer.queue.put_nowait((routing_key, body, 0))

    async def declare(self, name: str, patterns: list[str]) -> None:
        """Nothing to do: in-process queues exist only while their consumer runs in this process."""

    async def consume(
        self, name: str, patterns: list[str], handler: Handler, *, max_attempts: int = 5,
        prefetch: int | None = None,
    ) -> None:
        """Start consumer `name`; its handler gets each matching envelope, `prefetch` (default
        one) at a time."""
        if name in self.consumers:
            raise ValueError(f"consumer {name!r} is already running")
        width = max(1, prefetch or 1)
        consumer = _LocalConsumer(name, list(patterns), handler, max_attempts,
                                  ConsumerStats(name, width))
        consumer.tasks = [asyncio.create_task(self._drain(consumer), name=f"bus-consumer-{name}")
                          for _ in range(width)]
        self.consumers[name] = consumer

    async def _drain(self, consumer: _LocalConsumer) -> None:
        while True:
            routing_key, body, failures = await consumer.queue.get()
            token = id(asyncio.current_task())
            consumer.stats.begin(token)
            settled = False
            try:
                await self._deliver(consumer, routing_key, body, failures)
                settled = True
            finally:
                consumer.stats.settle(token, settled)
                consumer.queue.task_done()

    async def _deliver(self, consumer: _LocalConsumer, routing_key: str, body: bytes,
                       failures: int) -> None:
        try:
            envelope = _decode(body)
        except ValueError as exc:
            self.dead.append(DeadLetter(consumer.name, routing_key, body, _describe(exc), failures))
            log.error("malformed message for %s went to the dead letters", consumer.name)
            return
        try:
            await consumer.handler(envelope)
        except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
            failures += 1
            if failures < consumer.max_attempts:
                log.warning("%s failed on %s (attempt %d): %s", consumer.name, routing_key,
                            failures, exc)
                await asyncio.sleep(_retry_delay(self.retry_delay, failures))
                consumer.queue.put_nowait((routing_key, body, failures))
            else:
                log.error("%s gave up on %s after %d attempts: %s", consumer.name, routing_key,
                          failures, exc)
                self.dead.append(DeadLetter(consumer.name, routing_key, body, _describe(exc),
                                            failures))

    async def stop_consuming(self, timeout: float = 10.0) -> None:
        """Let the consumers finish what is queued (up to `timeout`), then stop their tasks."""
        consumers = list(self.consumers.values())
        self.consumers.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(c.queue.join() for c in consumers)), timeout
            )
        for consumer in consumers:
            for task in consumer.tasks:
                task.cancel()
        for consumer in consumers:
            for task in consumer.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if not consumer.queue.empty():
                log.warning("%d event(s) for %s were still queued at stop", consumer.queue.qsize(),
                            consumer.name)

    async def consumer_stats(self) -> list[ConsumerStats]:
        """Each running consumer's progress, its depth being what waits in its queue."""
        for consumer in self.consumers.values():
            consumer.stats.sampled(consumer.queue.qsize())
        return [c.stats for c in self.consumers.values()]

    async def queue_depth(self, name: str) -> int | None:
        """Messages waiting for consumer `name`; None when it does not run in this process."""
        consumer = self.consumers.get(name)
        return None if consumer is None else consumer.queue.qsize()

    async def healthy(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        await self.stop_consuming()
        self._closed = True


# --------------------------------------------------------------------------------------------
# RabbitMQ


@dataclass
class _RabbitConsumer:
    name: str
    queue: AbstractQueue
    channel: AbstractRobustChannel
    tag: str
    stats: ConsumerStats


class RabbitBus:
    """RabbitMQ: a robust connection, a confirming channel and the `<namespace>.events` exchange.

    Each consumer gets its own channel (prefetch as asked, `PREFETCH` by default; one consumer's
    channel error cannot stop the others) and its own durable queue. aio-pika's robust connection
    re-declares the queues and bindings and re-registers the consumers after a reconnection
    (tests/test_bus_contract.py checks it through a cut proxy).
    """

    name = "rabbitmq"

    def __init__(self, url: str, namespace: str = "sonora", timeout: float = 5.0,
                 retry_delay: float = 0.2, reconnect_interval: float = 2.0) -> None:
        self.url = url
        self.namespace = namespace
        self.timeout = timeout
        self.retry_delay = retry_delay
        self.reconnect_interval = reconnect_interval
        self.connection: AbstractRobustConnection | None = None
        self.channel: aio_pika.abc.AbstractRobustChannel | None = None
        self.exchange: aio_pika.abc.AbstractExchange | None = None
        self.consumers: list[_RabbitConsumer] = []
        self.declared_queues: set[str] = set()  # what this bus declared (tools and tests clean up)
        self._inflight = _InFlight()
        self._stopping = False

    @property
    def exchange_name(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dead_queue_name(self) -> str:
        return f"{self.namespace}.dead"

    def queue_name(self, consumer: str) -> str:
        """The durable queue of a consumer."""
        return f"{self.namespace}.{consumer}"

    async def start(self) -> None:
        """Connect and declare the exchange; raises BusUnavailable when the broker is unreachable."""
        try:
            self.connection = await asyncio.wait_for(
                aio_pika.connect_robust(
                    self.url, timeout=self.timeout, reconnect_interval=self.reconnect_interval
                ),
                self.timeout + 1,
            )
            self.channel = await self.connection.channel(publisher_confirms=True)
            assert self.channel is not None
            self.exchange = await self.channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
            await self.close()
            raise BusUnavailable(f"cannot reach RabbitMQ ({exc or type(exc).__name__})") from exc
        self._stopping = False

    async def publish(self, routing_key: str, envelope: dict[str, Any]) -> None:
        """Publish a persistent message and wait for the broker's confirm."""
        message = aio_pika.Message(
            _encode(envelope),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(envelope.get("id", "")),
            type=routing_key,
        )
        await self._publish(message, routing_key)

    async def publish_raw(self, routing_key: str, body: bytes) -> None:
        """Publish a body as it is (used by tests and by tools replaying dead letters)."""
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                   type=routing_key)
        await self._publish(message, routing_key)

    async def _publish(self, message: aio_pika.Message, routing_key: str) -> None:
        if self.exchange is None or self.connection is None or self.connection.is_closed:
            raise BusUnavailable("not connected to RabbitMQ")
        try:
            await asyncio.wait_for(
                self.exchange.publish(message, routing_key=routing_key), self.timeout
            )
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError, RuntimeError) as exc:
            raise BusUnavailable(str(exc) or type(exc).__name__) from exc

    async def declare(self, name: str, patterns: list[str]) -> None:
        """Declare consumer `name`'s durable queue and bindings without consuming.

        The publishing side calls this for every consumer, so events published before the worker
        ever ran wait in their queues instead of being dropped as unroutable.
        """
        if self.channel is None or self.connection is None or self.connection.is_closed:
            raise BusUnavailable("not connected to RabbitMQ")
        try:
            # Bounded: a robust channel waits for its reconnection forever otherwise.
            await asyncio.wait_for(self._declare_on(self.channel, name, patterns), self.timeout)
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError, RuntimeError) as exc:
            raise BusUnavailable(f"cannot declare queue of {name} ({_describe(exc)})") from exc

    async def _declare_on(self, channel: aio_pika.abc.AbstractChannel, name: str,
                          patterns: list[str]) -> AbstractQueue:
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # The dead-letter queue comes with the first consumer queue, not with `start()`: a process
        # that only publishes (and every test app) then leaves no queue behind on the broker.
        await channel.declare_queue(self.dead_queue_name, durable=True)
        self.declared_queues.add(self.dead_queue_name)
        queue = await channel.declare_queue(self.queue_name(name), durable=True)
        self.declared_queues.add(queue.name)
        for pattern in patterns:
            await queue.bind(exchange, pattern)
        return queue

    async def consume(
        self, name: str, patterns: list[str], handler: Handler, *, max_attempts: int = 5,
        prefetch: int | None = None,
    ) -> None:
        """Declare `<namespace>.<name>`, bind it to each pattern and start handling its messages,
        at most `prefetch` (default `PREFETCH`) at once."""
        if self.connection is None or self.connection.is_closed:
            raise BusUnavailable("not connected to RabbitMQ")
        width = max(1, prefetch or PREFETCH)
        stats = ConsumerStats(name, width)
        self._stopping = False  # consuming again after a stop_consuming()
        try:
            channel = await self.connection.channel(publisher_confirms=True)
            assert isinstance(channel, AbstractRobustChannel)
            await channel.set_qos(prefetch_count=width)
            queue = await self._declare_on(channel, name, patterns)

            async def on_message(message: AbstractIncomingMessage) -> None:
                await self._on_message(name, queue.name, channel, message, handler, max_attempts,
                                       stats)

            tag = await queue.consume(on_message)
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
            raise BusUnavailable(f"cannot start consumer {name} ({_describe(exc)})") from exc
        self.consumers.append(_RabbitConsumer(name, queue, channel, tag, stats))

    async def _on_message(
        self, consumer: str, queue_name: str, channel: AbstractRobustChannel,
        message: AbstractIncomingMessage, handler: Handler, max_attempts: int,
        stats: ConsumerStats,
    ) -> None:
        if self._stopping:
            # Arrived while stopping: hand it back to the broker for the next run.
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return
        self._inflight.enter()
        token = id(message)
        stats.begin(token)
        settled = False
        try:
            await self._handle(consumer, queue_name, channel, message, handler, max_attempts)
            settled = True
        except Exception:  # noqa: BLE001 - the broker redelivers what was not acked
            log.exception("could not settle a message of %s; the broker will redeliver it", consumer)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
        finally:
            stats.settle(token, settled)
            self._inflight.leave()

    async def _handle(
        self, consumer: str, queue_name: str, channel: AbstractRobustChannel,
        message: AbstractIncomingMessage, handler: Handler, max_attempts: int,
    ) -> None:
        headers = dict(message.headers or {})
        headers.setdefault("x-routing-key", message.routing_key or "")
        try:
            envelope = _decode(message.body)
        except ValueError as exc:
            log.error("malformed message for %s went to %s", consumer, self.dead_queue_name)
            await self._dead_letter(channel, message, headers, consumer, exc)
            await message.ack()
            return
        try:
            await handler(envelope)
        except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
            failures = _int(headers.get("x-attempts")) + 1
            if failures < max_attempts:
                log.warning("%s failed on %s (attempt %d): %s", consumer, envelope.get("type"),
                            failures, exc)
                await asyncio.sleep(_retry_delay(self.retry_delay, failures))
                # A copy goes to the back of the same queue with the count; then the original is
                # acked. A crash between the two delivers it twice, which consumers tolerate.
                headers["x-attempts"] = failures
                await self._republish(channel, message, headers, queue_name)
            else:
                log.error("%s gave up on %s after %d attempts: %s", consumer, envelope.get("type"),
                          failures, exc)
                headers["x-attempts"] = failures
                await self._dead_letter(channel, message, headers, consumer, exc)
        await message.ack()

    async def _dead_letter(self, channel: AbstractRobustChannel, message: AbstractIncomingMessage,
                           headers: dict[str, Any], consumer: str, exc: BaseException) -> None:
        headers["x-error"] = _describe(exc)
        headers["x-consumer"] = consumer
        await self._republish(channel, message, headers, self.dead_queue_name)

    async def _republish(self, channel: AbstractRobustChannel, message: AbstractIncomingMessage,
                         headers: dict[str, Any], queue_name: str) -> None:
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            type=message.type,
        )
        await asyncio.wait_for(
            channel.default_exchange.publish(copy, routing_key=queue_name), self.timeout
        )

    async def consumer_stats(self) -> list[ConsumerStats]:
        """Each consumer's progress; its depth is the broker's count of messages ready."""
        for consumer in list(self.consumers):
            try:
                # Re-declaring with the same arguments is a no-op that reports the counts.
                ok = await asyncio.wait_for(consumer.queue.declare(), self.timeout)
                consumer.stats.sampled(int(ok.message_count or 0))
            except Exception:  # noqa: BLE001 - unknown depth while the broker is unreachable
                consumer.stats.sampled(None)
        return [c.stats for c in self.consumers]

    async def queue_depth(self, name: str) -> int | None:
        """Messages ready in consumer `name`'s queue (asked of the broker; None if it cannot say).
        For a process that does not consume: the web process while no worker reports."""
        if self.channel is None or self.connection is None or self.connection.is_closed:
            return None
        try:
            queue = await asyncio.wait_for(
                self.channel.declare_queue(self.queue_name(name), durable=True, robust=False),
                min(self.timeout, 1.0))
            declared = queue.declaration_result
            return int(declared.message_count or 0) if declared is not None else None
        except Exception:  # noqa: BLE001 - unknown while the broker cannot answer
            return None

    async def stop_consuming(self, timeout: float = 10.0) -> None:
        """Cancel the consumers, wait for handlers in flight (cancelling those still running after
        `timeout`: unacked, the broker redelivers them), close their channels."""
        self._stopping = True
        consumers, self.consumers = self.consumers, []
        for consumer in consumers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.queue.cancel(consumer.tag), self.timeout)
        await self._inflight.wait(timeout)
        for consumer in consumers:
            with contextlib.suppress(Exception):
                await consumer.channel.close()

    async def healthy(self) -> bool:
        return (
            self.connection is not None
            and not self.connection.is_closed
            and self.channel is not None
            and not self.channel.is_closed
        )

    async def close(self) -> None:
        if self.consumers:
            await self.stop_consuming()
        if self.connection is not None:
            try:
                await self.connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; nothing to keep
                log.debug("error while closing the RabbitMQ connection", exc_info=True)
        self.connection = self.channel = self.exchange = None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _retry_delay(base: float, failures: int) -> float:
    """Waits before the retries: base, 2 base, 4 base, ... capped at 5 s."""
    return float(min(base * 2 ** (failures - 1), 5.0))


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


# While the broker is down at start, how often `bus_context` tries again.
RECONNECT_EVERY = 5.0


@contextlib.asynccontextmanager
async def bus_context(config: Config) -> AsyncIterator[Bus]:
    """The configured bus, started for the block and closed after it. When the broker is down at
    start the block runs anyway and the bus keeps trying in the background (events wait in the
    outbox until it is reachable)."""
    bus = make_bus(config.amqp_url, config.namespace)
    retry: asyncio.Task[None] | None = None
    try:
        try:
            await bus.start()
        except BusUnavailable as exc:
            log.warning("%s; events wait in the outbox until it is reachable", exc)
            retry = asyncio.create_task(_keep_starting(bus), name="bus-reconnect")
        yield bus
    finally:
        if retry is not None:
            retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retry
        await bus.close()


async def _keep_starting(bus: Bus) -> None:
    while True:
        await asyncio.sleep(RECONNECT_EVERY)
        try:
            await bus.start()
        except BusUnavailable:
            continue
        log.info("connected to RabbitMQ")
        return
