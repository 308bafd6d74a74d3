"""`serve` tunes the garbage collector: what start-up made is frozen out of full collections,
and the young generation is large enough for one answer's objects to die in it."""

from __future__ import annotations

import gc
from typing import Any

from conftest import make_config

from app.main import GC_THRESHOLDS, create_app, tune_gc


async def test_serving_freezes_the_start_up_heap_and_collects_less_often(
        aiohttp_client: Any, database_url: str, tmp_path: Any) -> None:
    before = gc.get_threshold()
    app = create_app(make_config(database_url, tmp_path, amqp_url=""))
    tune_gc(app)
    try:
        assert gc.get_threshold() == GC_THRESHOLDS
        client = await aiohttp_client(app)
        assert gc.get_freeze_count() > 10_000  # modules, routes, pools: out of the collector's sight
        resp = await client.get("/api/health")
        assert resp.status == 200
        # An answer's 20,000 entries are made without a collection in between (with Python's
        # default of 700 there would be some 28, each promoting what is alive to older ones).
        young = gc.get_stats()[0]["collections"]
        garbage = [{"id": i, "name": str(i)} for i in range(20_000)]
        del garbage
        assert gc.get_stats()[0]["collections"] - young <= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
