"""SQL the folder import asks of the catalogue besides its writes: which content it holds already.

The catalogue's rows are written through `app/repos/catalog.py`; this module answers the import's
per-batch question with the unique `sha256` index, so an import never loads every song's hash
(64 bytes a song: 1,000,000 songs would be ~150 MB of Python strings before the first file).
"""

from __future__ import annotations

from collections.abc import Collection

from app.repos.db import Executor


class IngestRepo:
    def __init__(self, db: Executor) -> None:
        self.db = db

    async def existing_hashes(self, hashes: Collection[str]) -> set[str]:
        """Those of `hashes` some song already has (one indexed IN query, any number of them)."""
        wanted = sorted(set(hashes))
        if not wanted:
            return set()
        rows = await self.db.fetchall(
            f"SELECT sha256 FROM songs WHERE sha256 IN ({', '.join(['%s'] * len(wanted))})",
            tuple(wanted))
        return {r["sha256"] for r in rows}
