"""Parts of streamcore shared by both implementations.

Nothing here is on the per-byte hot path: the exceptions (one class each, so ``except``
clauses work whichever implementation is selected), the open-file cache and the
multipart/byteranges framing helpers.
"""

from __future__ import annotations

import os
import re
import stat
from collections import OrderedDict
from collections.abc import Iterable
from types import TracebackType

__all__ = [
    "FileCache",
    "NUMBER_LIMIT",
    "OpenFile",
    "RangeNotSatisfiable",
    "StallTimeout",
    "multipart_closing",
    "multipart_length",
    "multipart_parts",
]

#: Every number in a Range header is clamped to this value (2**62), far above any real file
#: size, so both implementations agree and the compiled one never overflows a C integer.
NUMBER_LIMIT = 1 << 62


class RangeNotSatisfiable(Exception):
    """A syntactically valid Range header of which no range overlaps the file (answer 416)."""


class StallTimeout(TimeoutError):
    """The peer accepted no bytes for ``stall_timeout`` seconds; close the connection."""


class OpenFile:
    """One open, read-only regular file with the metadata it was opened with.

    Reference counted: :meth:`FileCache.open` hands it out acquired once; call
    :meth:`release` (or use it as a context manager) when the response no longer needs the
    descriptor.  The descriptor is closed only when it is both out of the cache and released
    by every user, so an eviction never closes an fd under a response that is sending it.
    """

    __slots__ = ("path", "fd", "size", "mtime_ns", "inode", "etag", "_refs", "_cached")

    def __init__(self, path: str, fd: int, st: os.stat_result) -> None:
        self.path = path
        self.fd = fd
        self.size: int = st.st_size
        self.mtime_ns: int = st.st_mtime_ns
        self.inode: int = st.st_ino
        self.etag = f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'
        self._refs = 0
        self._cached = True

    @property
    def mtime(self) -> float:
        """Modification time in seconds since the epoch."""
        return self.mtime_ns / 1e9

    @property
    def refs(self) -> int:
        """How many users currently hold this file."""
        return self._refs

    @property
    def closed(self) -> bool:
        """True once the descriptor has been closed."""
        return self.fd < 0

    def _key(self) -> tuple[int, int, int]:
        return (self.inode, self.size, self.mtime_ns)

    def acquire(self) -> OpenFile:
        """Take one more reference (the file stays open until it is released)."""
        if self.fd < 0:
            raise ValueError("file is closed")
        self._refs += 1
        return self

    def release(self) -> None:
        """Drop one reference; closes the fd if it was the last and the entry left the cache."""
        if self._refs <= 0:
            raise RuntimeError("OpenFile released more often than acquired")
        self._refs -= 1
        self._maybe_close()

    def _uncache(self) -> None:
        self._cached = False
        self._maybe_close()

    def _maybe_close(self) -> None:
        if self._refs == 0 and not self._cached and self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __enter__(self) -> OpenFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<OpenFile {self.path!r} fd={self.fd} size={self.size} refs={self._refs}>"


class FileCache:
    """A bounded LRU cache of open files, keyed by path, for the event-loop thread.

    Each :meth:`open` re-stats the path (one cheap syscall) and reopens when the inode, size
    or mtime changed, so a replaced or rewritten file is never served stale; a deleted file
    raises :class:`FileNotFoundError` and its entry is dropped.  Not thread safe: use it from
    one event loop.
    """

    def __init__(self, capacity: int = 256) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._entries: OrderedDict[str, OpenFile] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def open(self, path: str) -> OpenFile:
        """Return the open file for ``path``, acquired once (release it when done)."""
        entry = self._entries.get(path)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if entry is not None:
                self.invalidate(path)
            raise
        if entry is not None:
            if entry._key() == (st.st_ino, st.st_size, st.st_mtime_ns):
                self._entries.move_to_end(path)
                return entry.acquire()
            self.invalidate(path)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # fstat, not the stat above: the path may have been replaced in between, and the
            # metadata must describe the bytes this descriptor reads.
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(path)
                raise OSError(f"not a regular file: {path!r}")
        except BaseException:
            os.close(fd)
            raise
        entry = OpenFile(path, fd, st)
        self._entries[path] = entry
        while len(self._entries) > self.capacity:
            _, old = self._entries.popitem(last=False)
            old._uncache()
        return entry.acquire()

    def invalidate(self, path: str) -> None:
        """Forget ``path``; its fd closes as soon as no response uses it."""
        entry = self._entries.pop(path, None)
        if entry is not None:
            entry._uncache()

    def close(self) -> None:
        """Drop every entry; fds still in use close when their last user releases them."""
        while self._entries:
            _, entry = self._entries.popitem()
            entry._uncache()


_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,./:=?-]{0,69}[0-9A-Za-z'()+_,./:=?-]")
_BAD_HEADER_RE = re.compile(r"[\x00-\x1f\x7f]")


def _check_part_args(content_type: str, boundary: str) -> None:
    if not _BOUNDARY_RE.fullmatch(boundary):
        raise ValueError(f"invalid multipart boundary: {boundary!r}")
    if _BAD_HEADER_RE.search(content_type):
        raise ValueError("control character in content type")


def multipart_parts(
    ranges: Iterable[tuple[int, int]], size: int, content_type: str, boundary: str
) -> list[tuple[bytes, int, int]]:
    """Per-part ``(header bytes, start, stop)`` of a ``multipart/byteranges`` body.

    Send each header, then bytes ``[start, stop)`` of the file, and finally
    :func:`multipart_closing`.  Every header after the first starts with the CRLF that ends
    the previous part's body.
    """
    _check_part_args(content_type, boundary)
    parts = []
    for i, (start, stop) in enumerate(ranges):
        if not 0 <= start < stop <= size:
            raise ValueError(f"range {start}-{stop} outside a file of {size} bytes")
        head = (
            f"{'' if i == 0 else chr(13) + chr(10)}--{boundary}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Range: bytes {start}-{stop - 1}/{size}\r\n\r\n"
        )
        parts.append((head.encode("latin-1"), start, stop))
    return parts


def multipart_closing(boundary: str) -> bytes:
    """The closing delimiter that ends a ``multipart/byteranges`` body."""
    return f"\r\n--{boundary}--\r\n".encode("latin-1")


def multipart_length(ranges: Iterable[tuple[int, int]], size: int, content_type: str, boundary: str) -> int:
    """The Content-Length of the ``multipart/byteranges`` body for ``ranges``."""
    parts = multipart_parts(ranges, size, content_type, boundary)
    body = sum(len(head) + stop - start for head, start, stop in parts)
    return body + len(multipart_closing(boundary))
