"""FileCache: reuse, invalidation on change and deletion, eviction never closes an fd in use."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_shared_with_both_implementations(impl: ModuleType) -> None:
    import streamcore

    assert impl.FileCache is streamcore.FileCache


def test_metadata_and_reuse(impl: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "a.flac"
    path.write_bytes(b"x" * 1000)
    cache = impl.FileCache()
    with cache.open(str(path)) as f:
        st = os.stat(path)
        assert (f.size, f.inode, f.mtime_ns) == (1000, st.st_ino, st.st_mtime_ns)
        assert f.mtime == pytest.approx(st.st_mtime)
        assert f.etag == f'"{st.st_ino:x}-{1000:x}-{st.st_mtime_ns:x}"'
        assert os.pread(f.fd, 3, 10) == b"xxx"
        assert f.refs == 1
    with cache.open(str(path)) as g:
        assert g is f and g.refs == 1
    assert f.refs == 0 and not f.closed  # kept open in the cache
    cache.close()
    assert f.closed and not _is_open(f.fd if f.fd >= 0 else 10**6)


def test_reopens_when_file_changes(impl: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "b.mp3"
    path.write_bytes(b"one")
    cache = impl.FileCache()
    first = cache.open(str(path))
    old_fd = first.fd
    path.write_bytes(b"second version")
    os.utime(path, ns=(first.mtime_ns + 10**9, first.mtime_ns + 10**9))
    second = cache.open(str(path))
    assert second is not first
    assert second.size == 14 and second.etag != first.etag
    assert _is_open(old_fd) and not first.closed  # still held by its response
    first.release()
    assert first.closed and len(cache) == 1
    second.release()
    cache.close()


def test_reopens_when_file_replaced(impl: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "c.ogg"
    path.write_bytes(b"abc")
    cache = impl.FileCache()
    with cache.open(str(path)) as first:
        pass
    tmp = tmp_path / "c.tmp"
    tmp.write_bytes(b"xyz")
    os.replace(tmp, path)  # same size, new inode
    with cache.open(str(path)) as second:
        assert second is not first and os.pread(second.fd, 3, 0) == b"xyz"
    assert first.closed
    cache.close()


def test_deleted_file(impl: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "d.mp3"
    path.write_bytes(b"abc")
    cache = impl.FileCache()
    with cache.open(str(path)) as f:
        pass
    path.unlink()
    with pytest.raises(FileNotFoundError):
        cache.open(str(path))
    assert str(path) not in cache and f.closed
    with pytest.raises(FileNotFoundError):
        cache.open(str(tmp_path / "never"))
    with pytest.raises(IsADirectoryError):
        cache.open(str(tmp_path))
    cache.close()


def test_eviction_keeps_fd_in_use(impl: ModuleType, tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        p = tmp_path / f"{i}.mp3"
        p.write_bytes(bytes([i]) * 10)
        paths.append(str(p))
    cache = impl.FileCache(capacity=2)
    busy = cache.open(paths[0])  # a response is sending it
    with cache.open(paths[1]):
        pass
    with cache.open(paths[2]):
        pass  # evicts paths[0] (least recently used)
    assert paths[0] not in cache and len(cache) == 2
    assert not busy.closed and os.pread(busy.fd, 10, 0) == b"\x00" * 10
    busy.acquire()
    busy.release()
    assert not busy.closed
    busy.release()
    assert busy.closed
    with pytest.raises(RuntimeError):
        busy.release()
    with pytest.raises(ValueError):
        busy.acquire()
    # LRU order: touching paths[1] makes paths[2] the next victim
    with cache.open(paths[1]):
        pass
    with cache.open(paths[3]):
        pass
    assert paths[1] in cache and paths[2] not in cache
    cache.invalidate(paths[1])
    assert paths[1] not in cache
    cache.close()
    assert len(cache) == 0


def test_capacity_validated(impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        impl.FileCache(0)
