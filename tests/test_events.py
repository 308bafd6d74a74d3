"""Events, the envelope, `emit` inside the writer's transaction, `apply_once` and the audit log."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from backbone_support import admin_event, audit_rows, backbone_consumers, emit_admin, open_db, tag

from app import events
from app.events import AdminAction, CatalogChanged, PlayRecorded, emit, envelope
from app.events.consumers import apply_once
from app.repos.db import Database, Tx
from app.services.audit import AuditService

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with open_db(database_url) as database:
        yield database


def test_each_event_names_its_routing_key() -> None:
    action = AdminAction(1, "root", "user.role_changed", "user", 2, "made admin", {"to": "admin"})
    assert action.routing_key == "admin.user.role_changed"
    assert CatalogChanged("album", 3, "deleted").routing_key == "catalog.album.deleted"
    played = PlayRecorded(1, 2, "p1", 31_000, dt.datetime(2024, 5, 1, 12, 0, 0))
    assert played.routing_key == "play.recorded" == PlayRecorded.type
    for cls in (AdminAction, CatalogChanged, PlayRecorded):
        assert cls.__doc__ and "\n" not in cls.__doc__.strip()


@pytest.mark.parametrize("bad", [
    lambda: CatalogChanged("genre", 1, "upserted"),
    lambda: CatalogChanged("song", 1, "renamed"),
    lambda: AdminAction(1, "root", "user.*", "user", 1, ""),
    lambda: AdminAction(1, "root", "", "user", 1, ""),
])
def test_invalid_events_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        bad()


def test_envelope_shape() -> None:
    played_at = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    message = envelope(PlayRecorded(1, 2, "p1", 31_000, played_at))
    assert set(message) == {"id", "type", "occurred_at", "data"}
    assert str(uuid.UUID(message["id"])) == message["id"]
    assert message["type"] == "play.recorded"
    assert RFC3339_Z.match(message["occurred_at"])
    assert message["data"] == {"user_id": 1, "song_id": 2, "play_id": "p1", "played_ms": 31_000,
                               "played_at": "2024-05-01T10:00:00.000000Z"}
    assert json.loads(events.dumps(message)) == message
    assert events.parse_rfc3339(message["data"]["played_at"]) == dt.datetime(2024, 5, 1, 10)


async def test_emit_is_part_of_the_writers_transaction(db: Database) -> None:
    event = admin_event(tag())
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            rolled_back = await emit(tx, event)
            raise RuntimeError("the write failed")
    assert await db.fetchone("SELECT id FROM outbox WHERE event_id = %s", (rolled_back,)) is None

    async with db.transaction() as tx:
        committed = await emit(tx, event)
    row = await db.fetchone("SELECT * FROM outbox WHERE event_id = %s", (committed,))
    assert row is not None
    assert row["type"] == event.routing_key and row["published_at"] is None and row["attempts"] == 0
    payload = json.loads(row["payload"])
    assert payload["id"] == committed and payload["type"] == event.routing_key
    assert payload["data"]["action"] == event.action


async def test_apply_once_skips_an_event_already_applied(db: Database) -> None:
    message = envelope(admin_event(tag()))
    seen: list[str] = []

    async def effect(tx: Tx, env: dict[str, Any]) -> None:
        seen.append(env["id"])

    assert await apply_once(db, "test", message, effect) is True
    assert await apply_once(db, "test", message, effect) is False
    assert await apply_once(db, "other", message, effect) is True  # keys are per consumer
    assert seen == [message["id"], message["id"]]


async def test_apply_once_forgets_nothing_when_the_effect_fails(db: Database) -> None:
    message = envelope(admin_event(tag()))

    async def failing(tx: Tx, env: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await apply_once(db, "test", message, failing)
    calls = []

    async def working(tx: Tx, env: dict[str, Any]) -> None:
        calls.append(1)

    assert await apply_once(db, "test", message, working) is True
    assert calls == [1]


async def test_audit_consumer_writes_one_row_per_event_even_when_delivered_twice(
    db: Database,
) -> None:
    [audit] = [spec for spec in backbone_consumers(db) if spec.name == "audit"]
    assert audit.patterns == ["admin.#"]
    message = envelope(AdminAction(5, "boss", f"{tag()}.role_changed", "user", 9, "made admin",
                                   {"from": "member", "to": "admin"}))
    await audit.handler(message)
    await audit.handler(message)
    assert await audit_rows(db, [message["id"]]) == 1
    row = await db.fetchone("SELECT * FROM audit_log WHERE event_id = %s", (message["id"],))
    assert row is not None
    assert (row["actor_id"], row["actor_username"], row["target_type"], row["target_id"]) == (
        5, "boss", "user", 9)
    assert json.loads(row["details"]) == {"from": "member", "to": "admin"}


async def test_audit_list_pages_newest_first_and_filters_by_prefix(db: Database) -> None:
    prefix = tag()
    service = AuditService(db)
    ids = await emit_admin(db, prefix, 5)
    [audit] = [spec for spec in backbone_consumers(db) if spec.name == "audit"]
    for i, event_id in enumerate(ids):
        row = await db.fetchone("SELECT payload FROM outbox WHERE event_id = %s", (event_id,))
        assert row is not None
        message = json.loads(row["payload"])
        message["occurred_at"] = f"2030-01-01T00:00:0{i}Z"  # distinct, increasing times
        await audit.handler(message)
    entries, total = await service.list(limit=2, offset=1, action_prefix=prefix + ".")
    assert total == 5
    assert [e["target"]["id"] for e in entries] == [3, 2]
    assert entries[0]["action"] == f"{prefix}.did" and entries[0]["details"] == {"i": 3}
    assert entries[0]["occurred_at"] == "2030-01-01T00:00:03Z"
    assert entries[0]["actor"] == {"id": 1, "username": "root"}
    # LIKE wildcards in the prefix are taken literally.
    assert (await service.list(action_prefix=prefix[:-1] + "_"))[1] == 0
