"""The composition root: `build_services(config, db, kv)` wires the service graph once, for the web
app (app/main.py), the worker's consumers (app/events/consumers.py), the command line
(app/cli/context.py) and the tests. Nothing else constructs a service (tests/test_layers.py).

Each service is built on first use, so a command that needs only the catalogue does not pay for
the rest (AuthService hashes a dummy password when it is built)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from app.adapters.cache import Cache
from app.adapters.kv import KeyValue
from app.adapters.search.port import SearchPort
from app.config import Config
from app.media.images import ImageStore
from app.media.store import MediaStore
from app.repos.db import Database
from app.services.app_passwords import AppPasswordService, SecretBox
from app.services.audit import AuditService
from app.services.auth import AuthService
from app.services.authstate import AuthStateCache
from app.services.catalog import CatalogService
from app.services.indexer import Indexer, LiveIndex
from app.services.ingest import IngestService
from app.services.library import LibraryService
from app.services.listening import ListeningService
from app.services.nowplaying import NowPlayingService
from app.services.playlists import PlaylistService
from app.services.playqueue import PlayQueueService
from app.services.search import SearchService
from app.services.streaming import StreamService
from app.services.types import NO_LINKS, Links
from app.services.users import UserService


class Services:
    """The services over one database and one key-value store (and, for those that read or
    rebuild the index, one opened search backend). `local_cache=False` (processes other than the
    web server) keeps no in-process cache copies that could go stale; `links` builds the URLs in
    the shapes the API answers with (the web app's routes; other processes build none)."""

    def __init__(self, config: Config, db: Database, kv: KeyValue, *, local_cache: bool = True,
                 search_backend: SearchPort | None = None, links: Links = NO_LINKS) -> None:
        self.config, self.db, self.kv = config, db, kv
        self.local_cache = local_cache
        self.links = links
        self._search_backend = search_backend

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
    def app_passwords(self) -> AppPasswordService:
        """The Subsonic API's credentials (SPEC 13)."""
        return AppPasswordService(self.db, self.kv, self.config, self.authstate)

    @cached_property
    def catalog(self) -> CatalogService:
        return CatalogService(self.db, self.cache, self.links, self._search_backend)

    @cached_property
    def ingest(self) -> IngestService:
        return IngestService(self.db, self.catalog, self.media, self.images)

    @cached_property
    def listening(self) -> ListeningService:
        return ListeningService(self.db, self.cache, self.catalog)

    @cached_property
    def now_playing(self) -> NowPlayingService:
        """What each player plays now (Subsonic scrobble submission=false, getNowPlaying)."""
        return NowPlayingService(self.kv, self.catalog)

    @cached_property
    def play_queue(self) -> PlayQueueService:
        """Saved play queues (Subsonic savePlayQueue, getPlayQueue)."""
        return PlayQueueService(self.kv, self.catalog)

    @cached_property
    def playlists(self) -> PlaylistService:
        # Playlists and the library depend on the viewer: read uncached (SPEC 9, 12).
        return PlaylistService(self.db, self.catalog, self.users,
                               SecretBox(self.config.secret_key, "share-link", "playlist"))

    @cached_property
    def library(self) -> LibraryService:
        return LibraryService(self.catalog, self.playlists)

    @cached_property
    def stream(self) -> StreamService:
        return StreamService(self.config, self.catalog.repo, self.media, self.auth.signer,
                             self.authstate)

    @property
    def search_backend(self) -> SearchPort:
        """The search backend given to `build_services`; asking without one is a wiring error."""
        if self._search_backend is None:
            raise RuntimeError("build_services(..., search_backend=...) is needed for search")
        return self._search_backend

    @cached_property
    def search(self) -> SearchService:
        return SearchService(self.db, self.search_backend, self.links, self.cache)

    @cached_property
    def indexer(self) -> Indexer:
        """Rebuilds (reindex) into the given backend."""
        return Indexer(self.db, self.search_backend)

    @cached_property
    def live_index(self) -> LiveIndex:
        """The `search_index` consumer's writer: it opens a backend of its own on its first event."""
        return LiveIndex(self.db, self.config)


def build_services(config: Config, db: Database, kv: KeyValue, *, local_cache: bool = True,
                   search_backend: SearchPort | None = None, links: Links = NO_LINKS) -> Services:
    """The service graph of one process (web server, worker, command) over its resources."""
    return Services(config, db, kv, local_cache=local_cache, search_backend=search_backend,
                    links=links)
