"""The selector loads the compiled twin where it was built, and honours the opt-out variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import streamcore

PACKAGE = Path(streamcore.__file__).parent


def _built() -> list[Path]:
    return list(PACKAGE.glob("_cstream*.so")) + list(PACKAGE.glob("_cstream*.pyd"))


def test_compiled_module_loads_where_built() -> None:
    built = _built()
    if os.environ.get("STREAMCORE_NO_EXTENSIONS"):
        assert streamcore.IMPLEMENTATION == "python" and streamcore.NO_EXTENSIONS
    elif built:
        assert streamcore.IMPLEMENTATION == "cython", f"{built} exists but did not load"
        assert streamcore._cstream is not None
        assert streamcore.parse_range is streamcore._cstream.parse_range
    else:
        pytest.skip("the extension is not built here")


def test_public_api_complete() -> None:
    for name in streamcore.__all__:
        assert hasattr(streamcore, name), name
    assert streamcore._pystream is not None


@pytest.mark.parametrize("value", ["1", ""])
def test_no_extensions_variable(value: str) -> None:
    """A non-empty STREAMCORE_NO_EXTENSIONS forces the twin; an empty one does not."""
    env = dict(os.environ, STREAMCORE_NO_EXTENSIONS=value)
    code = (
        "import streamcore as s; "
        "print(s.IMPLEMENTATION, s._cstream is not None, s.NO_EXTENSIONS, "
        "s.parse_range.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if value:
        assert out == ["python", "False", "True", "streamcore._pystream"]
    else:
        assert out[2] == "False"
        assert out[0] == ("cython" if _built() else "python")
