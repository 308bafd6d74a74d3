"""Sonora's native streaming core: range parsing, the byte-rate limiter, an open-file cache
and a sender.

The compiled twin (``_cstream``) is used when it was built and imports; otherwise, or when
``STREAMCORE_NO_EXTENSIONS`` is set to a non-empty value, the pure-Python reference
(``_pystream``) is.  Both have the same API and pass the same tests.  A non-empty
``STREAMCORE_REQUIRE_EXTENSIONS`` (CI sets it) turns a compiled twin that does not import into
an ``ImportError`` instead of the silent fallback; ``STREAMCORE_NO_EXTENSIONS`` still wins (an
opt-out is not a failed build).
"""

from __future__ import annotations

import os
from types import ModuleType

from . import _pystream as _pystream

NO_EXTENSIONS: bool = bool(os.environ.get("STREAMCORE_NO_EXTENSIONS"))
REQUIRE_EXTENSIONS: bool = bool(os.environ.get("STREAMCORE_REQUIRE_EXTENSIONS"))

_cstream: ModuleType | None
if NO_EXTENSIONS:
    _cstream = None
else:
    try:
        from . import _cstream
    except ImportError as exc:
        if REQUIRE_EXTENSIONS:
            raise ImportError(
                "STREAMCORE_REQUIRE_EXTENSIONS is set but the compiled streamcore._cstream did "
                f"not import ({exc}); build it with `make build` or unset the variable"
            ) from exc
        _cstream = None  # not built here: the pure-Python twin serves

if _cstream is not None:
    from ._cstream import (
        Pacer,
        PaceScheduler,
        allocate,
        parse_range,
        send_range,
    )

    IMPLEMENTATION: str = "cython"
else:
    from ._pystream import (
        Pacer,
        PaceScheduler,
        allocate,
        parse_range,
        send_range,
    )

    IMPLEMENTATION = "python"

from ._common import (  # noqa: E402 - shared by both implementations
    FileCache,
    OpenFile,
    RangeNotSatisfiable,
    StallTimeout,
    multipart_closing,
    multipart_length,
    multipart_parts,
)

__all__ = [
    "IMPLEMENTATION",
    "NO_EXTENSIONS",
    "FileCache",
    "OpenFile",
    "PaceScheduler",
    "Pacer",
    "RangeNotSatisfiable",
    "StallTimeout",
    "allocate",
    "multipart_closing",
    "multipart_length",
    "multipart_parts",
    "parse_range",
    "send_range",
]
