"""gencomp.config: flags from GENCOMP_FLAGS, validation, change() as a context manager, snapshots."""

import os
import subprocess
import sys

import pytest

import gencomp
from gencomp.config import Config


def test_defaults():
    cfg = Config(environ={})
    assert cfg.floatX == "float64" and cfg.device == "cpu" and cfg.optimizer == "fast_run"
    assert isinstance(cfg.openmp, bool) and cfg.cc


def test_flags_from_environment():
    cfg = Config(environ={"GENCOMP_FLAGS": "floatX=float32, device=py,openmp=true,optimizer=None"})
    assert (cfg.floatX, cfg.device, cfg.openmp, cfg.optimizer) == ("float32", "py", True, "None")


@pytest.mark.parametrize("flags", ["floatX=float16", "nosuchflag=1", "floatX", "openmp=maybe"])
def test_bad_flags_raise(flags):
    with pytest.raises((ValueError, AttributeError)):
        Config(environ={"GENCOMP_FLAGS": flags})


def test_unknown_attribute_and_bad_value():
    with pytest.raises(AttributeError, match="unknown gencomp config flag"):
        gencomp.config.floatx = "float32"
    with pytest.raises(ValueError, match="floatX"):
        gencomp.config.floatX = "float16"


def test_change_is_a_context_manager_and_a_setter():
    cfg = Config(environ={})
    with cfg.change(floatX="float32", openmp=False):
        assert cfg.floatX == "float32" and cfg.openmp is False
    assert cfg.floatX == "float64" and cfg.openmp is True
    cfg.change(floatX="float32")
    assert cfg.floatX == "float32"


def test_snapshot_is_immutable_and_independent():
    cfg = Config(environ={})
    snap = cfg.snapshot()
    cfg.floatX = "float32"
    assert snap.floatX == "float64"
    with pytest.raises(Exception):
        snap.floatX = "float32"


def test_import_with_flags_in_a_new_process():
    env = dict(os.environ, GENCOMP_FLAGS="floatX=float32")
    code = "import gencomp.tensor as T; print(T.matrix().dtype)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "float32"
