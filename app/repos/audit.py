"""SQL for the audit log."""

from __future__ import annotations

import datetime as dt

from app.repos.db import Database, Row, Tx

COLUMNS = (
    "id, event_id, actor_id, actor_username, action, target_type, target_id, summary, details,"
    " occurred_at"
)


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching values that start with `prefix` taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(
        self, tx: Tx, *, event_id: str, actor_id: int | None, actor_username: str, action: str,
        target_type: str, target_id: int | None, summary: str, details: str,
        occurred_at: dt.datetime,
    ) -> None:
        # event_id is UNIQUE: a second guard behind processed_events, so a redelivered event never
        # makes a second row (the no-op update keeps the first one unchanged).
        await tx.execute(
            "INSERT INTO audit_log (event_id, actor_id, actor_username, action, target_type,"
            " target_id, summary, details, occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON DUPLICATE KEY UPDATE event_id = event_id",
            (event_id, actor_id, actor_username, action, target_type, target_id, summary, details,
             occurred_at),
        )

    async def page(self, limit: int, offset: int, action_prefix: str | None) -> list[Row]:
        if action_prefix:
            return await self.db.fetchall(
                f"SELECT {COLUMNS} FROM audit_log WHERE action LIKE %s"
                " ORDER BY occurred_at DESC, id DESC LIMIT %s OFFSET %s",
                (_like_prefix(action_prefix), limit, offset),
            )
        return await self.db.fetchall(
            f"SELECT {COLUMNS} FROM audit_log ORDER BY occurred_at DESC, id DESC LIMIT %s OFFSET %s",
            (limit, offset),
        )

    async def count(self, action_prefix: str | None) -> int:
        if action_prefix:
            value = await self.db.fetchval(
                "SELECT COUNT(*) FROM audit_log WHERE action LIKE %s", (_like_prefix(action_prefix),)
            )
        else:
            value = await self.db.fetchval("SELECT COUNT(*) FROM audit_log")
        return int(value)
