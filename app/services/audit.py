"""The audit log: every admin action (`admin.#` events), as shown at /admin/audit."""

from __future__ import annotations

import json
from typing import Any

from app.events import parse_rfc3339
from app.repos.audit import AuditRepo
from app.repos.db import Database, Row, Tx
from app.services.validation import rfc3339

MAX_PAGE = 200


def public_entry(row: Row) -> dict[str, Any]:
    """An audit entry as the API and the admin page show it."""
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "actor": {"id": row["actor_id"], "username": row["actor_username"]},
        "action": row["action"],
        "target": {"type": row["target_type"], "id": row["target_id"]},
        "summary": row["summary"],
        "details": json.loads(row["details"] or "{}"),
        "occurred_at": rfc3339(row["occurred_at"]),
    }


class AuditService:
    """Writes audit entries from admin events and lists them, newest first."""

    def __init__(self, db: Database) -> None:
        self.repo = AuditRepo(db)

    async def record(self, tx: Tx, envelope: dict[str, Any]) -> None:
        """Write the entry of one `admin.<action>` envelope (in the consumer's transaction)."""
        data = envelope["data"]
        await self.repo.insert(
            tx,
            event_id=envelope["id"],
            actor_id=data.get("actor_id"),
            actor_username=str(data.get("actor_username") or "")[:64],
            action=str(data["action"])[:120],
            target_type=str(data.get("target_type") or "")[:32],
            target_id=data.get("target_id"),
            summary=str(data.get("summary") or "")[:500],
            details=json.dumps(data.get("details") or {}, separators=(",", ":"), ensure_ascii=False),
            occurred_at=parse_rfc3339(envelope["occurred_at"]),
        )

    async def list(self, limit: int = 50, offset: int = 0, action_prefix: str | None = None
                   ) -> tuple[list[dict[str, Any]], int]:
        """A page of entries, newest first, and the total; `action_prefix` filters ("user.")."""
        limit = max(1, min(limit, MAX_PAGE))
        offset = max(0, offset)
        total = await self.repo.count(action_prefix)
        rows = await self.repo.page(limit, offset, action_prefix, total)
        return [public_entry(row) for row in rows], total
