"""The plans of the listening, library, playlist, audit and reindex queries on a generated library
(issue 12): each list reads the rows it returns, in an index's order, and never sorts or groups a
big table whole. The SQL comes from the repositories themselves (a recording executor catches
what a repository method would run); MariaDB's ANALYZE runs it on a library of 60,000 songs
made by bench.scale_data, in a database of this run's own, dropped at the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any, cast

import aiomysql
import pytest
from conftest import MYSQL_URL, RUN_ID

from app.repos.audit import AuditRepo
from app.repos.db import DbTarget
from app.repos.library import LibraryRepo
from app.repos.listening import ListeningRepo
from app.repos.playlists import PlaylistRepo
from app.repos.search import SearchRepo
from bench.scale_data import Size, generate

SONGS = 60_000
PAGE = 20


class Recorder:
    """An executor that runs nothing and keeps each statement a repository method would run."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def _keep(self, sql: str, params: Any) -> None:
        self.statements.append((sql, tuple(params or ())))

    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        self._keep(sql, params)
        return []

    async def fetchone(self, sql: str, params: Any = ()) -> Any:
        self._keep(sql, params)
        return {}

    async def fetchval(self, sql: str, params: Any = ()) -> Any:
        self._keep(sql, params)
        return 0

    async def execute(self, sql: str, params: Any = (), **_: Any) -> int:
        self._keep(sql, params)
        return 0


