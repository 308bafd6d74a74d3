"""Numbered SQL migrations from `sql/`, applied in order and recorded in `schema_migrations`."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from app.repos.db import Database

log = logging.getLogger(__name__)
SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files(directory: Path = SQL_DIR) -> list[tuple[int, Path]]:
    """The migration files, ordered by their number; a badly named file is an error."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name must look like 0001_name.sql: {path.name}")
        found.append((int(match.group(1)), path))
    numbers = [n for n, _ in found]
    if len(numbers) != len(set(numbers)):
        raise ValueError("two migrations share a number")
    return found


def split_statements(text: str) -> list[str]:
    """Split a migration into statements on `;` at the end of a line; `--` comments dropped."""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statement = "\n".join(current).strip().rstrip(";").strip()
            if statement:
                statements.append(statement)
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return statements


async def migrate(db: Database, directory: Path = SQL_DIR) -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied. Safe to run twice."""
    applied_now: list[str] = []
    async with db.session() as conn:
        # One migrator at a time, even across processes.
        await conn.execute("SELECT GET_LOCK('sonora_migrate', 60)")
        try:
            if not await conn.fetchone(
                "SELECT 1 FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'schema_migrations'"
            ):
                await conn.execute(
                    "CREATE TABLE schema_migrations ("
                    " version INT NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL,"
                    " applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
                )
            done = {row["version"] for row in await conn.fetchall("SELECT version FROM schema_migrations")}
            for number, path in migration_files(directory):
                if number in done:
                    continue
                log.info("applying migration %s", path.name)
                for statement in split_statements(path.read_text()):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (number, path.name),
                )
                applied_now.append(path.name)
        finally:
            await conn.execute("SELECT RELEASE_LOCK('sonora_migrate')")
    return applied_now
