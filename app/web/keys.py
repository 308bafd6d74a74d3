"""Every typed application key, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:  # string type arguments below name these
    from app.adapters.bus import Bus  # noqa: F401
    from app.adapters.cache import Cache  # noqa: F401
    from app.adapters.kv import KeyValue  # noqa: F401
    from app.adapters.search.port import SearchPort  # noqa: F401
    from app.config import Config  # noqa: F401
    from app.events.worker import Backbone  # noqa: F401
    from app.media.store import MediaStore  # noqa: F401
    from app.repos.db import Database  # noqa: F401
    from app.services.app_passwords import AppPasswordService  # noqa: F401
    from app.services.audit import AuditService  # noqa: F401
    from app.services.auth import AuthService, Principal, TokenPair  # noqa: F401
    from app.services.catalog import CatalogService  # noqa: F401
    from app.services.ingest import IngestService  # noqa: F401
    from app.services.library import LibraryService  # noqa: F401
    from app.services.listening import ListeningService  # noqa: F401
    from app.services.nowplaying import NowPlayingService  # noqa: F401
    from app.services.playlists import PlaylistService  # noqa: F401
    from app.services.playqueue import PlayQueueService  # noqa: F401
    from app.services.search import SearchService  # noqa: F401
    from app.services.streaming import StreamService  # noqa: F401
    from app.services.users import UserService  # noqa: F401
    from app.web.stream import Streaming  # noqa: F401
    from app.web.subsonic.registry import SubsonicApi  # noqa: F401

CONFIG = web.AppKey["Config"]("config")
DB = web.AppKey["Database"]("db")
KV = web.AppKey["KeyValue"]("kv")
BUS = web.AppKey["Bus"]("bus")
AUTH = web.AppKey["AuthService"]("auth")
USERS = web.AppKey["UserService"]("users")
OPENAPI = web.AppKey("openapi", dict[str, Any])

# Per-request state set by the middlewares.
PRINCIPAL = web.RequestKey["Principal"]("principal")
AUTH_ERROR = web.RequestKey("auth_error", Exception)
VIA_COOKIE = web.RequestKey("via_cookie", bool)
COOKIES_SET = web.RequestKey("cookies_set", bool)
CLEAR_COOKIES = web.RequestKey("clear_cookies", bool)
REFRESHED = web.RequestKey["TokenPair"]("refreshed")
# Who the access log names when no principal is set (a signed stream URL's user).
LOG_USER = web.RequestKey("log_user", int)
CACHE = web.AppKey["Cache"]("cache")
CATALOG = web.AppKey["CatalogService"]("catalog")
INGEST = web.AppKey["IngestService"]("ingest")
MEDIA = web.AppKey["MediaStore"]("media")
STREAMING = web.AppKey["Streaming"]("streaming")
STREAM = web.AppKey["StreamService"]("stream")
BACKBONE = web.AppKey["Backbone"]("backbone")
LISTENING = web.AppKey["ListeningService"]("listening")
NOW_PLAYING = web.AppKey["NowPlayingService"]("now_playing")
PLAY_QUEUE = web.AppKey["PlayQueueService"]("play_queue")
PLAYLISTS = web.AppKey["PlaylistService"]("playlists")
LIBRARY = web.AppKey["LibraryService"]("library")
AUDIT = web.AppKey["AuditService"]("audit")
SEARCH_BACKEND = web.AppKey["SearchPort"]("search_backend")
SEARCH = web.AppKey["SearchService"]("search")
REINDEX_TASK = web.AppKey("reindex_task", dict)  # the admin's background rebuild, if any
APP_PASSWORDS = web.AppKey["AppPasswordService"]("app_passwords")
SUBSONIC = web.AppKey["SubsonicApi"]("subsonic")  # the /rest methods (app/web/subsonic)
