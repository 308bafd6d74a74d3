"""Search (SPEC 8): one port, two backends, chosen by configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.adapters.search.port import SearchPort, SearchUnavailable
from app.config import Config

__all__ = ["SearchPort", "SearchUnavailable", "make_search", "index_root", "search_context"]


def index_root(config: Config) -> Path:
    """Where the embedded index lives: `<data_dir>/search/`."""
    return Path(config.data_dir) / "search"


def make_search(config: Config) -> SearchPort:
    """Meilisearch when `SONORA_MEILI_URL` is set, else the embedded tantivy index."""
    if config.meili_url:
        from app.adapters.search.meili import MeiliSearch

        return MeiliSearch(config.meili_url, config.meili_key, config.namespace)
    from app.adapters.search.embedded import EmbeddedSearch

    return EmbeddedSearch(index_root(config))


@asynccontextmanager
async def search_context(config: Config) -> AsyncIterator[SearchPort]:
    """The configured backend, started for the block and closed after it."""
    backend = make_search(config)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()
