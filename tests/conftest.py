"""Test set-up: every test session compiles into its own private cache folder."""

import os
import tempfile

import pytest

_CACHE = tempfile.mkdtemp(prefix="gencomp-test-cache-")
os.environ["GENCOMP_CACHE_DIR"] = _CACHE       # also seen by subprocesses the tests start

import gencomp  # noqa: E402

gencomp.config.cache_dir = _CACHE


@pytest.fixture
def fresh_cache(tmp_path):
    """A new empty cache folder for the duration of one test."""
    folder = tmp_path / "cache"
    with gencomp.config.change(cache_dir=str(folder)):
        yield folder
