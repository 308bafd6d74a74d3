"""The embedded search backend: a tantivy index under `<data_dir>/search/`.

Layout and roles:
- `<root>/current` is a symlink to the live index directory `<root>/idx-<stamp>`.
- One process writes the live index: the one running the event consumers (the worker, or
  `serve` when there is no broker). Tantivy itself refuses a second writer on a directory.
  Writes are group-committed: every caller's operations wait for the next commit, and operations
  that arrive during a commit go together into the following one.
- Every other process (and the web half of `serve`) opens it read-only and, before each search,
  notices a new commit (meta.json replaced) with one `stat` and calls `Index.reload()`, and a
  swapped `current` with one `readlink` and reopens.
- `rebuild` builds into a fresh `idx-<stamp>` directory (its own writer) and swaps `current`
  atomically (`rename` of a new symlink). The live writer and the swap coordinate through an
  exclusive `flock` on `<root>/.lock`: the writer holds it while it checks `current`, applies a
  batch and commits; the rebuild holds it while it catches up on the events recorded since it
  began and swaps. So a live write lands either before the catch-up (which re-derives it) or after
  the swap (on the new index, which the writer reopens) — never only on the discarded index.

Text is folded in Python on both sides (NFKD without combining marks, lower-case, a few letters
that do not decompose), then split on non-alphanumerics as tantivy's default tokenizer does.
Ranking: an exact title (all its words) first, then phrase and exact-word matches, then prefixes
of the last word, then typos (distance 1 from 4 letters, 2 from 8, transpositions cost 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import threading
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tantivy

from app.adapters.search.documents import subtitle
from app.adapters.search.port import Doc, Fill, Hit, HitPage, SearchQuery, SearchUnavailable

log = logging.getLogger(__name__)
Occur, Q = tantivy.Occur, tantivy.Query
_TOKEN = re.compile(r"[^\W_]+")
_EXTRA_FOLD = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "đ": "d", "ł": "l",
                             "ħ": "h", "ı": "i", "þ": "th", "ð": "d"})
INT_FIELDS = ("entity_id", "artist_id", "album_id", "year", "owner_id")
MAX_TOKENS = 8
WRITER_HEAP = 32_000_000
BUILD_HEAP = 200_000_000


def fold(text: str) -> str:
    """Lower-case, accents and other marks removed: "Björk" and "bjork" fold alike."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_EXTRA_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(fold(text))


