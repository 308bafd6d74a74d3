"""Domain events (SPEC 7): small dataclasses, the envelope they travel in, and `emit`.

Every write records its events with `emit(tx, event)` inside its own transaction, so an event exists
if and only if the change that caused it was committed; the outbox relay (app/events/outbox.py) publishes
them afterwards. Each event class names its routing key: `type` is the key (or, for a family such
as `admin.<action>`, its first word), `routing_key` is the full key of one instance and `pattern`
is what a consumer binds to receive every event of the class.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from app.repos import outbox as outbox_rows
from app.repos.db import Tx

# Routing-key words: AMQP topic keys are dot-separated; `*` and `#` are reserved for patterns.
_KEY = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
CATALOG_ENTITIES = ("song", "artist", "album", "playlist")
CATALOG_CHANGES = ("upserted", "deleted")


@dataclass(frozen=True)
class AdminAction:
    """An admin did something (role change, disabling or deleting a user, catalogue write, ...)."""

    type: ClassVar[str] = "admin"
    pattern: ClassVar[str] = "admin.#"

    actor_id: int | None
    actor_username: str
    action: str  # dotted, e.g. "user.role_changed": the routing key is "admin.user.role_changed"
    target_type: str
    target_id: int | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _KEY.match(self.action):
            raise ValueError(f"admin action must be dotted lower-case words: {self.action!r}")

    @property
    def routing_key(self) -> str:
        return f"admin.{self.action}"


@dataclass(frozen=True)
class CatalogChanged:
    """A song, artist, album or playlist was created/changed (`upserted`) or `deleted`."""

    type: ClassVar[str] = "catalog"
    pattern: ClassVar[str] = "catalog.*.*"

    entity: str  # one of CATALOG_ENTITIES
    entity_id: int
    change: str  # one of CATALOG_CHANGES

    def __post_init__(self) -> None:
        if self.entity not in CATALOG_ENTITIES or self.change not in CATALOG_CHANGES:
            raise ValueError(f"unknown catalogue change {self.entity!r}/{self.change!r}")

    @property
    def routing_key(self) -> str:
        return f"catalog.{self.entity}.{self.change}"


@dataclass(frozen=True)
class PlayRecorded:
    """A listener played a song long enough to count (SPEC 7); counted once per user and play_id."""

    type: ClassVar[str] = "play.recorded"
    pattern: ClassVar[str] = "play.recorded"

    user_id: int
    song_id: int
    play_id: str
    played_ms: int
    played_at: dt.datetime

    @property
    def routing_key(self) -> str:
        return self.type


Event = AdminAction | CatalogChanged | PlayRecorded


def utc_rfc3339(value: dt.datetime) -> str:
    """RFC 3339 in UTC with a Z and microseconds; naive datetimes are taken as UTC (as MySQL's)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def parse_rfc3339(text: str) -> dt.datetime:
    """The naive UTC datetime of an RFC 3339 string (the form MySQL DATETIME columns hold)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return utc_rfc3339(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def envelope(event: Event, *, event_id: str | None = None, occurred_at: dt.datetime | None = None
             ) -> dict[str, Any]:
    """The message for an event: `{id, type, occurred_at, data}`; `type` is the routing key."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": event.routing_key,
        "occurred_at": utc_rfc3339(occurred_at or dt.datetime.now(dt.UTC)),
        "data": _jsonable(dataclasses.asdict(event)),
    }


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON, as stored in the outbox and sent on the bus."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


async def emit(tx: Tx, event: Event) -> str:
    """Record `event` in the outbox inside the caller's transaction; returns the event id.

    The event is published only if the transaction commits; the commit wakes the outbox relays
    that run over the same `Database` (`Database.on_events_committed`), so it goes out at once
    rather than at the next poll.
    """
    message = envelope(event)
    await outbox_rows.add(tx, str(message["id"]), str(message["type"]), dumps(message))
    return str(message["id"])


async def emit_many(tx: Tx, found: list[Event]) -> list[str]:
    """Record several events in one statement, inside the caller's transaction."""
    if not found:
        return []
    messages = [envelope(event) for event in found]
    await outbox_rows.add_many(tx, [(str(m["id"]), str(m["type"]), dumps(m)) for m in messages])
    return [str(m["id"]) for m in messages]
