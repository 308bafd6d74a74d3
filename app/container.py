"""The composition root: `build_services(config, db, kv)` wires the service graph once, for the web
app (app/main.py), the command line (app/cli/context.py) and the tests.

Each service is built on first use, so a command that needs only the catalogue does not pay for
the rest (AuthService hashes a dummy password when it is built)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from app.adapters.cache import Cache
from app.adapters.kv import KeyValue
from app.config import Config
from app.media.images import ImageStore
from app.media.store import MediaStore
from app.repos.db import Database
from app.services.audit import AuditService
from app.services.auth import AuthService
from app.services.authstate import AuthStateCache
from app.services.catalog import CatalogService
from app.services.ingest import IngestService
from app.services.library import LibraryService
from app.services.listening import ListeningService
from app.services.playlists import PlaylistService
from app.services.users import UserService


class Services:
    """The services over one database and one key-value store. `local_cache=False` (processes
    other than the web server) keeps no in-process cache copies that could go stale."""

    def __init__(self, config: Config, db: Database, kv: KeyValue, *, local_cache: bool = True) -> None:
        self.config, self.db, self.kv = config, db, kv
        self.local_cache = local_cache

    @cached_property
    def media_root(self) -> Path:
        root = self.config.media_path
        root.mkdir(parents=True, exist_ok=True)
        return root

    @cached_property
    def media(self) -> MediaStore:
        return MediaStore(self.media_root)

    @cached_property
    def images(self) -> ImageStore:
        return ImageStore(self.media_root)

    @cached_property
    def cache(self) -> Cache:
        return Cache(self.kv) if self.local_cache else Cache(self.kv, local=False)

    @cached_property
    def audit(self) -> AuditService:
        return AuditService(self.db)

    @cached_property
    def authstate(self) -> AuthStateCache:
        return AuthStateCache(self.db, self.kv)

    @cached_property
    def users(self) -> UserService:
        return UserService(self.db, self.config, self.authstate)

    @cached_property
    def auth(self) -> AuthService:
        return AuthService(self.db, self.kv, self.config, self.users, self.authstate)

    @cached_property
    def catalog(self) -> CatalogService:
        return CatalogService(self.db, self.cache)

    @cached_property
    def ingest(self) -> IngestService:
        return IngestService(self.db, self.catalog, self.media, self.images)

    @cached_property
    def listening(self) -> ListeningService:
        return ListeningService(self.db, self.cache, self.catalog)

    @cached_property
    def playlists(self) -> PlaylistService:
        # Playlists and the library depend on the viewer: read uncached (SPEC 9, 12).
        return PlaylistService(self.db, self.catalog, self.users)

    @cached_property
    def library(self) -> LibraryService:
        return LibraryService(self.catalog, self.playlists)


def build_services(config: Config, db: Database, kv: KeyValue, *, local_cache: bool = True) -> Services:
    return Services(config, db, kv, local_cache=local_cache)
