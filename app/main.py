"""The application factory: one `create_app(config)` for `serve`, the tests and the bench."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from app.adapters.bus import bus_context
from app.adapters.kv import kv_context
from app.adapters.search import search_context
from app.config import Config
from app.container import build_services
from app.events.worker import start_backbone
from app.media import images as images_module
from app.repos.db import database_context
from app.web import keys, openapi, server
from app.web.api import (
    albums,
    app_passwords,
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
from app.web.links import RouterLinks
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
from app.web.subsonic import annotation as subsonic_annotation
from app.web.subsonic import browsing as subsonic_browsing
from app.web.subsonic import endpoint as subsonic
from app.web.subsonic import lists as subsonic_lists
from app.web.subsonic import media as subsonic_media
from app.web.subsonic import playlists as subsonic_playlists
from app.web.subsonic import queue as subsonic_queue
from app.web.subsonic import searching as subsonic_searching
from app.web.subsonic import sharing as subsonic_sharing
from app.web.subsonic import system as subsonic_system
from app.web.subsonic import users as subsonic_users

ROOT = Path(__file__).resolve().parent.parent
VERSION = "0.1.0"
API_TABLES = [auth.routes, users.routes, songs.routes, artists.routes, albums.routes, images.routes,
              listening.routes, meta.routes, stream.routes, playlists.routes, library.routes,
              search_routes.routes, app_passwords.routes]
PAGE_ROUTES = [auth_pages.routes, home_pages.routes, catalog_pages.routes, account_pages.routes,
               search_pages.routes, admin_dashboard.routes, admin_users.routes, admin_catalog.routes,
               admin_audit.routes, library_pages.routes, admin_playlists.routes,
               listening_pages.routes]
# The /rest methods (SPEC 13), one table per area (app/web/subsonic/registry.py).
SUBSONIC_TABLES = [subsonic_system.methods, subsonic_users.methods, subsonic_browsing.methods,
                   subsonic_lists.methods, subsonic_searching.methods, subsonic_media.methods,
                   subsonic_annotation.methods, subsonic_playlists.methods,
                   subsonic_sharing.methods, subsonic_queue.methods]
MAX_BODY = 1024**2


# Each resource is opened and closed by the context beside its adapter; these put it in the app.
async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """MySQL pool for the app's lifetime; migrations are applied on start (idempotent)."""
    async with database_context(app[keys.CONFIG].database_url) as db:
        app[keys.DB] = db
        yield


async def kv_ctx(app: web.Application) -> AsyncIterator[None]:
    async with kv_context(app[keys.CONFIG], warn_if_down=True) as kv:
        app[keys.KV] = kv
        yield


async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
    """The broker connection; when it is down at start, it keeps retrying in the background."""
    async with bus_context(app[keys.CONFIG]) as bus:
        app[keys.BUS] = bus
        yield


async def backbone_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outbox relay; without a broker, the event consumers too (SPEC 2, 7)."""
    config = app[keys.CONFIG]
    backbone = await start_backbone(
        config, app[keys.DB], app[keys.BUS], run_consumers=not config.amqp_url, kv=app[keys.KV]
    )
    app[keys.BACKBONE] = backbone
    yield
    await backbone.stop()


async def search_ctx(app: web.Application) -> AsyncIterator[None]:
    """The search backend (Meilisearch or the embedded index, read side) and the slot of the
    admin's background rebuild, cancelled before the backend closes."""
    async with search_context(app[keys.CONFIG]) as backend:
        app[keys.SEARCH_BACKEND] = backend
        app[keys.REINDEX_TASK] = {}
        yield
        task = app[keys.REINDEX_TASK].get("task")
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    """The service graph (app/container.py), each service under its app key."""
    services = build_services(app[keys.CONFIG], app[keys.DB], app[keys.KV],
                              search_backend=app[keys.SEARCH_BACKEND], links=RouterLinks(app.router))
    app[keys.USERS] = services.users
    app[keys.AUTH] = services.auth
    app[keys.APP_PASSWORDS] = services.app_passwords
    app[keys.MEDIA] = services.media
    app[keys.CACHE] = services.cache
    services.cache.start()
    app[keys.CATALOG] = services.catalog
    app[keys.INGEST] = services.ingest
    app[keys.LISTENING] = services.listening
    app[keys.NOW_PLAYING] = services.now_playing
    app[keys.PLAY_QUEUE] = services.play_queue
    app[keys.PLAYLISTS] = services.playlists
    app[keys.LIBRARY] = services.library
    app[keys.AUDIT] = services.audit
    app[keys.SEARCH] = services.search
    app[keys.STREAM] = services.stream
    yield
    await services.cache.settle()  # values being stored reach the store before it closes


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
    # The search backend opens before the services that read it; streams after the services.
    app.cleanup_ctx.extend([database_ctx, kv_ctx, bus_ctx, backbone_ctx, search_ctx, services_ctx,
                            streaming_ctx])
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(ROOT / "templates")),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.globals["version"] = VERSION
    for table in API_TABLES:
        table.install(app)
    for routes in PAGE_ROUTES:
        app.router.add_routes(routes)
    subsonic.install(app, SUBSONIC_TABLES, VERSION)
    app.router.add_static("/static/", ROOT / "static", name="static", append_version=True)
    app[keys.OPENAPI] = openapi.build(API_TABLES, VERSION)
    app.on_cleanup.append(_flush_access_log)
    return app


# The collector's thresholds while serving: a young generation of 50,000 allocations instead of
# 700, so the objects of one answer (an artist index of 20,000 entries) die young rather than
# being promoted and paid for again in full collections of the whole heap.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc(app: web.Application) -> None:
    """Collect less often while serving, and out of sight of the collector once started
    (gc.freeze): the modules, routes, templates and pools of start-up live as long as the process,
    and every full collection walked them again, 30-40 ms each, one every request or two of a
    20,000-artist index."""
    gc.set_threshold(*GC_THRESHOLDS)

    async def settle(app: web.Application) -> None:
        gc.collect()
        gc.freeze()

    app.on_startup.append(settle)


def serve(app: web.Application, config: Config) -> None:
    """Serve `app` until interrupted (`python -m app serve`)."""
    tune_gc(app)
    web.run_app(app, host=config.host, port=config.port, print=None,
                access_log=None, shutdown_timeout=10)
