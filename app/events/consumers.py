"""Event consumers: each applies an event's effect exactly once, by event id.

`apply_once` runs the effect and records `(consumer, event_id)` in `processed_events` in one
transaction. An effect reads and writes through that transaction only: a handler holds exactly
one pooled connection, so handlers in flight never wait on each other for a second one (the
database refuses such a request, see `app.repos.db.NestedConnection`).

The key row is inserted first, so a concurrent duplicate delivery waits on its lock
and then fails on the primary key, and a finished one fails at once: either way the effect is
skipped. `consumers(services)` is the registry the worker (or `serve`, without a broker) starts;
their services come from the composition root (app/container.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pymysql

from app.adapters.bus import Handler
from app.container import Services
from app.events import AdminAction, CatalogChanged, PlayRecorded
from app.repos import outbox as outbox_rows
from app.repos.db import Database, Tx
from app.services import indexer

log = logging.getLogger(__name__)
Effect = Callable[[Tx, dict[str, Any]], Awaitable[None]]
DUPLICATE_KEY = 1062
# search_index holds a connection only to read: its index writes wait for a group commit together.
SEARCH_PREFETCH_FACTOR = 8


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer: its name (queue `<namespace>.<name>`), the patterns it binds, its handler."""

    name: str
    patterns: list[str]
    handler: Handler
    max_attempts: int = 5
    stop: Callable[[], None] | None = None  # called before consuming stops (end retry loops)
    close: Callable[[], Awaitable[None]] | None = None  # called after: release what it opened
    # Deliveries in flight at once, as a multiple of the share of the pool each consumer gets:
    # more than 1 only for a handler that holds no connection while it waits (search_index).
    prefetch_factor: int = 1


async def apply_once(db: Database, consumer: str, envelope: dict[str, Any], effect: Effect,
                     isolation: str | None = None) -> bool:
    """Apply `effect` unless `consumer` already applied this event; True when it ran now.
    `effect` gets the transaction and must not touch the pool itself."""
    event_id = str(envelope["id"])
    try:
        async with db.transaction(isolation) as tx:
            await outbox_rows.mark_processed(tx, consumer, event_id)
            await effect(tx, envelope)
    except pymysql.err.IntegrityError as exc:
        if exc.args and exc.args[0] == DUPLICATE_KEY and await _processed(db, consumer, event_id):
            log.debug("%s already applied event %s; skipped", consumer, event_id)
            return False
        raise
    return True


async def _processed(db: Database, consumer: str, event_id: str) -> bool:
    return await outbox_rows.processed(db, consumer, event_id)


async def purge_processed(db: Database, older_than_days: int = 30) -> int:
    """Forget idempotency keys older than any redelivery can be; returns how many went."""
    return await outbox_rows.purge_processed(db, older_than_days)


def audit_consumer(services: Services) -> ConsumerSpec:
    """`audit`: one audit_log row per admin event."""
    db, audit = services.db, services.audit

    async def handle(envelope: dict[str, Any]) -> None:
        await apply_once(db, "audit", envelope, audit.record)

    return ConsumerSpec("audit", [AdminAction.pattern], handle)


def play_counts_consumer(services: Services) -> ConsumerSpec:
    """`play.recorded` → the listening history and the song's play count, once per event and,
    beyond that, once per user and play_id (client retries send new events)."""
    db, listening = services.db, services.listening

    async def handle(envelope: dict[str, Any]) -> None:
        if await apply_once(db, "play_counts", envelope, listening.apply):
            await listening.after_apply(envelope)

    return ConsumerSpec("play_counts", [PlayRecorded.pattern], handle)


def search_index_consumer(services: Services) -> ConsumerSpec:
    """`catalog.*.*` → the search index; the process running it is the embedded index's writer.
    Unlike the others it applies an event outside a transaction (`LiveIndex.handle`): it holds a
    connection only for each read, so it takes `SEARCH_PREFETCH_FACTOR` times the deliveries, and
    the index commits them together."""
    live = services.live_index

    return ConsumerSpec(indexer.CONSUMER, [CatalogChanged.pattern], live.handle, stop=live.stop,
                        close=live.close, prefetch_factor=SEARCH_PREFETCH_FACTOR)


def consumers(services: Services, *, search_index: bool = True) -> list[ConsumerSpec]:
    """Every consumer Sonora runs, over `services` (built with `local_cache=False`: their effects
    invalidate the shared store's entries). `search_index=False` leaves search indexing out
    (tests of the other consumers, which must not open an index)."""
    specs = [audit_consumer(services), play_counts_consumer(services)]
    if search_index:
        specs.append(search_index_consumer(services))
    return specs
