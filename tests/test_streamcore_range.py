"""parse_range: RFC 9110 §14.1.2 cases, and both implementations agreeing on anything."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamcore

HUGE = "99999999999999999999999999"
N = None  # 200 with the whole file
E = "416"  # RangeNotSatisfiable

CASES = [
    # (header, size, expected)
    (None, 100, N),
    ("", 100, N),
    ("bytes=0-0", 100, [(0, 1)]),
    ("bytes=0-99", 100, [(0, 100)]),
    ("bytes=10-19", 100, [(10, 20)]),
    ("bytes=90-", 100, [(90, 100)]),
    ("bytes=0-", 100, [(0, 100)]),
    ("bytes=-10", 100, [(90, 100)]),
    ("bytes=-100", 100, [(0, 100)]),
    ("bytes=-1000", 100, [(0, 100)]),
    ("bytes=50-1000", 100, [(50, 100)]),
    ("bytes=99-", 100, [(99, 100)]),
    # units, syntax
    ("BYTES=0-1", 100, [(0, 2)]),
    ("Bytes=0-1", 100, [(0, 2)]),
    ("items=0-1", 100, N),
    ("bytes", 100, N),
    ("bytes=", 100, N),
    ("bytes=,", 100, N),
    ("bytes=5-2", 100, N),
    ("bytes=a-b", 100, N),
    ("bytes=1-2-3", 100, N),
    ("bytes=--5", 100, N),
    ("bytes=-", 100, N),
    ("bytes=1", 100, N),
    ("bytes=0 -1", 100, N),
    ("bytes=+1-2", 100, N),
    ("bytes=0x1-2", 100, N),
    ("bytes=\u0661-2", 100, N),  # Arabic-Indic digit: not ASCII, malformed
    ("bytes=1-\u00b2", 100, N),  # superscript two
    ("bytes=0-1;", 100, N),
    ("bytes=0-1, 5-2", 100, N),  # one malformed element spoils the set
    ("b\u00fdtes=0-1", 100, N),
    # whitespace (OWS) and empty list elements
    ("bytes = 0-1", 100, [(0, 2)]),
    (" bytes=0-1 ", 100, [(0, 2)]),
    ("bytes=0-1 ,\t4-5", 100, [(0, 2), (4, 6)]),
    ("bytes=0-1,,4-5", 100, [(0, 2), (4, 6)]),
    ("bytes=,0-1,", 100, [(0, 2)]),
    ("bytes=0-1,\n4-5", 100, N),  # only SP and HTAB are OWS
    # merging: sorted, overlapping and adjacent merged
    ("bytes=20-29,0-9", 100, [(0, 10), (20, 30)]),
    ("bytes=0-9,5-14", 100, [(0, 15)]),
    ("bytes=0-9,10-19", 100, [(0, 20)]),
    ("bytes=0-9,11-19", 100, [(0, 10), (11, 20)]),
    ("bytes=0-4,-5,3-", 10, [(0, 10)]),
    ("bytes=0-0,-1", 10, [(0, 1), (9, 10)]),
    ("bytes=50-59,0-9,40-", 100, [(0, 10), (40, 100)]),
    # huge numbers never overflow
    (f"bytes={HUGE}-", 100, E),
    (f"bytes={HUGE}-{HUGE}", 100, E),
    (f"bytes=0-{HUGE}", 100, [(0, 100)]),
    (f"bytes=-{HUGE}", 100, [(0, 100)]),
    (f"bytes={'0' * 40}5-9", 100, [(5, 10)]),
    (f"bytes=0-{'9' * 5000}", 100, [(0, 100)]),
    # unsatisfiable
    ("bytes=100-", 100, E),
    ("bytes=100-200", 100, E),
    ("bytes=-0", 100, E),
    ("bytes=-0,200-", 100, E),
    ("bytes=-0,5-6", 100, [(5, 7)]),
    ("bytes=200-,0-1", 100, [(0, 2)]),
    # size 0
    ("bytes=0-", 0, E),
    ("bytes=-5", 0, E),
    ("bytes=0-0", 0, E),
    ("items=0-", 0, N),
    # too many or pathological
    (
        "bytes=" + ",".join(f"{i * 2}-{i * 2}" for i in range(16)),
        100,
        [(i * 2, i * 2 + 1) for i in range(16)],
    ),
    ("bytes=" + ",".join(f"{i * 2}-{i * 2}" for i in range(17)), 100, N),
    ("bytes=" + ",".join(["0-"] * 3), 100, N),
    ("bytes=0-,0-", 100, [(0, 100)]),
    ("bytes=" + ",".join(f"{i}-{i + 60}" for i in range(10)), 100, N),
]


@pytest.mark.parametrize(("header", "size", "expected"), CASES)
def test_parse_range_cases(impl: ModuleType, header: str | None, size: int, expected: object) -> None:
    if expected == E:
        with pytest.raises(impl.RangeNotSatisfiable):
            impl.parse_range(header, size)
    else:
        assert impl.parse_range(header, size) == expected


def test_max_ranges_parameter(impl: ModuleType) -> None:
    header = "bytes=0-0,2-2,4-4"
    assert impl.parse_range(header, 10, max_ranges=3) == [(0, 1), (2, 3), (4, 5)]
    assert impl.parse_range(header, 10, max_ranges=2) is None
    assert impl.parse_range(header, 10, max_ranges=0) is None


def test_exception_is_shared(impl: ModuleType) -> None:
    assert impl.RangeNotSatisfiable is streamcore.RangeNotSatisfiable
    with pytest.raises(streamcore.RangeNotSatisfiable, match=r"bytes \*/7"):
        impl.parse_range("bytes=7-", 7)


def test_bad_size(impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        impl.parse_range("bytes=0-1", -1)
    with pytest.raises((ValueError, OverflowError)):
        impl.parse_range("bytes=0-1", 1 << 63)


_number = st.one_of(
    st.integers(0, 130).map(str),
    st.integers(0, 10**30).map(str),
    st.text("0123456789", min_size=1, max_size=30),
    st.sampled_from(["", "x", "1x", "\u0661", " 1", "-1", "+1"]),
)
_element = st.one_of(
    st.tuples(_number, _number).map(lambda t: f"{t[0]}-{t[1]}"),
    _number.map(lambda n: f"{n}-"),
    _number.map(lambda n: f"-{n}"),
    st.sampled_from(["", " ", "-", "--", "1-2-3", "\t"]),
    st.text(max_size=6),
)
_ows = st.sampled_from(["", " ", "\t", "  ", "\n"])
_header = st.one_of(
    st.builds(
        lambda unit, pre, post, elements, sep: f"{unit}{pre}={post}" + sep.join(elements),
        st.sampled_from(["bytes", "BYTES", "Bytes", " bytes", "items", "byte", ""]),
        _ows,
        _ows,
        st.lists(_element, max_size=20),
        st.sampled_from([",", ", ", " ,", ",\t", ",,"]),
    ),
    st.text(max_size=40),
    st.none(),
)
_size = st.one_of(st.integers(0, 140), st.integers(0, 1 << 62))


def _outcome(impl: ModuleType, header: str | None, size: int, max_ranges: int) -> object:
    try:
        return impl.parse_range(header, size, max_ranges)
    except impl.RangeNotSatisfiable:
        return E


@settings(max_examples=1500, deadline=None)
@given(header=_header, size=_size, max_ranges=st.sampled_from([16, 16, 1, 4, 30]))
def test_implementations_agree(header: str | None, size: int, max_ranges: int) -> None:
    outcomes = {
        m.__name__: _outcome(m, header, size, max_ranges)
        for m in (streamcore._pystream, streamcore._cstream)
        if m is not None
    }
    assert len(set(map(repr, outcomes.values()))) == 1, outcomes
    result = outcomes["streamcore._pystream"]
    if isinstance(result, list):
        assert 1 <= len(result) <= max_ranges
        for start, stop in result:
            assert 0 <= start < stop <= size
        for (_, prev_stop), (next_start, _) in zip(result, result[1:], strict=False):
            assert prev_stop < next_start  # sorted, neither overlapping nor adjacent
        assert sum(stop - start for start, stop in result) <= size
