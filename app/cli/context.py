"""The services of one command (create-user, import, demo, reindex...), from the composition root."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from app.adapters.kv import kv_context
from app.adapters.search import SearchPort, search_context
from app.config import Config
from app.container import Services, build_services
from app.repos.db import database_context

# A command does one thing at a time: a small pool is enough.
COMMAND_POOL = 4


@contextlib.asynccontextmanager
async def catalog_context(config: Config, *, search: bool = False) -> AsyncIterator[Services]:
    """The service graph over the database (migrated) and the configured store, so cache
    invalidations and ended sessions reach Redis when it is set; `search` opens the search
    backend too (for a rebuild)."""
    async with contextlib.AsyncExitStack() as stack:
        db = await stack.enter_async_context(database_context(config.database_url,
                                                              maxsize=COMMAND_POOL))
        kv = await stack.enter_async_context(kv_context(config))
        backend: SearchPort | None = None
        if search:
            backend = await stack.enter_async_context(search_context(config))
        services = build_services(config, db, kv, local_cache=False, search_backend=backend)
        try:
            yield services
        finally:
            await services.cache.settle()  # values being stored reach the store before it closes
