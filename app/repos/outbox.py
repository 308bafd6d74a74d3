"""The outbox and the consumers' idempotency keys (SPEC 7): all their SQL.

`app.events.emit` writes outbox rows inside the caller's transaction, the relay
(app/events/outbox.py) claims and marks them, and `apply_once` (app/events/consumers.py) records
which consumer applied which event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from app.repos.db import Database, Row, Tx

MARK_CHUNK = 500  # event ids per statement when a rebuild records what it covered


async def add(tx: Tx, event_id: str, type_: str, payload: str) -> None:
    await tx.execute(
        "INSERT INTO outbox (event_id, type, payload, created_at) VALUES (%s, %s, %s, UTC_TIMESTAMP(6))",
        (event_id, type_, payload),
    )
    tx.emitted_events = True


async def add_many(tx: Tx, rows: Sequence[tuple[str, str, str]]) -> None:
    """Several `(event_id, type, payload)` rows in one statement."""
    marks = ", ".join(["(%s, %s, %s, UTC_TIMESTAMP(6))"] * len(rows))
    params: list[str] = []
    for row in rows:
        params += list(row)
    await tx.execute(f"INSERT INTO outbox (event_id, type, payload, created_at) VALUES {marks}", params)
    tx.emitted_events = True


async def claim(tx: Tx, batch: int) -> list[Row]:
    """The oldest unpublished rows, locked in `tx`; rows other relays hold are skipped."""
    return await tx.fetchall(
        "SELECT id, type, payload FROM outbox WHERE published_at IS NULL"
        " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (batch,),
    )


async def mark_published(tx: Tx, ids: Sequence[int]) -> None:
    marks = ", ".join(["%s"] * len(ids))
    await tx.execute(f"UPDATE outbox SET published_at = UTC_TIMESTAMP(6) WHERE id IN ({marks})", list(ids))


async def note_failure(tx: Tx, row_id: int, error: str) -> None:
    await tx.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE id = %s", (error[:255], row_id)
    )


async def pending(db: Database) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"))


async def purge_published(db: Database, older_than_days: int) -> int:
    return await db.rowcount(
        "DELETE FROM outbox WHERE published_at IS NOT NULL"
        " AND published_at < UTC_TIMESTAMP(6) - INTERVAL %s DAY",
        (older_than_days,),
        idempotent=True,
    )


async def mark_processed(tx: Tx, consumer: str, event_id: str) -> None:
    """Raises IntegrityError (duplicate key) when `consumer` already applied the event."""
    await tx.execute(
        "INSERT INTO processed_events (consumer, event_id, processed_at)"
        " VALUES (%s, %s, UTC_TIMESTAMP(6))",
        (consumer, event_id),
    )


async def mark_done(db: Database, consumer: str, event_id: str) -> None:
    """Record that `consumer` applied the event (already recorded: left as it is)."""
    await db.execute(
        "INSERT INTO processed_events (consumer, event_id, processed_at)"
        " VALUES (%s, %s, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE event_id = event_id",
        (consumer, event_id), idempotent=True)


async def processed(db: Database, consumer: str, event_id: str) -> bool:
    return bool(await db.fetchval(
        "SELECT 1 FROM processed_events WHERE consumer = %s AND event_id = %s", (consumer, event_id)
    ))


async def purge_processed(db: Database, older_than_days: int) -> int:
    return await db.rowcount(
        "DELETE FROM processed_events WHERE processed_at < UTC_TIMESTAMP(6) - INTERVAL %s DAY",
        (older_than_days,),
        idempotent=True,
    )


async def mark_covered(db: Database, consumer: str, event_ids: Sequence[str], before: dt.datetime,
                       recent: dt.datetime) -> None:
    """Record as applied by `consumer` the `catalog.*` events a finished rebuild covers: those
    listed, and every one recorded before `before` that was published after `recent` or is not
    published yet (older ones were delivered long ago). Ones already recorded stay as they are."""
    await db.execute(
        "INSERT INTO processed_events (consumer, event_id, processed_at)"
        " SELECT %s, event_id, UTC_TIMESTAMP(6) FROM outbox"
        " WHERE created_at < %s AND type LIKE 'catalog.%%'"
        " AND (published_at IS NULL OR published_at > %s)"
        " ON DUPLICATE KEY UPDATE processed_events.event_id = processed_events.event_id",
        (consumer, before, recent))
    for start in range(0, len(event_ids), MARK_CHUNK):
        chunk = event_ids[start:start + MARK_CHUNK]
        await db.execute(
            "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES "
            + ", ".join(["(%s, %s, UTC_TIMESTAMP(6))"] * len(chunk))
            + " ON DUPLICATE KEY UPDATE event_id = event_id",
            tuple(v for event_id in chunk for v in (consumer, event_id)))
