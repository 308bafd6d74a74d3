"""Builds the native streaming core (streamcore._cstream) in place, and packages app and streamcore.

When Cython or a C compiler is missing, the build is skipped and the pure-Python twin
(streamcore._pystream) is used; STREAMCORE_NO_EXTENSIONS=1 skips it on purpose, and
STREAMCORE_REQUIRE_EXTENSIONS=1 makes a missing Cython an error instead (CI sets it).
"""

import os
import sys

from setuptools import find_packages, setup

ext_modules = []
if not os.environ.get("STREAMCORE_NO_EXTENSIONS"):
    try:
        from Cython.Build import cythonize
    except ImportError:  # pragma: no cover - the twin is used
        if os.environ.get("STREAMCORE_REQUIRE_EXTENSIONS"):
            sys.exit("Cython not installed and STREAMCORE_REQUIRE_EXTENSIONS is set")
        print("Cython not installed: streamcore uses its pure-Python twin")
    else:
        ext_modules = cythonize(
            ["streamcore/_cstream.pyx"],
            compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        )

setup(
    name="sonora",
    version="0.1.0",
    # Every package under app/ and streamcore/ (app's subpackages included), nothing else.
    packages=find_packages(include=["app", "app.*", "streamcore", "streamcore.*"]),
    package_data={"streamcore": ["py.typed"]},
    exclude_package_data={"streamcore": ["*.c"]},  # the generated C is a build step, not shipped
    ext_modules=ext_modules,
)
