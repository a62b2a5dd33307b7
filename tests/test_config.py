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


def test_theano_flags_that_programs_set():
    """Theano programs set config.exception_verbosity, warn_float64, mode, on_unused_input, profile,
    allow_gc at their top: accepted (validated), mode and on_unused_input are function()'s defaults,
    warn_float64 warns about or refuses a float64 variable in a function's graph."""
    import warnings

    import numpy as np

    import gencomp
    import gencomp.tensor as T

    x, y = T.fvector("x"), T.dvector("y")
    with gencomp.config.change(exception_verbosity="high", profile=True, allow_gc=False, print_active_device=False):
        assert gencomp.config.exception_verbosity == "high" and gencomp.config.allow_gc is False
        assert gencomp.function([x], x * 2)(np.ones(2, "float32")).tolist() == [2.0, 2.0]
    assert gencomp.config.exception_verbosity == "low"
    with gencomp.config.change(warn_float64="raise"):
        gencomp.function([x], x * 2)
        with pytest.raises(TypeError, match="float64.*warn_float64"):
            gencomp.function([x, y], x * y)
    with gencomp.config.change(warn_float64="warn"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gencomp.function([x, y], x + y)
    assert any("float64" in str(w.message) for w in caught)
    with gencomp.config.change(on_unused_input="ignore"):
        assert gencomp.function([x, y], x * 2)(np.ones(2, "float32"), np.ones(2)).tolist() == [2.0, 2.0]
    with pytest.raises(gencomp.UnusedInputError):
        gencomp.function([x, y], x * 2)
    with gencomp.config.change(mode="FAST_COMPILE"):
        assert gencomp.function([x], x * 2).maker.mode.optimizer == "fast_compile"
    for name, bad in [("warn_float64", "maybe"), ("mode", "FASTEST"), ("profile", "often")]:
        with pytest.raises(ValueError):
            setattr(gencomp.config, name, bad)
    cfg = Config(environ={"GENCOMP_FLAGS": "exception_verbosity=high,on_unused_input=warn"})
    assert cfg.exception_verbosity == "high" and cfg.on_unused_input == "warn"


def test_theano_device_names():
    """Theano's device names 'gpu' (its old backend) and 'cuda0', 'cuda1'... mean device='cuda'."""
    cfg = Config(environ={"GENCOMP_FLAGS": "device=cuda0"})
    assert cfg.device == "cuda"
    for name in ("gpu", "gpu1", "cuda", "cuda3"):
        cfg.device = name
        assert cfg.device == "cuda"
    cfg.device = "cpu"
    with pytest.raises(ValueError, match="device"):
        cfg.device = "opencl0"
