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
        added = await tx.rowcount(
            "INSERT INTO audit_log (event_id, actor_id, actor_username, action, target_type,"
            " target_id, summary, details, occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON DUPLICATE KEY UPDATE event_id = event_id",
            (event_id, actor_id, actor_username, action, target_type, target_id, summary, details,
             occurred_at),
        )
        if added == 1:  # 0: the entry was there already
            await tx.execute(
                "INSERT INTO audit_action_counts (action, entries) VALUES (%s, 1)"
                " ON DUPLICATE KEY UPDATE entries = entries + 1", (action,))

    async def page(self, limit: int, offset: int, action_prefix: str | None, total: int
                   ) -> list[Row]:
        """A page newest first, `total` being how many entries match. The page's ids are found
        in an index alone (ix_audit_occurred, or ix_audit_action_time for a kind; the primary key
        rides in both), from the nearer end of the log, then only its rows are read: a deep page
        skips index entries (at most half of them), never whole rows with their details."""
        where: str = ""
        params: tuple[str, ...] = ()
        if action_prefix:
            # Forced: left alone, MariaDB walks the whole log in time order and reads every row
            # to test its action when a kind is rare; this reads the kind's index entries only.
            where = " FORCE INDEX (ix_audit_action_time) WHERE action LIKE %s"
            params = (_like_prefix(action_prefix),)
        order = "DESC"
        if offset > total // 2 and offset < total:
            # Past the middle: the same entries, counted from the oldest end.
            order, offset, limit = "ASC", max(0, total - offset - limit), min(limit, total - offset)
        return await self.db.fetchall(
            f"SELECT {COLUMNS} FROM audit_log JOIN (SELECT id AS page_id FROM audit_log{where}"
            f" ORDER BY occurred_at {order}, id {order} LIMIT %s OFFSET %s) page"
            " ON id = page.page_id ORDER BY occurred_at DESC, id DESC",
            (*params, limit, offset),
        )

    async def count(self, action_prefix: str | None) -> int:
        """Entries in all, or whose action starts with `action_prefix` (audit_action_counts)."""
        if action_prefix:
            value = await self.db.fetchval(
                "SELECT COALESCE(SUM(entries), 0) FROM audit_action_counts WHERE action LIKE %s",
                (_like_prefix(action_prefix),))
        else:
            value = await self.db.fetchval("SELECT COALESCE(SUM(entries), 0) FROM audit_action_counts")
        return int(value)
