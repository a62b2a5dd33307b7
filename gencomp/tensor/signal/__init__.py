"""gencomp.tensor.signal: Theano's pooling module path (`signal.pool.pool_2d`)."""

from . import pool  # noqa: F401
