"""Several workers report their consumers' progress to one /api/health (SPEC 4: any number of
`worker` processes): each keeps a heartbeat of its own in Redis, and health merges the live ones."""

from __future__ import annotations

import json
from typing import Any

from conftest import REDIS_URL, unique

from app.adapters.kv import make_kv
from app.events.worker import HEARTBEAT_KEY, Backbone, consumers_report, merge_heartbeats


def _item(name: str, status: str, **kw: Any) -> dict[str, Any]:
    base = {"name": name, "status": status, "queue_depth": 0, "in_flight": 0, "prefetch": 7,
            "oldest_unacked_seconds": None, "last_ack_seconds_ago": None, "acked": 0}
    return {**base, **kw}


def test_a_consumer_is_stalled_only_when_no_worker_makes_progress() -> None:
    one = {"at": 100.0, "items": [_item("audit", "stalled", queue_depth=40, in_flight=7,
                                        oldest_unacked_seconds=61.0, last_ack_seconds_ago=61.0, acked=3),
                                  _item("search_index", "stalled", queue_depth=9, in_flight=7, acked=1)]}
    two = {"at": 101.0, "items": [_item("audit", "busy", queue_depth=40, in_flight=2,
                                        oldest_unacked_seconds=0.2, last_ack_seconds_ago=0.1, acked=50),
                                  _item("search_index", "stalled", queue_depth=9, in_flight=7, acked=2)]}
    merged = merge_heartbeats([one, two])
    assert merged is not None and merged["at"] == 101.0
    audit, search = merged["items"]
    assert audit == {"name": "audit", "status": "busy", "queue_depth": 40, "in_flight": 9, "prefetch": 14,
                     "oldest_unacked_seconds": 61.0, "last_ack_seconds_ago": 0.1, "acked": 53, "workers": 2}
    assert search["status"] == "stalled" and search["acked"] == 3
    assert consumers_report(merged)["status"] == "stalled"
    assert merge_heartbeats([]) is None


async def test_every_live_worker_is_heard_and_a_stopped_one_leaves() -> None:
    kv = make_kv(REDIS_URL, unique("beats"))
    try:
        workers = []
        for n in range(3):
            b = Backbone(None, None, None, [], False, kv=kv)  # type: ignore[arg-type]
            b.worker_id = f"host:{n}"
            workers.append(b)
        reader = Backbone(None, None, None, [], False, kv=kv)  # type: ignore[arg-type]
        for n, b in enumerate(workers):
            beat = {"at": 10.0 + n, "items": [_item("audit", "idle", acked=n + 1)]}
            await kv.set(f"{HEARTBEAT_KEY}:{b.worker_id}", json.dumps(beat).encode(), 10.0)
            await b._enrol(True)
        assert sorted(await reader._workers()) == ["host:0", "host:1", "host:2"]
        merged = merge_heartbeats(await reader._beats())
        assert merged is not None and merged["items"][0]["acked"] == 6
        # One stops (its key and its id go); one dies (its key expires, the next beat drops it).
        await kv.delete(f"{HEARTBEAT_KEY}:host:1")
        await workers[1]._enrol(False)
        await kv.delete(f"{HEARTBEAT_KEY}:host:2")
        await workers[0]._enrol(True)
        assert await reader._workers() == ["host:0"]
        merged = merge_heartbeats(await reader._beats())
        assert merged is not None and merged["items"][0]["acked"] == 1
    finally:
        await kv.delete("backbone:workers", *(f"{HEARTBEAT_KEY}:host:{n}" for n in range(3)))
        await kv.close()
