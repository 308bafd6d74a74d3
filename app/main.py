"""The application factory: one `create_app(config)` for `serve`, the tests and the bench."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from app.adapters.bus import BusUnavailable, make_bus
from app.adapters.kv import make_kv
from app.adapters.search import make_search
from app.config import Config
from app.container import build_services
from app.events.worker import start_backbone
from app.media import images as images_module
from app.repos.db import Database
from app.repos.migrate import migrate
from app.services.search import SearchService
from app.web import keys, openapi, server
from app.web.api import (
    albums,
    artists,
    auth,
    images,
    library,
    listening,
    meta,
    playlists,
    songs,
    stream,
    users,
)
from app.web.api import search as search_routes
from app.web.middlewares import (
    ACCESS_LINES,
    access_log_middleware,
    auth_middleware,
    error_middleware,
    input_middleware,
    security_headers_middleware,
)
from app.web.pages import account as account_pages
from app.web.pages import auth as auth_pages
from app.web.pages import catalog as catalog_pages
from app.web.pages import home as home_pages
from app.web.pages import library as library_pages
from app.web.pages import listening as listening_pages
from app.web.pages import search as search_pages
from app.web.pages.admin import audit as admin_audit
from app.web.pages.admin import catalog as admin_catalog
from app.web.pages.admin import dashboard as admin_dashboard
from app.web.pages.admin import playlists as admin_playlists
from app.web.pages.admin import users as admin_users
from app.web.stream import streaming_ctx

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
VERSION = "0.1.0"
API_TABLES = [auth.routes, users.routes, songs.routes, artists.routes, albums.routes, images.routes,
              listening.routes,
              meta.routes]
API_TABLES.append(stream.routes)
API_TABLES += [playlists.routes, library.routes]
API_TABLES.append(search_routes.routes)
MAX_BODY = 1024**2


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """MySQL pool for the app's lifetime; migrations are applied on start (idempotent)."""
    db = Database(app[keys.CONFIG].database_url)
    await db.connect()
    await migrate(db)
    app[keys.DB] = db
    yield
    await db.close()


async def kv_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    kv = make_kv(config.redis_url, config.namespace)
    if not await kv.ping():
        log.warning("Redis at SONORA_REDIS_URL is not answering; running degraded until it does")
    app[keys.KV] = kv
    yield
    await kv.close()


async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
    """The broker connection; when it is down at start, keep retrying in the background."""
    config = app[keys.CONFIG]
    bus = make_bus(config.amqp_url, config.namespace)
    app[keys.BUS] = bus
    retry: asyncio.Task[None] | None = None
    try:
        await bus.start()
    except BusUnavailable as exc:
        log.warning("%s; events wait in the outbox until it is reachable", exc)

        async def keep_trying() -> None:
            while True:
                await asyncio.sleep(5)
                try:
                    await bus.start()
                    log.info("connected to RabbitMQ")
                    return
                except BusUnavailable:
                    continue

        retry = asyncio.create_task(keep_trying())
    yield
    if retry is not None:
        retry.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retry
    await bus.close()


async def backbone_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outbox relay; without a broker, the event consumers too (SPEC 2, 7)."""
    config = app[keys.CONFIG]
    backbone = await start_backbone(
        config, app[keys.DB], app[keys.BUS], run_consumers=not config.amqp_url, kv=app[keys.KV]
    )
    app[keys.BACKBONE] = backbone
    yield
    await backbone.stop()


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    """The service graph (app/container.py), each service under its app key."""
    services = build_services(app[keys.CONFIG], app[keys.DB], app[keys.KV])
    app[keys.USERS] = services.users
    app[keys.AUTH] = services.auth
    app[keys.MEDIA] = services.media
    app[keys.CACHE] = services.cache
    services.cache.start()
    app[keys.CATALOG] = services.catalog
    app[keys.INGEST] = services.ingest
    app[keys.LISTENING] = services.listening
    app[keys.PLAYLISTS] = services.playlists
    app[keys.LIBRARY] = services.library
    app[keys.AUDIT] = services.audit
    yield


async def search_ctx(app: web.Application) -> AsyncIterator[None]:
    """The search backend (Meilisearch or the embedded index, read side) and its service."""
    backend = make_search(app[keys.CONFIG])
    await backend.start()
    app[keys.SEARCH_BACKEND] = backend
    app[keys.SEARCH] = SearchService(app[keys.DB], backend)
    app[keys.REINDEX_TASK] = {}
    yield
    task = app[keys.REINDEX_TASK].get("task")
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await backend.close()


async def _flush_access_log(app: web.Application) -> None:
    ACCESS_LINES.flush()


def create_app(config: Config) -> web.Application:
    """Build the application; resources open on startup and close on cleanup."""
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[
            access_log_middleware,
            security_headers_middleware,
            error_middleware,
            input_middleware,
            auth_middleware,
        ],
    )
    app[keys.CONFIG] = config
    images_module.configure_decoding(config.image_decode_slots)
    server.install(app, head_timeout=config.request_head_timeout,
                   body_grace=config.request_body_grace_seconds,
                   body_min_rate=config.request_body_min_rate)
    app.cleanup_ctx.extend([database_ctx, kv_ctx, bus_ctx, backbone_ctx, services_ctx])
    app.cleanup_ctx.append(streaming_ctx)
    app.cleanup_ctx.append(search_ctx)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(ROOT / "templates")),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.globals["version"] = VERSION
    for table in API_TABLES:
        table.install(app)
    app.router.add_routes(auth_pages.routes)
    app.router.add_routes(home_pages.routes)
    app.router.add_routes(catalog_pages.routes)
    app.router.add_routes(account_pages.routes)
    app.router.add_routes(search_pages.routes)
    app.router.add_routes(admin_dashboard.routes)
    app.router.add_routes(admin_users.routes)
    app.router.add_routes(admin_catalog.routes)
    app.router.add_routes(admin_audit.routes)
    app.router.add_routes(library_pages.routes)
    app.router.add_routes(admin_playlists.routes)
    app.router.add_routes(listening_pages.routes)
    app.router.add_static("/static/", ROOT / "static", name="static", append_version=True)
    app[keys.OPENAPI] = openapi.build(API_TABLES, VERSION)
    app.on_cleanup.append(_flush_access_log)
    return app


def serve(app: web.Application, config: Config) -> None:
    """Serve `app` until interrupted (`python -m app serve`)."""
    web.run_app(app, host=config.host, port=config.port, print=None,
                access_log=None, shutdown_timeout=10)
