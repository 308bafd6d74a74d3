"""The worker process (`python -m app worker`) and the backbone that `serve` runs in process.

Who runs what (SPEC 2 and 4):

- broker configured: the worker runs the consumers and an outbox relay; `serve` runs an outbox
  relay too (`run_consumers=False`) so its own events go out as soon as a request commits
  (`relay.wake()`), without waiting for the worker's next poll. `FOR UPDATE SKIP LOCKED` makes the
  two relays share the outbox without publishing a row twice while both are alive.
- no broker: `serve` runs the relay and the consumers over the in-process bus
  (`run_consumers=True`); the worker has nothing to do and says so.

Pool and prefetch are sized together: every handler holds exactly one connection (its
`apply_once` transaction; `app.repos.db` refuses a second one from inside it), and the consumers'
prefetch adds up to less than the pool minus what the relay and housekeeping need, so handlers in
flight never queue for connections behind each other - and could not deadlock even if they did.
search_index is the exception that proves it: its handler holds a connection only for one read at
a time and none while the index writes, so it takes several times its share
(`ConsumerSpec.prefetch_factor`); its handlers may queue for a connection, never while holding one.

Whoever runs the consumers samples their progress every `HEARTBEAT_EVERY` seconds; each worker
also leaves it in the key-value store under a key of its own, listed in `WORKERS_KEY`, for the web
process's /api/health and dashboard, which merge every live worker's report (any number of
workers may run, on any machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from typing import Any

from app.adapters.bus import Bus, BusUnavailable, RabbitBus
from app.adapters.cache import Cache
from app.adapters.kv import KeyValue, KVUnavailable, MemoryKV, kv_context
from app.config import Config
from app.container import build_services
from app.events.consumers import ConsumerSpec, consumers, purge_processed
from app.events.outbox import OutboxRelay
from app.repos.db import Database, database_context

log = logging.getLogger(__name__)
HOUSEKEEPING_EVERY = 3600.0
PUBLISHED_KEEP_DAYS = 7
PROCESSED_KEEP_DAYS = 30
# Stopping: the relay gets RELAY_GRACE to finish its batch, the handlers in flight DRAIN_SECONDS
# (then they are cancelled and their messages redelivered): SIGTERM returns within ~8 s.
RELAY_GRACE = 2.0
DRAIN_SECONDS = 5.0
IN_PROCESS_DRAIN_SECONDS = 10.0
# Connections kept out of the consumers' share: the relay and the housekeeping hold one each.
RESERVED_CONNECTIONS = 2
HEARTBEAT_EVERY = 1.0
HEARTBEAT_KEY = "backbone:consumers"  # + ":<worker id>", one key per worker
WORKERS_KEY = "backbone:workers"  # the ids of the workers that reported lately (a JSON list)
HEARTBEAT_TTL = 10.0
WORKERS_TTL = 3600.0


def consumer_prefetch(pool_size: int, consumers: int, reserved: int = RESERVED_CONNECTIONS) -> int:
    """Deliveries each consumer takes at once so that together they hold fewer connections than
    the pool has beyond `reserved` (at least one each)."""
    return max(1, (pool_size - reserved) // max(1, consumers))


def consumers_report(heartbeat: dict[str, Any] | None) -> dict[str, Any]:
    """The `consumers` part of /api/health from a heartbeat (None: no consumer process seen)."""
    if heartbeat is None:
        return {"status": "unknown", "reported_seconds_ago": None, "items": []}
    # A stopped worker deletes its heartbeat; one that died leaves it to expire (HEARTBEAT_TTL).
    items = list(heartbeat.get("items") or [])
    stalled = any(item.get("status") == "stalled" for item in items)
    return {"status": "stalled" if stalled else "ok",
            "reported_seconds_ago": round(max(0.0, time.time() - float(heartbeat["at"])), 3),
            "items": items}


def merge_heartbeats(beats: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One heartbeat from several workers': per consumer, the queue's depth, what all of them
    hold and have acked, and `stalled` only when no worker makes progress on it."""
    if not beats:
        return None
    by_name: dict[str, list[dict[str, Any]]] = {}
    for beat in beats:
        for item in beat.get("items") or []:
            by_name.setdefault(str(item["name"]), []).append(item)

    def pick(reports: list[dict[str, Any]], key: str, how: Any) -> Any:
        values = [r[key] for r in reports if r.get(key) is not None]
        return how(values) if values else None

    items = []
    for name, reports in by_name.items():
        statuses = {r.get("status") for r in reports}
        status = ("stalled" if statuses == {"stalled"}
                  else "busy" if statuses & {"busy", "stalled"} else "idle")
        items.append({
            "name": name, "status": status,
            "queue_depth": pick(reports, "queue_depth", max),
            "in_flight": pick(reports, "in_flight", sum),
            "prefetch": pick(reports, "prefetch", sum),
            "oldest_unacked_seconds": pick(reports, "oldest_unacked_seconds", max),
            "last_ack_seconds_ago": pick(reports, "last_ack_seconds_ago", min),
            "acked": pick(reports, "acked", sum),
            "workers": len(reports),
        })
    return {"at": max(float(b["at"]) for b in beats), "items": items}


