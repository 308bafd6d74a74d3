"""multipart/byteranges framing helpers."""

from __future__ import annotations

from types import ModuleType

import pytest


def test_parts_and_length(impl: ModuleType) -> None:
    data = bytes(range(100))
    ranges = [(0, 10), (50, 100)]
    parts = impl.multipart_parts(ranges, 100, "audio/mpeg", "SONORA")
    assert parts[0] == (
        b"--SONORA\r\nContent-Type: audio/mpeg\r\nContent-Range: bytes 0-9/100\r\n\r\n",
        0,
        10,
    )
    assert parts[1][0].startswith(b"\r\n--SONORA\r\n")
    assert b"Content-Range: bytes 50-99/100\r\n\r\n" in parts[1][0]
    body = b"".join(h + data[a:b] for h, a, b in parts) + impl.multipart_closing("SONORA")
    assert body.endswith(b"\r\n--SONORA--\r\n")
    assert impl.multipart_length(ranges, 100, "audio/mpeg", "SONORA") == len(body)


def test_single_part_length(impl: ModuleType) -> None:
    length = impl.multipart_length([(5, 6)], 7, "audio/flac", "b")
    head = b"--b\r\nContent-Type: audio/flac\r\nContent-Range: bytes 5-5/7\r\n\r\n"
    assert length == len(head) + 1 + len(b"\r\n--b--\r\n")


@pytest.mark.parametrize(
    ("ranges", "ctype", "boundary"),
    [
        ([(0, 101)], "audio/mpeg", "b"),
        ([(5, 5)], "audio/mpeg", "b"),
        ([(0, 1)], "audio/mpeg\r\nX-Evil: 1", "b"),
        ([(0, 1)], "audio/mpeg", ""),
        ([(0, 1)], "audio/mpeg", "x" * 71),
        ([(0, 1)], "audio/mpeg", "bad boundary\r\n"),
    ],
)
def test_rejects_bad_input(
    impl: ModuleType, ranges: list[tuple[int, int]], ctype: str, boundary: str
) -> None:
    with pytest.raises(ValueError):
        impl.multipart_parts(ranges, 100, ctype, boundary)
