"""The catalogue services outside the web app (command line: import, demo, reindex)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.adapters.cache import Cache
from app.adapters.kv import KeyValue, make_kv
from app.config import Config
from app.media.images import ImageStore
from app.media.store import MediaStore
from app.repos.db import Database
from app.repos.migrate import migrate
from app.services.authstate import AuthStateCache
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
        root = config.media_path
        root.mkdir(parents=True, exist_ok=True)
        catalog = CatalogService(db, Cache(kv, local=False))
        ingest = IngestService(db, catalog, MediaStore(root), ImageStore(root))
        users = UserService(db, config, AuthStateCache(db, kv))
        yield CatalogContext(config, db, kv, catalog, ingest, users)
    finally:
        await kv.close()
        await db.close()
