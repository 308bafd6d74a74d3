"""The catalogue's list queries read only the rows they return (issue 12): on a generated library
of 50,000 songs (large enough that the optimizer plans as it does at a million), every list path
is run under ANALYZE and its plan checked — no filesort and no temporary table over songs, albums
or artists, and the rows read bounded by the page — not its timing.

The SQL comes from the repository's own builders (app/repos/catalog.py), never copied here."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pymysql
import pytest
from conftest import MYSQL_URL, RUN_ID, _admin_sql

from app.repos import catalog as c
from app.repos.catalog import PageSpec as P
from app.repos.db import Database, Row
from bench.scale_data import Size, generate

SONGS = 50_000
NAME = f"sonora_plans_{RUN_ID}"
TABLES = {"s", "al", "ar"}  # the catalogue tables' aliases in every list query
Case = tuple[str, tuple[str, list[Any]], int | None]


@pytest.fixture(scope="module")
def generated() -> Iterator[str]:
    """The library, generated once for the module (a few seconds), dropped after it."""
    with warnings.catch_warnings():  # "Can't drop database ...; doesn't exist": it is new
        warnings.simplefilter("ignore", pymysql.Warning)
        asyncio.run(generate(NAME, Size.for_songs(SONGS), mysql_url=MYSQL_URL, progress=False))
    yield f"{MYSQL_URL}/{NAME}"
    asyncio.run(_admin_sql(f"DROP DATABASE IF EXISTS `{NAME}`"))


@pytest.fixture
async def db(generated: str) -> AsyncIterator[Database]:
    database = Database(generated, maxsize=1)
    await database.connect(create=False)
    try:
        yield database
    finally:
        await database.close()


async def analyze(db: Database, query: tuple[str, list[Any]]) -> list[Row]:
    sql, params = query
    return await db.fetchall("ANALYZE " + sql, params)


def rows_read(step: Row) -> float:
    """ANALYZE's r_rows of a step ("12.00", or "663.00 (5%)" with a rowid filter)."""
    return float(str(step["r_rows"] or 0).split()[0])


def problems(plan: list[Row], max_rows: int | None) -> list[str]:
    """What is wrong with a plan: a sort or temporary table over a catalogue table, or more
    rows read than the page needs (`max_rows`; None: a text search, which must scan)."""
    out = []
    for step in plan:
        extra = step["Extra"] or ""
        if step["table"] in TABLES and ("filesort" in extra or "temporary" in extra):
            out.append(f"{step['table']}: {extra}")
        if max_rows is not None and rows_read(step) > max_rows:
            out.append(f"{step['table']}: read {step['r_rows']} rows (at most {max_rows})")
    return out


def song_cases() -> list[Case]:
    """Every song list path: the API's sorts with and without each filter (the ones an index
    orders), deep offsets read from the end, keyset cursors, and Subsonic's listing by id."""
    cases: list[Case] = []
    for order in ("newest", "title", "popular", "album", "id"):
        cases.append((f"songs by {order}", c.song_ids_sql({}, order, P(20)), 20))
        # A deep offset is read backwards from the end (the repository's _deep): rows read are
        # the offset from the end plus the page.
        cases.append((f"songs by {order}, last pages", c.song_ids_sql({}, order, P(20, 40, reverse=True)), 60))
    for filters in ({"genre": "Jazz"}, {"year": 1999}, {"artist_id": 7}):
        for order in ("newest", "popular"):
            cases.append((f"songs {filters} by {order}", c.song_ids_sql(filters, order, P(24, 24)), 48))
    cases.append(("album's songs", c.song_ids_sql({"album_id": 70}, "album", P(100)), 100))
    cases.append(("album's songs, whole rows (an album answer)", c.album_songs_sql(70, 1000), 100))
    cases.append(("an album and its songs as one JSON value (an album answer)",
                  (c.ALBUM_WITH_SONGS_JSON, [1000, 70]), 100))
    cases.append(("songs after a cursor (newest)",
                  c.song_ids_sql({}, "newest", P(20, after=("2100-01-01 00:00:00", 10**9))), 20))
    cases.append(("songs after a cursor (popular)", c.song_ids_sql({}, "popular", P(20, after=(3, 40))), 20))
    cases.append(("songs after a cursor (title)", c.song_ids_sql({}, "title", P(20, after=("Song 4", 1))), 20))
    cases.append(("songs before a cursor (newest)",
                  c.song_ids_sql({}, "newest", P(20, after=("2000-01-01 00:00:00", 1), reverse=True)), 20))
    cases.append(("every song by id, 500 at a time", c.song_ids_sql({}, "id", P(500, after=(1000,))), 500))
    cases.append(("genre songs after a cursor",
                  c.song_ids_sql({"genre": "rock"}, "newest", P(20, after=("2100-01-01 00:00:00", 10**9))), 20))
    return cases


def album_cases() -> list[Case]:
    """Every album list path, Subsonic's included: by name, newest, year and genre, 500 a page."""
    cases: list[Case] = []
    for order in ("newest", "year", "title"):
        cases.append((f"albums by {order}", c.album_ids_sql({}, order, P(500)), 500))
        cases.append((f"albums by {order}, last pages", c.album_ids_sql({}, order, P(20, 20, reverse=True)), 40))
    cases.append(("albums of a genre, newest", c.album_ids_sql({"genre": "Rock"}, "newest", P(24)), 24))
    cases.append(("albums of a genre, by name", c.album_ids_sql({"genre": "Rock"}, "title", P(500)), 500))
    cases.append(("albums of a year, newest", c.album_ids_sql({"year": 1999}, "newest", P(24)), 24))
    cases.append(("albums of a year, by year", c.album_ids_sql({"year": 1999}, "year", P(24)), 24))
    cases.append(("an artist's albums", c.album_ids_sql({"artist_id": 7}, "year", P(50)), 50))
    cases.append(("albums after a cursor",
                  c.album_ids_sql({}, "title", P(500, after=("album 5", 5))), 500))
    return cases


