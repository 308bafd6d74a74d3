"""MySQL through aiomysql: one pool, plain parameterised SQL, one retry on a lost connection."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import aiomysql
import pymysql

log = logging.getLogger(__name__)

# 2006 "server has gone away", 2013 "lost connection during query": retried once when idempotent.
LOST_CONNECTION = {2006, 2013, 2055}
Row = dict[str, Any]
INIT_COMMAND = "SET time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
ISOLATION_LEVELS = {"READ COMMITTED", "REPEATABLE READ"}


class DatabaseUnavailable(Exception):
    """MySQL cannot be reached."""


class NestedConnection(RuntimeError):
    """Code holding one of a pool's connections (in a transaction) asked the same pool for another.

    Refused instead of waited for: with as many holders as the pool has connections, every one of
    them would wait forever for a connection that only they can give back (STYLE 15)."""


# The pools whose transaction connection this task (and the tasks it starts) holds.
_HOLDING: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "sonora_db_holding", default=frozenset()
)


class Executor(Protocol):
    """What runs SQL: the `Database` (a pooled connection per statement) or a `Tx` (its own)."""

    async def fetchall(self, sql: str, params: Any = ()) -> list[Row]: ...
    async def fetchone(self, sql: str, params: Any = ()) -> Row | None: ...
    async def fetchval(self, sql: str, params: Any = ()) -> Any: ...


@dataclass(frozen=True)
class DbTarget:
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, url: str) -> DbTarget:
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/") or "sonora",
        )

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


def _is_lost(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and (
        exc.args[0] in LOST_CONNECTION
    )


class Tx:
    """A connection inside a transaction; statements run in order and commit together."""

    def __init__(self, conn: aiomysql.Connection) -> None:
        self.conn = conn
        # Set by the outbox writer (app/repos/outbox.py): the commit then tells the database's
        # commit listeners (the outbox relays of this process) that events wait to be published.
        self.emitted_events = False

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run a statement; returns the last insert id or, when none, the affected row count."""
        async with self.conn.cursor() as cur:
            await cur.execute(sql, params or None)  # no params: a literal % is no placeholder
            return int(cur.lastrowid or cur.rowcount)

    async def rowcount(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        async with self.conn.cursor() as cur:
            await cur.execute(sql, params or None)  # no params: a literal % is no placeholder
            return int(cur.rowcount)

    async def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        async with self.conn.cursor(aiomysql.DictCursor) as cur:
            await cur.execute(sql, params or None)  # no params: a literal % is no placeholder
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        async with self.conn.cursor(aiomysql.DictCursor) as cur:
            await cur.execute(sql, params or None)  # no params: a literal % is no placeholder
            row = await cur.fetchone()
            return dict(row) if row else None

    async def fetchval(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        async with self.conn.cursor() as cur:
            await cur.execute(sql, params or None)  # no params: a literal % is no placeholder
            row = await cur.fetchone()
            return row[0] if row else None


class Database:
    """The pool and the one way SQL is run."""

    def __init__(self, url: str, minsize: int = 1, maxsize: int = 20) -> None:
        self.target = DbTarget.parse(url)
        self.minsize = minsize
        self.maxsize = maxsize
        self.pool: aiomysql.Pool | None = None
        self._event_listeners: list[weakref.WeakMethod[Callable[[], None]]] = []

    def on_events_committed(self, listener: Callable[[], None]) -> None:
        """Call the bound method `listener` after every commit of a transaction that recorded
        events (an outbox relay's `wake`). Held weakly: a relay that is gone drops out."""
        self._event_listeners.append(weakref.WeakMethod(listener))

    def _events_committed(self) -> None:
        alive = []
        for ref in self._event_listeners:
            listener = ref()
            if listener is not None:
                alive.append(ref)
                listener()
        self._event_listeners = alive

    async def connect(self, create: bool = True) -> None:
        """Open the pool, creating the database first if it is missing."""
        t = self.target
        try:
            if create:
                conn = await aiomysql.connect(
                    host=t.host, port=t.port, user=t.user, password=t.password,
                    connect_timeout=5, autocommit=True,
                )
                try:
                    async with conn.cursor() as cur:
                        # Checked first: IF NOT EXISTS leaves a note that aiomysql raises as a warning.
                        await cur.execute(
                            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                            (t.database,),
                        )
                        if not await cur.fetchone():
                            await cur.execute(
                                f"CREATE DATABASE `{_ident(t.database)}` "
                                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                            )
                finally:
                    conn.close()
            self.pool = await aiomysql.create_pool(
                host=t.host, port=t.port, user=t.user, password=t.password, db=t.database,
                minsize=self.minsize, maxsize=self.maxsize, autocommit=True, charset="utf8mb4",
                pool_recycle=3600, connect_timeout=5,
                init_command=INIT_COMMAND,
            )
        except (TimeoutError, OSError, pymysql.err.MySQLError) as exc:
            raise DatabaseUnavailable(
                f"cannot reach MySQL at {t.describe()} ({_reason(exc)}); start MariaDB or set "
                "SONORA_DATABASE_URL"
            ) from exc

    async def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            await self.pool.wait_closed()
            self.pool = None

    def _pool(self) -> aiomysql.Pool:
        if self.pool is None:
            raise DatabaseUnavailable("the database pool is not open")
        if id(self) in _HOLDING.get():
            raise NestedConnection(
                "a second connection was asked of the pool inside a transaction; read and write "
                "through its Tx instead"
            )
        return self.pool

    def holding(self) -> bool:
        """True inside one of this database's transactions (where the pool must not be used)."""
        return id(self) in _HOLDING.get()

    async def _run(self, method: str, sql: str, params: Any, idempotent: bool) -> Any:
        attempts = 2 if idempotent else 1
        for attempt in range(attempts):
            try:
                async with self._pool().acquire() as conn:
                    return await getattr(Tx(conn), method)(sql, params)
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
                if attempt + 1 < attempts and _is_lost(exc):
                    log.warning("lost the MySQL connection; retrying once")
                    continue
                if _is_lost(exc) or exc.args and exc.args[0] == 2003:  # 2003: cannot connect
                    raise DatabaseUnavailable(_reason(exc)) from exc
                raise
        raise AssertionError("unreachable")

    async def fetchall(self, sql: str, params: Any = ()) -> list[Row]:
        return await self._run("fetchall", sql, params, True)

    async def fetchone(self, sql: str, params: Any = ()) -> Row | None:
        return await self._run("fetchone", sql, params, True)

    async def fetchval(self, sql: str, params: Any = ()) -> Any:
        return await self._run("fetchval", sql, params, True)

    async def execute(self, sql: str, params: Any = (), idempotent: bool = False) -> int:
        """Run one write in autocommit; retried once on a lost connection only when idempotent."""
        return await self._run("execute", sql, params, idempotent)

    async def rowcount(self, sql: str, params: Any = (), idempotent: bool = False) -> int:
        return await self._run("rowcount", sql, params, idempotent)

    @asynccontextmanager
    async def transaction(self, isolation: str | None = None) -> AsyncIterator[Tx]:
        """A transaction: committed when the block ends, rolled back when it raises.
        `isolation="READ COMMITTED"` takes no gap locks (see the outbox relay)."""
        async with self._pool().acquire() as conn:
            if isolation is not None:
                if isolation not in ISOLATION_LEVELS:
                    raise ValueError(isolation)
                async with conn.cursor() as cur:
                    await cur.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
            await conn.begin()
            token = _HOLDING.set(_HOLDING.get() | {id(self)})
            tx = Tx(conn)
            try:
                yield tx
            except asyncio.CancelledError:
                # A statement may still be running (cancelled mid-wait): a ROLLBACK sent now would
                # queue behind it. Closing the socket makes the server roll back by itself.
                conn.close()
                raise
            except BaseException:
                await conn.rollback()
                raise
            else:
                await conn.commit()
                if tx.emitted_events:
                    self._events_committed()
            finally:
                _HOLDING.reset(token)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Tx]:
        """One pooled connection held for a block, in autocommit: for work that needs the same
        connection across statements without a transaction (a named lock, as migrations take)."""
        async with self._pool().acquire() as conn:
            yield Tx(conn)

    async def ping(self) -> bool:
        try:
            return await self.fetchval("SELECT 1") == 1
        except Exception:  # noqa: BLE001 - health reports any failure as down
            return False


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    return name


def _reason(exc: BaseException) -> str:
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        return str(exc.args[1])
    return str(exc) or type(exc).__name__


@asynccontextmanager
async def database_context(url: str, *, maxsize: int = 20, migrate: bool = True
                           ) -> AsyncIterator[Database]:
    """The pool of one process (web server, worker, command), connected and, unless
    `migrate=False`, migrated (idempotent) for the block; closed after it."""
    from app.repos import migrate as migrations  # migrate.py builds on this module

    db = Database(url, maxsize=maxsize)
    await db.connect()
    try:
        if migrate:
            await migrations.migrate(db)
        yield db
    finally:
        await db.close()
