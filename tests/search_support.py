"""Helpers shared by the search tests: documents made by the real builders from row-shaped dicts."""

from __future__ import annotations

from typing import Any

from app.adapters.search import documents


def song(id: int, title: str, artist: str = "Various", artist_id: int = 1, album: str | None = None,
         album_id: int | None = None, genre: str | None = None, year: int | None = None) -> dict[str, Any]:
    return documents.song_doc({"id": id, "title": title, "artist_id": artist_id, "artist_name": artist,
                               "album_id": album_id, "album_title": album, "genre": genre, "year": year})


def artist(id: int, name: str) -> dict[str, Any]:
    return documents.artist_doc({"id": id, "name": name})


def album(id: int, title: str, artist: str = "Various", artist_id: int = 1, year: int | None = None,
          genre: str | None = None) -> dict[str, Any]:
    return documents.album_doc({"id": id, "title": title, "artist_id": artist_id, "artist_name": artist,
                                "genre": genre, "year": year})


def playlist(id: int, name: str, owner_id: int, public: bool, collaborators: tuple[int, ...] = (),
             owner: str = "someone", description: str = "") -> dict[str, Any]:
    return documents.playlist_doc({
        "id": id, "name": name, "description": description, "owner_id": owner_id,
        "owner_username": owner, "is_public": public, "song_count": 0,
        "collaborator_ids": ",".join(str(c) for c in collaborators)})