class Backbone:
    """The relay (and, when asked, the consumers and their housekeeping) of one process."""

    def __init__(self, db: Database, bus: Bus, relay: OutboxRelay, specs: list[ConsumerSpec],
                 run_consumers: bool, *, prefetch: int = 1, kv: KeyValue | None = None,
                 stall_after: float = 30.0, cache: Cache | None = None) -> None:
        self.db = db
        self.cache = cache  # the consumers' read-through cache, settled when they stop
        self.bus = bus
        self.relay = relay
        self.specs = specs
        self.run_consumers = run_consumers
        self.prefetch = prefetch
        self.kv = kv
        self.stall_after = stall_after
        self.heartbeat: dict[str, Any] | None = None  # the last sample, as the worker stores it
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._unattended: dict[str, float] = {}  # no worker reporting: queue -> waiting since
        self._tasks: list[asyncio.Task[None]] = []

    async def _start(self) -> None:
        # Consumers first: with a broker their queues must exist before anything is published.
        if self.run_consumers:
            try:
                for spec in self.specs:
                    prefetch = self.prefetch * spec.prefetch_factor
                    await self.bus.consume(spec.name, spec.patterns, spec.handler,
                                           max_attempts=spec.max_attempts, prefetch=prefetch)
                    log.info("consuming %s for %s (prefetch %d)", ", ".join(spec.patterns),
                             spec.name, prefetch)
            except BaseException:
                await self.bus.stop_consuming()
                raise
            self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
            self._tasks.append(asyncio.create_task(self._monitor(), name="consumer-monitor"))
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))

    async def sample(self) -> dict[str, Any]:
        """Sample the consumers' progress now: `{"at": epoch seconds, "items": [...]}`."""
        stats = await self.bus.consumer_stats()
        self.heartbeat = {"at": time.time(), "pid": os.getpid(),
                          "items": [s.report(self.stall_after) for s in stats]}
        return self.heartbeat

    async def liveness(self) -> dict[str, Any]:
        """Each consumer's lag, for /api/health and the dashboard: sampled now when this process
        runs the consumers, else the worker's heartbeat; with no worker reporting, the broker's
        queue depths, a queue left waiting longer than the stall bound counting as stalled."""
        if self.run_consumers:
            try:
                heartbeat: dict[str, Any] | None = await asyncio.wait_for(self.sample(), 2.0)
            except Exception:  # noqa: BLE001 - the last sample stands in
                heartbeat = self.heartbeat
            return {"source": "in-process", **consumers_report(heartbeat)}
        heartbeat = None
        if self.kv is not None:
            try:
                heartbeat = merge_heartbeats(await asyncio.wait_for(self._beats(), 2.0))
            except Exception:  # noqa: BLE001 - unknown while the store is unreachable
                heartbeat = None
        if heartbeat is not None:
            self._unattended.clear()
            return {"source": "worker", **consumers_report(heartbeat)}
        return {"source": "worker", **await self._unattended_report()}

    async def _workers(self) -> list[str]:
        assert self.kv is not None
        raw = await self.kv.get(WORKERS_KEY)
        return [str(w) for w in json.loads(raw)] if raw else []

    async def _beats(self) -> list[dict[str, Any]]:
        """The heartbeats of the workers alive now (a dead one's has expired)."""
        assert self.kv is not None
        workers = await self._workers()
        raws = await self.kv.mget([f"{HEARTBEAT_KEY}:{w}" for w in workers]) if workers else []
        return [json.loads(raw) for raw in raws if raw]

    async def _enrol(self, present: bool) -> None:
        """Keep this worker's id in (or out of) the list, dropping those whose heartbeat expired.
        Two workers writing at once may drop each other's id: each puts it back a beat later."""
        assert self.kv is not None
        workers = await self._workers()
        raws = await self.kv.mget([f"{HEARTBEAT_KEY}:{w}" for w in workers]) if workers else []
        live = {w for w, raw in zip(workers, raws, strict=True) if raw and w != self.worker_id}
        if present:
            live.add(self.worker_id)
        if live != set(workers):
            await self.kv.set(WORKERS_KEY, json.dumps(sorted(live)).encode(), WORKERS_TTL)

    async def _unattended_report(self) -> dict[str, Any]:
        items, now = [], time.monotonic()
        reachable = await self.bus.healthy()
        for spec in self.specs:
            depth = await self.bus.queue_depth(spec.name) if reachable else None
            if depth:
                waited = now - self._unattended.setdefault(spec.name, now)
            else:
                self._unattended.pop(spec.name, None)
                waited = None
            stalled = waited is not None and waited > self.stall_after
            items.append({
                "name": spec.name,
                "status": "stalled" if stalled else (
                    "waiting" if depth else ("idle" if depth == 0 else "unknown")),
                "queue_depth": depth, "in_flight": None, "prefetch": None,
                "oldest_unacked_seconds": None, "last_ack_seconds_ago": None, "acked": None,
            })
        stalled = any(item["status"] == "stalled" for item in items)
        return {"status": "stalled" if stalled else "unknown", "reported_seconds_ago": None,
                "items": items}

    async def _monitor(self) -> None:
        while True:
            try:
                heartbeat = await self.sample()
                for item in heartbeat["items"]:
                    if item["status"] == "stalled":
                        log.warning("consumer %s is stalled: %s", item["name"], item)
                if self.kv is not None:
                    with contextlib.suppress(KVUnavailable):
                        await self.kv.set(f"{HEARTBEAT_KEY}:{self.worker_id}",
                                          json.dumps(heartbeat).encode(), HEARTBEAT_TTL)
                        await self._enrol(True)
            except Exception:  # noqa: BLE001 - the next round samples again
                log.warning("could not sample the consumers", exc_info=True)
            await asyncio.sleep(HEARTBEAT_EVERY)

    async def _housekeeping(self) -> None:
        while True:
            try:
                await self.relay.purge_published(PUBLISHED_KEEP_DAYS)
                await purge_processed(self.db, PROCESSED_KEEP_DAYS)
            except Exception:  # noqa: BLE001 - housekeeping waits for the next round
                log.warning("outbox housekeeping failed", exc_info=True)
            await asyncio.sleep(HOUSEKEEPING_EVERY)

    async def stop(self) -> None:
        """Stop the relay, then stop taking messages and let the handlers in flight finish.

        The relay goes first: an in-process bus drains what was already published, and nothing
        new is marked published once no consumer can take it (it waits in the outbox instead).
        """
        self.relay.stop()
        for task in self._tasks:
            if task.get_name() != "outbox-relay":
                task.cancel()
        for task in self._tasks:
            # The relay finishes its batch; one stuck on an unreachable broker is cancelled (its
            # events stay in the outbox, since nothing is marked published before the confirm).
            done, _ = await asyncio.wait([task], timeout=RELAY_GRACE)
            if not done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for spec in self.specs:
            if spec.stop is not None:
                spec.stop()
        if self.run_consumers:
            # The in-process bus loses what it still queues at stop (already marked published),
            # so it gets longer to drain; the broker keeps and redelivers what the worker leaves.
            await self.bus.stop_consuming(DRAIN_SECONDS if isinstance(self.bus, RabbitBus)
                                          else IN_PROCESS_DRAIN_SECONDS)
            if self.kv is not None:  # no stale heartbeat: health reads the queues instead
                with contextlib.suppress(KVUnavailable):
                    await self.kv.delete(f"{HEARTBEAT_KEY}:{self.worker_id}")
                    await self._enrol(False)
        for spec in self.specs:
            if spec.close is not None:
                await spec.close()
        if self.cache is not None:  # values the handlers loaded reach the store before it closes
            await self.cache.settle()