async def statements(call: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """What `call(executor)` would run."""
    recorder = Recorder()
    await call(cast(Any, recorder))
    return recorder.statements


@pytest.fixture(scope="module")
def scale_db() -> Iterator[str]:
    name = f"sonora_plans_{RUN_ID}"
    # generate() starts with DROP DATABASE IF EXISTS, a warning (an error here) when there is none.
    asyncio.run(admin(f"CREATE DATABASE `{name}`"))
    asyncio.run(generate(name, Size.for_songs(SONGS), mysql_url=MYSQL_URL, progress=False))
    yield name
    asyncio.run(admin(f"DROP DATABASE `{name}`"))


async def admin(sql: str) -> None:
    t = DbTarget.parse(f"{MYSQL_URL}/x")
    connection = await aiomysql.connect(host=t.host, port=t.port, user=t.user,
                                        password=t.password, autocommit=True)
    try:
        await query(connection, sql)
    finally:
        connection.close()


@pytest.fixture
async def conn(scale_db: str) -> Any:
    t = DbTarget.parse(f"{MYSQL_URL}/{scale_db}")
    connection = await aiomysql.connect(host=t.host, port=t.port, user=t.user,
                                        password=t.password, db=scale_db, autocommit=True)
    try:
        # The generator fills plays.artist_id and audit_action_counts as the app keeps them.
        assert await query(connection, "SELECT COUNT(*) AS n FROM plays WHERE artist_id IS NULL") == [{"n": 0}]
        yield connection
    finally:
        connection.close()


async def query(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    async with conn.cursor(aiomysql.DictCursor) as cur:
        await cur.execute(sql, params or None)
        return list(await cur.fetchall())


async def analyze(conn: Any, statement: tuple[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    """ANALYZE runs the statement: `r_rows` is what each table really gave, per loop."""
    sql, params = statement
    return await query(conn, "ANALYZE " + sql, params)


def sorted_whole(plan: list[dict[str, Any]]) -> list[str]:
    """Tables sorted or grouped through a temporary table. Every table in these statements can
    grow with the library or its use; a derived table (`<derived2>`: a page's ids) is a page."""
    return [f"{r['table']}: {r['Extra']}" for r in plan
            if not r["table"].startswith("<") and ("filesort" in (r["Extra"] or "")
                                                   or "temporary" in (r["Extra"] or ""))]


def rows_read(plan: list[dict[str, Any]], table: str) -> float:
    return max(float(r["r_rows"] or 0) for r in plan if r["table"] == table)


def rows_of(plan: list[dict[str, Any]], table: str) -> list[dict[str, Any]]:
    found = [r for r in plan if r["table"] == table]
    assert found, plan
    return found


async def listener(conn: Any) -> int:
    rows = await query(conn, "SELECT id FROM users WHERE username_canon = 'listener1'")
    return int(rows[0]["id"])


async def test_reindex_batches_read_only_their_rows(conn):
    for entity, after in (("song", SONGS // 2), ("album", 100), ("artist", 100)):
        [batch] = await statements(lambda db, e=entity, a=after: SearchRepo(db).doc_rows_after(e, a, 2000))
        plan = await analyze(conn, batch)
        assert not sorted_whole(plan), plan
        table = {"song": "s", "album": "al", "artist": "ar"}[entity]
        assert rows_read(plan, table) <= 2000, plan
        assert all(r["type"] in ("range", "eq_ref") for r in plan), plan


async def test_history_and_recent_read_a_page_of_plays(conn):
    user_id = await listener(conn)
    page, total = await statements(lambda db: ListeningRepo(db).history(user_id, PAGE, 0))
    plan = await analyze(conn, page)
    assert not sorted_whole(plan) and rows_read(plan, "p") <= PAGE, plan
    plan = await analyze(conn, total)
    assert rows_of(plan, "p")[0]["key"] == "ix_plays_user_listen", plan
    assert "Using index" in rows_of(plan, "p")[0]["Extra"], plan
    [recent] = await statements(lambda db: ListeningRepo(db).recent_plays(user_id, 80))
    plan = await analyze(conn, recent)
    assert not sorted_whole(plan) and rows_read(plan, "p") <= 80, plan


async def test_personal_tops_and_totals_come_from_the_index(conn):
    user_id = await listener(conn)
    month = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=30)
    for call in (lambda db: ListeningRepo(db).stats(user_id),
                 lambda db: ListeningRepo(db).artist_plays(user_id),
                 lambda db: ListeningRepo(db).top_songs(user_id, month, 5),
                 lambda db: ListeningRepo(db).per_day(user_id, month)):
        [statement] = await statements(call)
        plan = await analyze(conn, statement)
        plays = rows_of(plan, "p")[0]
        # Grouping one listener's plays is fine; reading them row by row, or anyone else's, not.
        assert plays["key"] == "ix_plays_user_listen" and "Using index" in plays["Extra"], plan
        assert all(r["type"] != "ALL" for r in plan if not r["table"].startswith("<")), plan
    [statement] = await statements(lambda db: ListeningRepo(db).artist_plays(user_id))
    plan = await analyze(conn, statement)
    # Plays that recorded their artist never look their song up.
    assert all(r["r_rows"] is None for r in rows_of(plan, "s")), plan


async def test_charts_of_short_periods_read_the_period_only(conn):
    week = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=7)
    [statement] = await statements(lambda db: ListeningRepo(db).top_songs(None, week, 100))
    plan = await analyze(conn, statement)
    plays = rows_of(plan, "p")[0]
    assert plays["key"] == "ix_plays_time_song" and plays["type"] == "range", plan
    in_week = await query(conn, "SELECT COUNT(*) AS n FROM plays WHERE played_at >= %s", (week,))
    assert rows_read(plan, "p") <= in_week[0]["n"] + 1, plan


async def test_library_lists_read_a_page(conn):
    user_id = await listener(conn)
    for kind in ("songs", "albums", "artists", "playlists"):
        page, total = await statements(lambda db, k=kind: LibraryRepo(db).page(k, user_id, PAGE, 0))
        plan = await analyze(conn, page)
        assert not sorted_whole(plan), (kind, plan)
        assert rows_read(plan, "f") <= PAGE * 2, (kind, plan)
        plan = await analyze(conn, total)
        assert all(r["type"] != "ALL" for r in plan if not r["table"].startswith("<")), (kind, plan)


async def test_playlist_lists_read_a_page(conn):
    user_id = await listener(conn)
    for name, call in (("public", lambda db: PlaylistRepo(db).public("", PAGE, 0)),
                       ("every", lambda db: PlaylistRepo(db).every("", PAGE, 0)),
                       ("of_user", lambda db: PlaylistRepo(db).of_user(user_id, PAGE, 0))):
        page, total = await statements(call)
        plan = await analyze(conn, page)
        assert not sorted_whole(plan), (name, plan)
        assert rows_read(plan, "p") <= PAGE, (name, plan)
        # Song count and cover: each from the entries' index, for the page's playlists only.
        for entry in rows_of(plan, "ps"):
            assert entry["type"] in ("ref", "range") and entry["key"] == "uq_playlist_songs_order", plan
        plan = await analyze(conn, total)
        assert not sorted_whole(plan), (name, plan)


async def test_audit_pages_read_a_page_from_either_end(conn):
    total = int((await query(conn, "SELECT COUNT(*) AS n FROM audit_log"))[0]["n"])
    [counted] = await statements(lambda db: AuditRepo(db).count(None))
    assert "audit_log" not in counted[0]
    for offset in (0, total - PAGE, total // 2 + PAGE):
        [page] = await statements(lambda db, o=offset: AuditRepo(db).page(PAGE, o, None, total))
        plan = await analyze(conn, page)
        assert not sorted_whole(plan), (offset, plan)
        assert rows_read(plan, "audit_log") <= max(PAGE, min(offset, total - offset)) + PAGE, plan
    kind = int((await query(conn, "SELECT COUNT(*) AS n FROM audit_log WHERE action LIKE 'user.%%'"
                            ))[0]["n"])
    [page] = await statements(lambda db: AuditRepo(db).page(PAGE, 0, "user.", kind))
    plan = await analyze(conn, page)
    # Only the kind's own index entries are read (then sorted by time: a kind, not the log).
    inner = [r for r in plan if r["table"] == "audit_log" and r["key"] != "PRIMARY"]
    assert inner and inner[0]["key"] == "ix_audit_action_time", plan
    assert rows_read(plan, "audit_log") <= kind + 1, plan
