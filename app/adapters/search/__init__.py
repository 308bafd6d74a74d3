"""Search (SPEC 8): one port, two backends, chosen by configuration."""

from __future__ import annotations

from pathlib import Path

from app.adapters.search.port import SearchPort, SearchUnavailable
from app.config import Config

__all__ = ["SearchPort", "SearchUnavailable", "make_search", "index_root"]


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
