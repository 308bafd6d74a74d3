"""The search port's contract, the same cases on every backend: the embedded tantivy index always,
Meilisearch when SONORA_MEILI_URL points at a live server (it cannot be installed on these
machines, so those cases skip here and say so)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from search_support import album, artist, playlist, song

from app.adapters.search.embedded import EmbeddedSearch
from app.adapters.search.port import Filters, SearchPort, SearchQuery

MEILI_URL = os.environ.get("SONORA_MEILI_URL", "")
BACKENDS = ["embedded", pytest.param("meilisearch", marks=pytest.mark.skipif(
    not MEILI_URL, reason="no live Meilisearch: it cannot be installed on these machines; "
                          "set SONORA_MEILI_URL to run the contract against one"))]
VIEWER = 42

CORPUS = [
    song(1, "Harbour Lights", "The Tides", 10, "Coastline", 100, "Folk", 2019),
    song(2, "Yesterday", "The Beatles", 11, "Help!", 101, "Rock", 1965),
    song(3, "Quokkas at Dawn", "Marsupial Band", 12, None, None, "Indie", 2021),
    song(4, "Quiet", "Hush", 13, "Silence", 102, "Ambient", 2020),
    song(5, "Army of Me", "Björk", 14, "Post", 103, "Electronic", 1995),
    song(6, "Lights over the Harbour", "The Tides", 10, "Coastline", 100, "Folk", 2019),
    song(7, "Harbour Lights (Live)", "The Tides", 10, "Live at Sea", 104, "Folk", 2022),
    artist(14, "Björk"),
    artist(10, "The Tides"),
    album(100, "Coastline", "The Tides", 10, 2019, "Folk"),
    album(103, "Post", "Björk", 14, 1995, "Electronic"),
] + [song(100 + i, f"Paging Song {i:02d}", "Pager", 20, genre="Test", year=2000 + i % 3) for i in range(25)]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchPort]:
    b: Any
    if request.param == "embedded":
        b = EmbeddedSearch(tmp_path / "search")
    else:
        from app.adapters.search.meili import MeiliSearch

        b = MeiliSearch(MEILI_URL, os.environ.get("SONORA_MEILI_KEY", ""), f"contract_{secrets.token_hex(4)}")
    await b.start()
    await b.upsert(CORPUS)
    yield b
    if request.param != "embedded":
        await b.client.delete_index_if_exists(b.uid)
    await b.close()


async def titles(b: SearchPort, text: str, type_: str = "song", viewer: int = VIEWER, **kw: Any) -> list[str]:
    filters = kw.pop("filters", Filters())
    [page] = await b.search([SearchQuery(text, type_, viewer, filters, **kw)])
    return [h.text for h in page.hits]


@pytest.mark.parametrize(("typed", "expected"), [
    ("harbou", "Harbour Lights"),       # prefix of the last word
    ("yesterdy", "Yesterday"),          # a letter missing
    ("quokas", "Quokkas at Dawn"),      # a letter missing, mid-word
    ("quite", "Quiet"),                 # a transposition
    ("bjork", "Army of Me"),            # diacritics: found by its artist "Björk"
    ("QUIET", "Quiet"),                 # letter case
])
async def test_contract_forgiving_matches(backend, typed, expected):
    assert expected in await titles(backend, typed)


async def test_contract_diacritics_on_names(backend):
    assert await titles(backend, "bjork", "artist") == ["Björk"]
    assert await titles(backend, "björk", "artist") == ["Björk"]


async def test_contract_exact_title_first(backend):
    found = await titles(backend, "harbour lights")
    assert found[0] == "Harbour Lights"
    assert set(found[:3]) == {"Harbour Lights", "Harbour Lights (Live)", "Lights over the Harbour"}


async def test_contract_unrelated_words_find_nothing(backend):
    assert await titles(backend, "zzzqqq") == []


async def test_contract_paging(backend):
    [first] = await backend.search([SearchQuery("paging song", "song", VIEWER, limit=10, offset=0)])
    [last] = await backend.search([SearchQuery("paging song", "song", VIEWER, limit=10, offset=20)])
    assert first.total == last.total == 25
    assert len(first.hits) == 10 and len(last.hits) == 5
    assert not {h.id for h in first.hits} & {h.id for h in last.hits}


async def test_contract_filters(backend):
    assert await titles(backend, "harbour", filters=Filters(year=2022)) == ["Harbour Lights (Live)"]
    assert set(await titles(backend, "lights", filters=Filters(album_id=100))) == {
        "Harbour Lights", "Lights over the Harbour"}
    assert await titles(backend, "", filters=Filters(artist_id=14)) == ["Army of Me"]
    assert await titles(backend, "yesterday", filters=Filters(genre="ROCK")) == ["Yesterday"]
    assert await titles(backend, "yesterday", filters=Filters(genre="Folk")) == []
    # Quotes and filter operators in a value are a value, never syntax.
    for hostile in ['Rock" OR type = "song', "Rock' OR 1=1 --", 'x\\" OR is_public = false']:
        assert await titles(backend, "yesterday", filters=Filters(genre=hostile)) == []


async def test_contract_types_are_separate(backend):
    assert await titles(backend, "coastline", "album") == ["Coastline"]
    assert await titles(backend, "tides", "artist") == ["The Tides"]


async def test_contract_private_playlists_only_for_owner_and_collaborators(backend):
    await backend.upsert([playlist(1, "Secret Harbour Mix", owner_id=7, public=False, collaborators=(8,)),
                          playlist(2, "Open Harbour Mix", owner_id=7, public=True)])
    for viewer, expected in ((7, 2), (8, 2), (9, 1)):
        [page] = await backend.search([SearchQuery("harbour mix", "playlist", viewer)])
        assert page.total == expected
        assert len(await backend.suggest("secret harbour", viewer, 10)) == (1 if expected == 2 else 0)


async def test_contract_suggest_spans_types(backend):
    found = {(h.type, h.text) for h in await backend.suggest("bjor", VIEWER, 8)}
    assert ("artist", "Björk") in found and ("album", "Post") in found


async def test_contract_delete_and_update(backend):
    await backend.delete(["song-2"])
    assert await titles(backend, "yesterday") == []
    await backend.upsert([song(4, "Quiet Storm", "Hush", 13)])
    assert "Quiet Storm" in await titles(backend, "storm")
    assert "Quiet" not in await titles(backend, "quiet")


async def test_contract_dump_returns_the_documents(backend):
    dumped = await backend.dump()
    assert [d["id"] for d in dumped] == sorted(d["id"] for d in CORPUS)
    assert {d["id"]: d for d in dumped}["song-5"] == {d["id"]: d for d in CORPUS}["song-5"]


async def test_contract_version_changes_with_every_write(backend):
    """The token answers may be cached under: steady while nothing is written, new after each
    write (an upsert, a delete, a rebuild). A backend that cannot tell says None (Meilisearch)."""
    before = backend.version()
    if backend.name != "embedded":
        assert before is None
        return
    assert before is not None and backend.version() == before
    await backend.upsert([song(8, "Version Song", "Hush", 13)])
    after_upsert = backend.version()
    assert after_upsert not in (None, before)
    await backend.delete(["song-8"])
    after_delete = backend.version()
    assert after_delete not in (None, before, after_upsert)

    async def fill(target: Any) -> None:
        await target.upsert(CORPUS)

    async def nothing(target: Any) -> None:
        return None

    await backend.rebuild(fill, nothing)
    assert backend.version() not in (None, before, after_upsert, after_delete)