def typo_distance(token: str) -> int:
    """Typos allowed in a word, as Meilisearch's defaults: 1 from 4 letters, 2 from 8."""
    return 0 if len(token) < 4 else 1 if len(token) < 8 else 2


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("doc_id", stored=True, tokenizer_name="raw")
    sb.add_text_field("type", stored=True, tokenizer_name="raw")
    sb.add_text_field("name", tokenizer_name="default")
    sb.add_text_field("name_exact", tokenizer_name="raw")
    sb.add_text_field("context", tokenizer_name="default")
    sb.add_text_field("genre", tokenizer_name="raw")
    sb.add_text_field("display", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("subtitle", stored=True, tokenizer_name="raw", index_option="basic")
    for name in INT_FIELDS:
        sb.add_integer_field(name, stored=name == "entity_id", indexed=True, fast=name == "entity_id")
    sb.add_integer_field("collaborator_ids", indexed=True)
    sb.add_boolean_field("is_public", indexed=True)
    sb.add_bytes_field("source", stored=True)
    return sb.build()


SCHEMA = _schema()


def to_tantivy(doc: Doc) -> tantivy.Document:
    context = " ".join(str(doc[k]) for k in ("artist_name", "album_title", "featured",
                                             "owner_username", "description") if doc.get(k))
    fields: dict[str, Any] = {
        "doc_id": doc["id"], "type": doc["type"], "name": fold(doc["name"] or ""),
        "name_exact": " ".join(tokens(doc["name"] or "")), "context": fold(context),
        "display": doc["name"] or "", "subtitle": subtitle(doc),
        "is_public": bool(doc["is_public"]),
        "source": json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(),
    }
    if doc.get("genre"):
        fields["genre"] = fold(doc["genre"])
    for name in INT_FIELDS:
        if doc.get(name) is not None:
            fields[name] = int(doc[name])
    if doc.get("collaborator_ids"):
        fields["collaborator_ids"] = [int(x) for x in doc["collaborator_ids"]]
    return tantivy.Document(**fields)


# ---------------------------------------------------------------- queries


def _visible(viewer_id: int) -> tantivy.Query:
    """Public, or owned by the viewer, or shared with them: part of every query."""
    return Q.boolean_query([
        (Occur.Should, Q.term_query(SCHEMA, "is_public", True)),
        (Occur.Should, Q.term_query(SCHEMA, "owner_id", viewer_id)),
        (Occur.Should, Q.term_query(SCHEMA, "collaborator_ids", viewer_id)),
    ])


def _word(token: str, last: bool) -> tantivy.Query:
    """One word of the query, in the title or the context, exact > prefix > typo."""
    options: list[tuple[tantivy.Occur, tantivy.Query]] = []
    for field, weight in (("name", 1.0), ("context", 0.35)):
        options.append((Occur.Should, Q.boost_query(Q.term_query(SCHEMA, field, token), 3.0 * weight)))
        distance = typo_distance(token)
        if last:
            options.append((Occur.Should, Q.boost_query(
                Q.fuzzy_term_query(SCHEMA, field, token, 0, True, True), 2.0 * weight)))
        if distance:
            options.append((Occur.Should, Q.boost_query(
                Q.fuzzy_term_query(SCHEMA, field, token, distance, True, last), 1.0 * weight)))
    return Q.boolean_query(options)


def text_query(text: str) -> tantivy.Query | None:
    words = tokens(text)[:MAX_TOKENS]
    if not words:
        return None
    clauses = [(Occur.Must, _word(w, i == len(words) - 1)) for i, w in enumerate(words)]
    clauses.append((Occur.Should, Q.boost_query(
        Q.term_query(SCHEMA, "name_exact", " ".join(words)), 20.0)))
    if len(words) > 1:
        phrase: list[str | tuple[int, str]] = list(words)
        clauses.append((Occur.Should, Q.boost_query(Q.phrase_query(SCHEMA, "name", phrase), 4.0)))
    return Q.boolean_query(clauses)


def build_query(text: str, viewer_id: int, type_: str | None,
                filters: dict[str, Any] | None = None) -> tantivy.Query:
    words = text_query(text)
    clauses = [(Occur.Must, words if words is not None else Q.all_query()),
               (Occur.Must, _visible(viewer_id))]
    if type_:
        clauses.append((Occur.Must, Q.term_query(SCHEMA, "type", type_)))
    for name, value in (filters or {}).items():
        term = fold(value) if name == "genre" else int(value)
        clauses.append((Occur.Must, Q.term_query(SCHEMA, name, term)))
    return Q.boolean_query(clauses)


def _hit(searcher: tantivy.Searcher, score: float, address: Any) -> Hit:
    doc = searcher.doc(address)
    return Hit(type=str(doc.get_first("type")), id=int(doc.get_first("entity_id") or 0),
               text=doc.get_first("display") or "", score=float(score),
               subtitle=doc.get_first("subtitle") or "")


# ---------------------------------------------------------------- the directory and its lock


class _Root:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.current = root / "current"
        self.lock_path = root / ".lock"

    @contextlib.contextmanager
    def locked(self) -> Any:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def target(self) -> Path | None:
        try:
            return self.root / os.readlink(self.current)
        except FileNotFoundError:
            return None

    def new_dir(self) -> Path:
        path = self.root / f"idx-{time.time_ns()}"
        path.mkdir(parents=True)
        return path

    def point_at(self, path: Path) -> None:
        """Switch `current` atomically: a new symlink renamed over the old one."""
        tmp = self.root / f".current-{os.getpid()}-{threading.get_ident()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(path.name, tmp)
        os.replace(tmp, self.current)

    def ensure(self) -> Path:
        """The live index directory, created empty on first use."""
        with self.locked():
            target = self.target()
            if target is None or not (target / "meta.json").exists():
                target = self.new_dir()
                tantivy.Index(SCHEMA, path=str(target))
                self.point_at(target)
            return target

    def prune(self, keep: Sequence[Path]) -> None:
        """Remove the index directories no longer pointed at (the previous one is kept a while,
        for readers that have not reopened yet)."""
        names = {p.name for p in keep}
        for path in self.root.glob("idx-*"):
            if path.name not in names:
                shutil.rmtree(path, ignore_errors=True)


_OPSTAMP = re.compile(rb'"opstamp"\s*:\s*(\d+)')


class _Reader:
    def __init__(self, root: _Root) -> None:
        self.root = root
        self.path: Path | None = None
        self.index: tantivy.Index | None = None
        self.stamp: tuple[int, int] | None = None
        self.lock = threading.Lock()

    def searcher(self) -> tantivy.Searcher:
        with self.lock:
            target = self.root.target()
            if target is None:
                target = self.root.ensure()
            meta = os.stat(target / "meta.json")
            stamp = (meta.st_ino, meta.st_mtime_ns)
            if self.index is None or target != self.path:
                self.index = tantivy.Index.open(str(target))
                self.index.config_reader(reload_policy="manual")
                self.path, self.stamp = target, stamp
            elif stamp != self.stamp:
                self.index.reload()
                self.stamp = stamp
            return self.index.searcher()


class _Writer:
    """The live index's single writer, opened lazily, reopened after a swap."""

    def __init__(self, root: _Root) -> None:
        self.root = root
        self.path: Path | None = None
        self.index: tantivy.Index | None = None
        self.writer: tantivy.IndexWriter | None = None

    def apply(self, ops: list[tuple[str, Any]]) -> None:
        with self.root.locked():
            target = self.root.target()
            if target is None:
                raise SearchUnavailable("the search index directory is missing")
            if self.writer is None or target != self.path:
                self.close()
                self.index = tantivy.Index.open(str(target))
                self.writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
                self.path = target
            writer = self.writer
            try:
                for op, value in ops:
                    if op == "delete":
                        writer.delete_documents_by_term("doc_id", value)
                    else:
                        writer.delete_documents_by_term("doc_id", value["id"])
                        writer.add_document(to_tantivy(value))
                writer.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    writer.rollback()
                self.close()
                raise

    def close(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.wait_merging_threads()
        self.writer = self.index = None
        self.path = None


class _Build:
    """A fresh index being filled by a rebuild (a Target)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index = tantivy.Index(SCHEMA, path=str(path))
        self.writer = self.index.writer(heap_size=BUILD_HEAP, num_threads=2)
        self.fresh = True  # while filling, nothing can be there yet: no deletes needed

    async def upsert(self, docs: Sequence[Doc]) -> None:
        def add() -> None:
            for doc in docs:
                if not self.fresh:
                    self.writer.delete_documents_by_term("doc_id", doc["id"])
                self.writer.add_document(to_tantivy(doc))
        await asyncio.to_thread(add)

    async def delete(self, doc_ids: Sequence[str]) -> None:
        def remove() -> None:
            for value in doc_ids:
                self.writer.delete_documents_by_term("doc_id", value)
        await asyncio.to_thread(remove)

    def commit(self) -> None:
        self.writer.commit()

    def close(self) -> None:
        self.writer.wait_merging_threads()


# ---------------------------------------------------------------- the backend


class EmbeddedSearch:
    """The SearchPort over a tantivy index directory."""

    name = "embedded"

    def __init__(self, root: Path) -> None:
        self.root = _Root(root)
        self.reader = _Reader(self.root)
        self.writer = _Writer(self.root)
        self._pending: list[tuple[str, Any]] = []
        self._queued = 0
        self._flushed = 0
        self._flush_lock = asyncio.Lock()
        self.failing: Exception | None = None  # tests set it to simulate an outage

    async def start(self) -> None:
        await asyncio.to_thread(self.root.ensure)

    async def close(self) -> None:
        await asyncio.to_thread(self.writer.close)

    async def healthy(self) -> bool:
        try:
            await asyncio.to_thread(self.reader.searcher)
        except Exception:  # noqa: BLE001 - any failure means unhealthy
            return False
        return self.failing is None

    def version(self) -> str | None:
        """The live directory and the opstamp of its last commit (tantivy's meta.json, rewritten
        by every commit; a rebuild is a new directory): read on the event loop, a small file."""
        if self.failing is not None:
            return None
        target = self.root.target()
        if target is None:
            return None
        try:
            meta = (target / "meta.json").read_bytes()
        except OSError:
            return None
        # The index's own opstamp closes the file (segments' deletes carry opstamps too).
        stamp = _OPSTAMP.match(meta, meta.rfind(b'"opstamp"'))
        return f"{target.name}.{int(stamp.group(1))}" if stamp else None

    # reads
    def _check(self) -> None:
        if self.failing is not None:
            raise SearchUnavailable() from self.failing

    async def search(self, queries: Sequence[SearchQuery]) -> list[HitPage]:
        self._check()

        def run() -> list[HitPage]:
            searcher = self.reader.searcher()
            pages = []
            for q in queries:
                query = build_query(q.text, q.viewer_id, q.type, q.filters.for_type(q.type))
                result = searcher.search(query, limit=q.limit, offset=q.offset, count=True)
                pages.append(HitPage([_hit(searcher, s, a) for s, a in result.hits],
                                     int(getattr(result, "count", 0) or 0)))
            return pages

        return await self._read(run)

    async def suggest(self, text: str, viewer_id: int, limit: int) -> list[Hit]:
        self._check()
        if not tokens(text):
            return []

        def run() -> list[Hit]:
            searcher = self.reader.searcher()
            result = searcher.search(build_query(text, viewer_id, None), limit=limit, count=False)
            return [_hit(searcher, s, a) for s, a in result.hits]

        return await self._read(run)

    async def _read(self, work: Any) -> Any:
        try:
            return await asyncio.to_thread(work)
        except SearchUnavailable:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("embedded search failed: %s", exc)
            raise SearchUnavailable() from exc

    async def dump(self) -> list[Doc]:
        def run() -> list[Doc]:
            searcher = self.reader.searcher()
            total = searcher.num_docs
            result = searcher.search(Q.all_query(), limit=max(total, 1), count=False)
            docs = [json.loads(bytes(searcher.doc(a).get_first("source") or b"{}")) for _, a in result.hits]
            return sorted(docs, key=lambda d: str(d["id"]))
        return await asyncio.to_thread(run)

    # writes: group commit
    async def upsert(self, docs: Sequence[Doc]) -> None:
        await self._write([("upsert", doc) for doc in docs])

    async def delete(self, doc_ids: Sequence[str]) -> None:
        await self._write([("delete", value) for value in doc_ids])

    async def _write(self, ops: list[tuple[str, Any]]) -> None:
        if not ops:
            return
        self._check()
        self._pending.extend(ops)
        self._queued += 1
        mine = self._queued
        async with self._flush_lock:
            if self._flushed >= mine:
                return  # another caller's commit carried these operations
            batch, self._pending = self._pending, []
            upto = self._queued
            try:
                await asyncio.to_thread(self.writer.apply, batch)
            except Exception as exc:
                self._pending = batch + self._pending  # the next flush tries them again
                log.warning("embedded index write failed: %s", exc)
                raise SearchUnavailable() from exc
            self._flushed = upto

    # rebuild
    async def rebuild(self, fill: Fill, catch_up: Fill) -> None:
        await asyncio.to_thread(self.root.ensure)
        path = await asyncio.to_thread(self.root.new_dir)
        build = await asyncio.to_thread(_Build, path)
        try:
            await fill(build)
            await asyncio.to_thread(build.commit)
            build.fresh = False
            previous = self.root.target()
            lock = self.root.locked()
            await asyncio.to_thread(lock.__enter__)
            try:
                await catch_up(build)
                await asyncio.to_thread(build.commit)
                await asyncio.to_thread(self.root.point_at, path)
            finally:
                lock.__exit__(None, None, None)
            await asyncio.to_thread(build.close)
        except BaseException:
            with contextlib.suppress(Exception):
                build.writer.rollback()
            shutil.rmtree(path, ignore_errors=True)
            raise
        await asyncio.to_thread(self.root.prune, [p for p in (path, previous) if p is not None])
