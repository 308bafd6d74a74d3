"""A small asyncio TCP proxy for outage tests: put it between the app and a shared service, then
`cut()` it (every connection closed, new ones refused or black-holed) and `restore()` it, so no
test ever stops a shared service."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class TcpProxy:
    """Listens on 127.0.0.1:<port> (chosen by the OS) and forwards to `target_host:target_port`.

    Modes: "forward" (normal), "refuse" (new connections are accepted and closed at once, which a
    client sees as a reset), "blackhole" (new connections are accepted and never answered, so the
    client's own timeouts are what fires)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.mode = "forward"
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def url(self, scheme: str, userinfo: str = "", path: str = "") -> str:
        auth = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}{path}"

    def cut(self, mode: str = "refuse") -> None:
        """Close every open connection; new ones are refused ("refuse") or hang ("blackhole")."""
        assert mode in ("refuse", "blackhole")
        self.mode = mode
        self._drop_all()

    def restore(self) -> None:
        """Forward again; connections held by a black hole are closed so clients reconnect."""
        self.mode = "forward"
        self._drop_all()

    async def close(self) -> None:
        self.mode = "refuse"
        if self._server is not None:
            self._server.close()
        self._drop_all()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "refuse":
            writer.transport.abort()
            return
        self._writers.add(writer)
        if self.mode == "blackhole":
            with contextlib.suppress(Exception):
                while await reader.read(65536):
                    pass  # swallowed; nothing ever comes back
            self._writers.discard(writer)
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            self._writers.discard(writer)
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        self._spawn(self._pipe(up_reader, writer, up_writer))
        await self._pipe(reader, up_writer, writer)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        other: asyncio.StreamWriter,
    ) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, RuntimeError):
            pass
        finally:
            for w in (writer, other):
                self._writers.discard(w)
                with contextlib.suppress(Exception):
                    w.transport.abort()
