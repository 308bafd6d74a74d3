"""Builds the native streaming core (streamcore._cstream) in place.

When Cython or a C compiler is missing, the build is skipped and the pure-Python twin
(streamcore._pystream) is used; STREAMCORE_NO_EXTENSIONS=1 skips it on purpose.
"""

import os

from setuptools import setup

ext_modules = []
if not os.environ.get("STREAMCORE_NO_EXTENSIONS"):
    try:
        from Cython.Build import cythonize
    except ImportError:  # pragma: no cover - the twin is used
        print("Cython not installed: streamcore uses its pure-Python twin")
    else:
        ext_modules = cythonize(
            ["streamcore/_cstream.pyx"],
            compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        )

setup(
    name="sonora",
    version="0.1.0",
    packages=["app", "streamcore"],
    ext_modules=ext_modules,
)
