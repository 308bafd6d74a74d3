"""Fixtures for the streamcore tests: every case runs on each available implementation."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

import streamcore

IMPLEMENTATIONS: list[ModuleType] = [streamcore._pystream]
if streamcore._cstream is not None:
    IMPLEMENTATIONS.append(streamcore._cstream)


@pytest.fixture(params=IMPLEMENTATIONS, ids=[m.__name__.rsplit(".", 1)[-1] for m in IMPLEMENTATIONS])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """One streamcore implementation module (_pystream always, _cstream when built)."""
    return request.param


@pytest.fixture(scope="session")
def audio_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A few MB of random bytes standing in for an uploaded song."""
    data = os.urandom(3 * 1024 * 1024 + 12345)
    path = tmp_path_factory.mktemp("media") / "song.mp3"
    path.write_bytes(data)
    return path, data
