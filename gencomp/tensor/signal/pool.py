"""Theano's theano.tensor.signal.pool: pool_2d (and the older max_pool_2d); see tensor/conv.py."""

from ..conv import Pool2D, max_pool_2d, max_pool_2d_same_size, pool_2d  # noqa: F401
