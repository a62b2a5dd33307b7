"""Theano's older theano.tensor.signal.downsample (max_pool_2d); pool.pool_2d is the current name."""

from ..conv import max_pool_2d  # noqa: F401
