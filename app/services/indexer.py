"""Keeping the index equal to MySQL: the `search_index` consumer's effect, and `reindex`.

Both go through `sync`: an entity's document is rebuilt from MySQL as it is now (absent → the
document is removed), so applying an event twice, late, or out of order leaves the same index,
and what live indexing produces equals what a rebuild produces. An artist's or album's change also
refreshes the documents that embed its name (its songs, an artist's albums).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence, Set
from typing import Any

from app.adapters.search import documents, make_search
from app.adapters.search.port import SearchPort, SearchUnavailable, Target
from app.events import CATALOG_ENTITIES, CatalogChanged
from app.repos import outbox
from app.repos.db import Database, DatabaseUnavailable, Executor, Tx
from app.repos.search import SearchRepo

log = logging.getLogger(__name__)
CHUNK = 2000
CATCH_UP_SLACK = dt.timedelta(seconds=10)
CONSUMER = "search_index"  # the consumer that applies catalog events to the index
# Events published longer ago than this were delivered long before a rebuild: not recorded again.
COVER_PUBLISHED_WITHIN = dt.timedelta(days=1)
Progress = Callable[[int, int], None]
# Documents embed the names of entities earlier in this list (a song its album's and artist's).
LOCK_ORDER = ("artist", "album", "song", "playlist")


class Indexer:
    """Applies catalogue changes to a search target."""

    def __init__(self, db: Database, search: SearchPort) -> None:
        self.db = db
        self.search = search
        self.repo = SearchRepo(db)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def sync(self, target: Target, entity: str, ids: Sequence[int],
                   dependents: bool = True, sql: Executor | None = None) -> None:
        """Make these entities' documents (and their dependents') match MySQL.

        `sql` is where the rows are read: the consumer's transaction (so a handler holds one
        connection, never two), or the pool when no transaction is open (rebuilds)."""
        source = sql if sql is not None else self.db
        ids = sorted({int(i) for i in ids})
        docs = await documents.build(source, entity, ids)
        present = {d["entity_id"] for d in docs}
        await target.upsert(docs)
        await target.delete([documents.doc_id(entity, i) for i in ids if i not in present])
        if not dependents:
            return
        found = await SearchRepo(source).dependents(entity, ids)
        # Their documents are locked too, or a concurrent event for one of them could read before
        # this read and write after this write (a stale document would win).
        async with self._holding([documents.doc_id(kind, i)
                                  for kind, kind_ids in found.items() for i in kind_ids]):
            for kind in sorted(found, key=LOCK_ORDER.index):
                kind_ids = found[kind]
                for start in range(0, len(kind_ids), CHUNK):
                    await self.sync(target, kind, kind_ids[start:start + CHUNK], dependents=False,
                                    sql=source)

    @contextlib.asynccontextmanager
    async def _holding(self, keys: Sequence[str]) -> AsyncIterator[None]:
        """Hold the locks of these documents: one event at a time reads and writes each. Taken
        in one global order (artists, albums, songs, playlists; then by id) after the locks of
        the entity an event names, which is always earlier in that order: no cycle can form."""
        def rank(key: str) -> tuple[int, int]:
            entity, entity_id = documents.parse_doc_id(key)
            return LOCK_ORDER.index(entity), entity_id

        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(set(keys), key=rank):
                lock, users = self._locks.get(key, (asyncio.Lock(), 0))
                self._locks[key] = (lock, users + 1)
                stack.callback(self._release, key)
                await stack.enter_async_context(lock)
            yield

    def _release(self, key: str) -> None:
        lock, users = self._locks[key]
        if users <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)

    async def apply(self, envelope: dict[str, Any]) -> None:
        """The consumer's effect for one `catalog.<entity>.<change>` event, read a statement at a
        time from the pool (no connection held while the index writes: `LiveIndex.handle`)."""
        data = envelope.get("data") or {}
        entity, entity_id = data.get("entity"), data.get("entity_id")
        if entity not in CATALOG_ENTITIES or not isinstance(entity_id, int):
            log.warning("search_index ignored a malformed event %s", envelope.get("id"))
            return
        # One entity at a time: two events for it never interleave their read and their write.
        async with self._holding([documents.doc_id(entity, entity_id)]):
            await self.sync(self.search, entity, [entity_id])

    # rebuild
    async def fill(self, target: Target, progress: Progress | None = None) -> int:
        """Every document, in id order by chunks; returns how many."""
        totals = {e: await self.repo.count(e) for e in CATALOG_ENTITIES}
        grand, done = sum(totals.values()), 0
        if progress:
            progress(0, grand)
        for entity in CATALOG_ENTITIES:
            after = 0
            while True:
                rows = await self.repo.doc_rows_after(entity, after, CHUNK)
                if not rows:
                    break
                after = int(rows[-1]["id"])
                await target.upsert(await documents.docs_from_rows(self.repo, entity, rows))
                done += len(rows)
                if progress:
                    progress(done, max(grand, done))
        return done

    async def catch_up(self, target: Target, since: dt.datetime,
                       seen: list[str] | None = None, filled: Set[str] = frozenset()) -> int:
        """Re-derive every entity named by a `catalog.*` event recorded since `since`, except the
        events in `filled`, committed before the fill began (so read by it); every event id is
        added to `seen`."""
        wanted: dict[str, set[int]] = {}
        for row in await self.repo.catalog_events_since(since):
            if seen is not None:
                seen.append(str(row["event_id"]))
            if row["event_id"] in filled:
                continue
            try:
                data = json.loads(row["payload"])["data"]
                wanted.setdefault(str(data["entity"]), set()).add(int(data["entity_id"]))
            except (ValueError, KeyError, TypeError):
                continue
        for entity, ids in wanted.items():
            if entity in CATALOG_ENTITIES:
                await self.sync(target, entity, sorted(ids))
        return sum(len(ids) for ids in wanted.values())

    async def reindex(self, progress: Progress | None = None) -> int:
        """Rebuild the whole index into a fresh one and swap it in; safe while the worker runs.

        Once the new index is in place, every `catalog.*` event it covers is recorded as applied
        by the `search_index` consumer: those its catch-up read, and the older ones (which the
        fill read the effect of). So after an import of 100,000 songs and a `reindex`, the
        consumer skips the import's events (one small transaction each) instead of committing
        the index once per song for an hour. Recorded only after the swap: a rebuild that fails
        leaves every event to the consumer."""
        since = await self.repo.now() - CATCH_UP_SLACK
        recent = since - COVER_PUBLISHED_WITHIN
        count = 0
        seen: list[str] = []
        filled: set[str] = set()

        async def fill(target: Target) -> None:
            nonlocal count, filled
            # The recent events committed by now: every read of the fill, a later statement,
            # sees their effects, so the catch-up need not apply them again (after an import it
            # would redo most of the index). Those still open now are caught up as before.
            filled = await self.repo.catalog_event_ids_since(since)
            count = await self.fill(target, progress)

        async def catch_up(target: Target) -> None:
            await self.catch_up(target, since, seen, filled)

        await self.search.rebuild(fill, catch_up)
        try:
            await outbox.mark_covered(self.db, CONSUMER, seen, since, recent)
        except DatabaseUnavailable as exc:  # the consumer then redoes them: slower, never wrong
            log.warning("could not record the events the rebuild covered: %s", exc)
        return count


# Writes that change a document without touching its entity: they emit these events as well, so
# live indexing equals a rebuild (tests/test_index_drift.py checks it after random writes).
async def before_songs_deleted(tx: Tx, song_ids: Sequence[int]) -> list[CatalogChanged]:
    """`upserted` for the playlists holding these songs (their song counts drop); call in the
    deleting transaction, before the delete cascades their entries away."""
    return [CatalogChanged("playlist", pid, "upserted")
            for pid in await SearchRepo(tx).playlists_with_songs(song_ids)]


async def user_changed(tx: Tx, user_id: int, deleting: bool = False) -> list[CatalogChanged]:
    """The playlists whose documents name this user: `upserted` after a rename; when the user is
    being deleted (call before the delete), `deleted` for their own, `upserted` for the shared."""
    owned, shared = await SearchRepo(tx).playlists_of_user(user_id)
    if not deleting:
        return [CatalogChanged("playlist", pid, "upserted") for pid in owned]
    gone = [CatalogChanged("playlist", pid, "deleted") for pid in owned]
    return gone + [CatalogChanged("playlist", pid, "upserted") for pid in shared if pid not in owned]


async def apply_with_retry(handle: Callable[[], Any], stopping: asyncio.Event,
                           first_delay: float = 0.2, max_delay: float = 5.0) -> None:
    """Run `handle` until it does not fail with SearchUnavailable (or the consumer stops).

    While the backend is down the event stays unacknowledged here instead of burning through the
    bus's bounded attempts into the dead letters; the index catches up once it is back.
    """
    delay = first_delay
    while True:
        try:
            await handle()
            return
        except SearchUnavailable:
            if stopping.is_set():
                raise
            log.warning("search backend unavailable; retrying the event in %.1f s", delay)
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, max_delay)


class LiveIndex:
    """The `search_index` consumer's state: its backend, opened on the first event (so a process
    that only declares the queue never opens a writer), and the stop signal for retries."""

    def __init__(self, db: Database, config: Any) -> None:
        self.db = db
        self.config = config
        self.stopping = asyncio.Event()
        self.backend: SearchPort | None = None
        self.indexer: Indexer | None = None
        self._opening = asyncio.Lock()

    async def _indexer(self) -> Indexer:
        async with self._opening:
            if self.indexer is None:
                backend = make_search(self.config)
                await backend.start()
                self.backend, self.indexer = backend, Indexer(self.db, backend)
            return self.indexer

    async def handle(self, envelope: dict[str, Any]) -> None:
        """Apply one event unless a rebuild or an earlier delivery did, then record it as done.

        No transaction spans the index write: the documents are read a statement at a time from
        the pool, and the write (which waits for the index's next group commit) holds no
        connection. So many events can be in flight at once without as many connections, and
        one commit carries them all. The event is recorded only once its write landed: a crash
        in between redelivers it, and applying it again changes nothing (`sync` rebuilds the
        documents from MySQL as it is)."""
        event_id = str(envelope.get("id"))
        if await outbox.processed(self.db, CONSUMER, event_id):
            return
        indexer = await self._indexer()
        await apply_with_retry(lambda: indexer.apply(envelope), self.stopping)
        await outbox.mark_done(self.db, CONSUMER, event_id)

    def stop(self) -> None:
        self.stopping.set()

    async def close(self) -> None:
        if self.backend is not None:
            await self.backend.close()
            self.backend = self.indexer = None


def start_reindex(db: Database, search: SearchPort, slot: dict[str, Any]) -> bool:
    """Start a rebuild in the background unless one runs; `slot` keeps its task. True if started."""
    running = slot.get("task")
    if running is not None and not running.done():
        return False

    async def run() -> None:
        try:
            count = await Indexer(db, search).reindex()
            log.info("search index rebuilt: %d documents", count)
        except Exception:
            log.exception("search index rebuild failed")
            raise

    slot["task"] = asyncio.create_task(run(), name="search-reindex")
    return True