async def start_backbone(config: Config, db: Database, bus: Bus, *, run_consumers: bool,
                         kv: KeyValue | None = None, prefetch: int | None = None) -> Backbone:
    """Start the outbox relay and, when `run_consumers`, every consumer; `stop()` undoes it.

    `bus` must be started (or, for RabbitMQ, may still be connecting: the relay keeps the events in
    the outbox until it can publish). `config` is taken for the settings later consumers need.
    `prefetch` overrides the one derived from the pool (tests push more than the pool holds).
    The consumers' services come from `build_services` over `kv` (without one, an in-process store).
    """
    store = kv if kv is not None else MemoryKV()
    services = build_services(config, db, store, local_cache=False)
    specs = consumers(services)

    async def declare_queues() -> None:
        for spec in specs:
            await bus.declare(spec.name, spec.patterns)

    relay = OutboxRelay(db, bus, prepare=declare_queues)
    # The worker's pool is its own; `serve` shares its pool with requests, so keeps half for them.
    reserved = RESERVED_CONNECTIONS if isinstance(bus, RabbitBus) else db.maxsize // 2
    if prefetch is None:
        prefetch = consumer_prefetch(db.maxsize, len(specs), reserved)
    backbone = Backbone(db, bus, relay, specs, run_consumers, prefetch=prefetch,
                        kv=kv if isinstance(bus, RabbitBus) else None,
                        stall_after=config.consumer_stall_seconds, cache=services.cache)
    await backbone._start()
    return backbone


