"""The outbox relay: publishes the events that writes recorded with `app.events.emit`.

Rows are claimed with `SELECT ... FOR UPDATE SKIP LOCKED`, so any number of relays (the web
process and the worker) can run against one database: each row is locked by one relay at a time and
the others skip it. A row is marked published only after the broker confirmed it; when the broker
is down the rows simply stay (with `attempts` and `last_error` noted) and the relay backs off.
Delivery is therefore at least once - a crash between the confirm and the commit publishes an event
again - and consumers are idempotent by event id (app/events/consumers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

import pymysql

from app.adapters.bus import Bus, BusUnavailable
from app.repos import outbox as outbox_rows
from app.repos.db import Database, DatabaseUnavailable, Tx

log = logging.getLogger(__name__)
MAX_BACKOFF = 5.0

class OutboxRelay:
    """Moves committed events from the outbox table to the bus."""

    def __init__(self, db: Database, bus: Bus, *, batch: int = 100, poll_interval: float = 0.5,
                 prepare: Callable[[], Awaitable[None]] | None = None) -> None:
        """`prepare` runs (until it once succeeds) before the first publication: it declares the
        consumers' queues, so no event is published before a queue exists to keep it."""
        self.db = db
        self.bus = bus
        self.batch = batch
        self.poll_interval = poll_interval
        self.published = 0  # events this relay published since it started
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._backoff = 0.0
        self._prepare = prepare
        # Woken by every commit through `db` that recorded events: writers need not know of us.
        db.on_events_committed(self.wake)

    def wake(self) -> None:
        """Publish now rather than at the next poll (a writer in this process just committed)."""
        self._wake.set()

    def stop(self) -> None:
        """Ask `run()` to return after the batch in progress."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Publish pending events until `stop()`: at once when woken, else every `poll_interval`."""
        self._stop.clear()
        while not self._stop.is_set():
            self._wake.clear()
            try:
                count = await self.publish_pending()
            except BusUnavailable as exc:
                self._backoff = min(max(self._backoff * 2, 0.1), MAX_BACKOFF)
                log.warning("event bus unavailable (%s); events wait in the outbox, retry in %.1f s",
                            exc, self._backoff)
                await self._sleep(self._stop, self._backoff)
                continue
            except (DatabaseUnavailable, pymysql.err.MySQLError) as exc:
                self._backoff = min(max(self._backoff * 2, 0.1), MAX_BACKOFF)
                log.warning("outbox relay cannot read the outbox (%s); retry in %.1f s", exc,
                            self._backoff)
                await self._sleep(self._stop, self._backoff)
                continue
            self._backoff = 0.0
            if count < self.batch:  # a full batch means more may be waiting: go again at once
                await self._sleep(self._wake, self.poll_interval)

    @staticmethod
    async def _sleep(event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    async def publish_pending(self) -> int:
        """Publish one batch of pending events; returns how many were published.

        Raises BusUnavailable (after recording the failure on the row and committing what was
        published before it) when the broker cannot take a message.
        """
        if self._prepare is not None:
            await self._prepare()
            self._prepare = None
        failure: BusUnavailable | None = None
        # READ COMMITTED: the locking read takes no gap locks, so writers inserting new outbox rows
        # meanwhile never deadlock with the relay (under REPEATABLE READ they did).
        async with self.db.transaction(isolation="READ COMMITTED") as tx:
            rows = await outbox_rows.claim(tx, self.batch)
            done: list[int] = []
            for row in rows:
                try:
                    await self.bus.publish(row["type"], json.loads(row["payload"]))
                except BusUnavailable as exc:
                    # The broker is down: the rest of the batch would fail too.
                    failure = exc
                    await self._note_failure(tx, row["id"], exc)
                    break
                except Exception as exc:  # noqa: BLE001 - one bad row must not block the others
                    log.exception("cannot publish outbox row %s", row["id"])
                    await self._note_failure(tx, row["id"], exc)
                    continue
                done.append(row["id"])
            if done:
                await outbox_rows.mark_published(tx, done)
        self.published += len(done)
        if failure is not None:
            raise failure
        return len(done)

    @staticmethod
    async def _note_failure(tx: Tx, row_id: int, exc: BaseException) -> None:
        await outbox_rows.note_failure(tx, row_id, f"{type(exc).__name__}: {exc}")

    async def pending(self) -> int:
        """How many events wait to be published."""
        return await outbox_rows.pending(self.db)

    async def purge_published(self, older_than_days: int = 7) -> int:
        """Delete events published more than `older_than_days` ago; returns how many went."""
        return await outbox_rows.purge_published(self.db, older_than_days)
