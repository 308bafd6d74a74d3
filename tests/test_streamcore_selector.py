"""The selector loads the compiled twin where it was built, honours the opt-out variable, and
refuses the fallback when STREAMCORE_REQUIRE_EXTENSIONS is set (CI sets it)."""

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
    elif built or os.environ.get("STREAMCORE_REQUIRE_EXTENSIONS"):
        # Required (CI) or built: the compiled twin must be the one in use, never a skip.
        assert built, "STREAMCORE_REQUIRE_EXTENSIONS is set but streamcore/_cstream*.so is missing"
        assert streamcore.IMPLEMENTATION == "cython", f"{built} exists but did not load"
        assert streamcore._cstream is not None
        assert streamcore.parse_range is streamcore._cstream.parse_range
        assert streamcore.PaceScheduler is streamcore._cstream.PaceScheduler
    else:
        pytest.skip("the extension is not built here (set STREAMCORE_REQUIRE_EXTENSIONS=1 to fail)")


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


# Imports streamcore with the compiled twin made unimportable, as on a machine where the build
# failed: None in sys.modules makes `from . import _cstream` raise ImportError.
_MISSING_EXTENSION = (
    "import sys; sys.modules['streamcore._cstream'] = None\n"
    "try:\n"
    "    import streamcore as s\n"
    "except ImportError as exc:\n"
    "    print('refused', exc)\n"
    "else:\n"
    "    print('loaded', s.IMPLEMENTATION)\n"
)


def _run(code: str, **env: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_require_extensions_refuses_the_fallback() -> None:
    """With STREAMCORE_REQUIRE_EXTENSIONS set, a compiled twin that does not import is an
    ImportError that names the variable, not a silent switch to the pure-Python twin."""
    out = _run(_MISSING_EXTENSION, STREAMCORE_REQUIRE_EXTENSIONS="1", STREAMCORE_NO_EXTENSIONS="")
    assert out.startswith("refused STREAMCORE_REQUIRE_EXTENSIONS is set"), out


@pytest.mark.parametrize(
    ("require", "no_ext"), [("", ""), ("1", "1")], ids=["not-required", "opted-out"]
)
def test_fallback_without_the_requirement_or_when_opted_out(require: str, no_ext: str) -> None:
    """Without the variable the twin serves (so `make run` works with no compiler); an explicit
    STREAMCORE_NO_EXTENSIONS wins over it (an opt-out is not a failed build)."""
    out = _run(_MISSING_EXTENSION, STREAMCORE_REQUIRE_EXTENSIONS=require, STREAMCORE_NO_EXTENSIONS=no_ext)
    assert out == "loaded python", out


def test_require_extensions_loads_the_built_twin() -> None:
    """Where the twin is built, requiring it changes nothing: the compiled module is selected."""
    if not _built():
        assert not os.environ.get("STREAMCORE_REQUIRE_EXTENSIONS"), "required but not built"
        pytest.skip("the extension is not built here")
    out = _run("import streamcore as s; print(s.IMPLEMENTATION)",
               STREAMCORE_REQUIRE_EXTENSIONS="1", STREAMCORE_NO_EXTENSIONS="")
    assert out == "cython", out