class Worker:
    """The worker process: a database pool, the broker, the relay and every consumer."""

    db: Database  # opened by start()
    kv: KeyValue

    def __init__(self, config: Config) -> None:
        self.config = config
        self.bus = RabbitBus(config.amqp_url, config.namespace)
        self.backbone: Backbone | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._resources = contextlib.AsyncExitStack()

    async def start(self) -> None:
        """Open the database (migrating it) and start consuming; waits for the broker if down."""
        self.db = await self._resources.enter_async_context(
            database_context(self.config.database_url, maxsize=self.config.worker_db_pool))
        self.kv = await self._resources.enter_async_context(kv_context(self.config))
        self._connecting = asyncio.create_task(self._connect())
        # Returns once running, unless the broker is down: then start-up goes on in the background.
        await asyncio.wait([self._connecting], timeout=self.bus.timeout + 2)

    async def _connect(self) -> None:
        delay = 1.0
        while True:
            try:
                await self.bus.start()
                self.backbone = await start_backbone(self.config, self.db, self.bus,
                                                     run_consumers=True, kv=self.kv)
                break
            except BusUnavailable as exc:
                await self.bus.close()
                log.warning("%s; retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        log.info("worker running (namespace %s)", self.config.namespace)

    async def stop(self) -> None:
        """Stop consuming, finish handlers in flight, close the broker and the database."""
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self.backbone is not None:
            await self.backbone.stop()
        await self.bus.close()
        await self._resources.aclose()  # the store, then the database


async def _serve(config: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(config)
    try:
        await worker.start()
        await stop.wait()
        log.info("stopping the worker")
    finally:
        await worker.stop()
    return 0


def run(config: Config) -> int:
    """`python -m app worker`: run until SIGTERM/SIGINT, then stop cleanly; returns the exit code."""
    if not config.amqp_url:
        log.warning("no broker configured (SONORA_AMQP_URL): `serve` runs the consumers itself")
        return 0
    return asyncio.run(_serve(config))