def artist_cases() -> list[Case]:
    return [
        ("artists by name", c.artist_ids_sql("", P(20)), 20),
        ("artists by name, last pages", c.artist_ids_sql("", P(20, 20, reverse=True)), 40),
        ("artists after a cursor", c.artist_ids_sql("", P(500, after=("artist 5",))), 500),
    ]


def search_cases() -> list[Case]:
    """A text search must look at every title (no B-tree finds a substring), but in the list's
    order, stopping at a full page: no sort, no temporary table."""
    return [
        ("songs matching text", c.song_ids_sql({"q": "Song 777"}, "newest", P(21)), None),
        ("songs matching text (admin)", c.song_ids_sql({"q": "song"}, "newest", P(21)), 21),
        ("albums matching text", c.album_ids_sql({"q": "album 7"}, "newest", P(20)), None),
        ("artists matching text", c.artist_ids_sql("artist 7", P(20)), None),
    ]


@pytest.mark.parametrize("case", [*song_cases(), *album_cases(), *artist_cases(), *search_cases()],
                         ids=lambda case: case[0])
async def test_list_plan(db: Database, case: Case) -> None:
    _, query, max_rows = case
    plan = await analyze(db, query)
    assert problems(plan, max_rows) == [], plan


async def test_rows_by_id_read_by_primary_key(db: Database) -> None:
    """The second half of the deferred join: the page's rows and their artist and album."""
    ids = list(range(1000, 1020))
    for select, alias in ((c.SONG_SELECT, "s"), (c.ALBUM_SELECT, "al"), (c.ARTIST_SELECT, "ar")):
        plan = await analyze(db, c.rows_sql(select, alias, ids))
        assert problems(plan, 20) == [], plan
        assert {step["key"] for step in plan} <= {"PRIMARY"}, plan


async def test_the_artist_index_reads_the_table_once(db: Database) -> None:
    """Every artist (Subsonic's index) as one JSON value: the table read once, no sort and no
    temporary table (the caller sorts the parsed list by name)."""
    plan = await analyze(db, (c.artist_index_sql(), []))
    assert problems(plan, SONGS // 50) == [], plan


async def test_counts_are_bounded(db: Database) -> None:
    """A filtered count the maintained figures do not answer reads at most the cap."""
    where, params = c.song_filter_sql({"genre": "jazz", "year": 1999})
    plan = await analyze(db, c.capped_count_sql("songs s", where, params))
    assert problems([p for p in plan if p["table"] in TABLES], c.COUNT_CAP + 1) == [], plan


async def test_a_bounded_filter_may_sort_its_own_rows(db: Database) -> None:
    """Orders no index serves under an album or artist filter sort that filter's rows only
    (an album's dozen songs), read by the filter's index."""
    for filters, bound in (({"album_id": 70}, 40), ({"artist_id": 7}, 200)):
        for order in ("newest", "title", "popular"):
            plan = await analyze(db, c.song_ids_sql(filters, order, P(20)))
            assert all(step["key"] and rows_read(step) <= bound for step in plan), plan


async def test_a_text_filter_narrowed_by_the_index_reads_only_its_candidates(db: Database) -> None:
    """A text filter's candidates come from the search index (at most TEXT_CANDIDATES songs):
    their rows are read by primary key and only they are sorted and counted, in every order
    (MariaDB turns a long IN list into a table of its values, and sorts that)."""
    from app.services.catalog import TEXT_CANDIDATES

    ids = list(range(7, SONGS, SONGS // TEXT_CANDIDATES))[:TEXT_CANDIDATES]
    filters = {"q": "song 7", "ids": ids}
    for order in ("newest", "title", "popular"):
        plan = await analyze(db, c.song_ids_sql(filters, order, P(21)))
        assert all(rows_read(step) <= len(ids) for step in plan), plan
        assert {step["key"] for step in plan if step["table"] in TABLES} == {"PRIMARY"}, plan
    where, params = c.song_filter_sql(filters)
    plan = await analyze(db, c.capped_count_sql("songs s", where, params))
    assert all(rows_read(step) <= len(ids) for step in plan if step["table"] in TABLES), plan


async def test_subsonic_album_lists_and_random_picks_read_their_page(db: Database) -> None:
    """Subsonic's own album lists (alphabeticalByArtist, byYear either way, albums per genre)
    read along an index with no sort, and a random pick reads ids by primary key only."""
    for offset in (0, 200):
        plan = await analyze(db, c.albums_by_artist_sql(20, offset))
        assert problems(plan, offset + 20) == [], plan
        assert [step["key"] for step in plan] == ["uq_artists_name", "uq_albums_artist_title"], plan
        for first, last in ((1990, 1999), (1999, 1990)):
            plan = await analyze(db, c.albums_by_years_sql(first, last, 20, offset))
            assert problems(plan, offset + 20) == [] and plan[0]["key"] == "ix_albums_year", plan
    plan = await analyze(db, (c.GENRE_ALBUMS_SQL, []))
    assert problems(plan, None) == [] and plan[0]["key"] == "ix_albums_genre_title", plan
    for table in c.RANDOM_TABLES:
        plan = await analyze(db, c.existing_ids_sql(table, [5, 500, 5000]))
        assert problems(plan, 3) == [] and plan[0]["key"] == "PRIMARY", plan
        plan = await analyze(db, c.ids_from_sql(table, 700, 20))
        assert problems(plan, 20) == [] and plan[0]["key"] == "PRIMARY", plan
