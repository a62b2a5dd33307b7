"""Test set-up: every test session compiles into its own private cache folder."""

import os
import tempfile

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI and here), so a red run is reproducible;
# HYPOTHESIS_PROFILE=nightly draws new examples each run, and more of them where a test lets it.
settings.register_profile("default", derandomize=True, print_blob=True)
settings.register_profile("nightly", derandomize=False, max_examples=200, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

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
