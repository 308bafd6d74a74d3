"""Sonora's native streaming core: range parsing, the byte-rate limiter, an open-file cache
and a sender.

The compiled twin (``_cstream``) is used when it was built and imports; otherwise, or when
``STREAMCORE_NO_EXTENSIONS`` is set to a non-empty value, the pure-Python reference
(``_pystream``) is.  Both have the same API and pass the same tests.
"""

from __future__ import annotations

import os
from types import ModuleType

from . import _pystream as _pystream

NO_EXTENSIONS: bool = bool(os.environ.get("STREAMCORE_NO_EXTENSIONS"))

_cstream: ModuleType | None
if NO_EXTENSIONS:
    _cstream = None
else:
    try:
        from . import _cstream
    except ImportError:  # not built here: the pure-Python twin serves
        _cstream = None

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
