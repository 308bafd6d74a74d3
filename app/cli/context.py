"""The catalogue services outside the web app (command line: import, demo, reindex)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.adapters.kv import KeyValue, make_kv
from app.config import Config
from app.container import build_services
from app.repos.db import Database
from app.repos.migrate import migrate
from app.services.catalog import CatalogService
from app.services.ingest import IngestService
from app.services.users import UserService


@dataclass
class CatalogContext:
    config: Config
    db: Database
    kv: KeyValue
    catalog: CatalogService
    ingest: IngestService
    users: UserService


@asynccontextmanager
async def catalog_context(config: Config) -> AsyncIterator[CatalogContext]:
    """Database (migrated), store and catalogue services; cache writes reach Redis when set."""
    db = Database(config.database_url, maxsize=4)
    await db.connect()
    kv = make_kv(config.redis_url, config.namespace)
    try:
        await migrate(db)
        services = build_services(config, db, kv, local_cache=False)
        yield CatalogContext(config, db, kv, services.catalog, services.ingest, services.users)
    finally:
        await kv.close()
        await db.close()
