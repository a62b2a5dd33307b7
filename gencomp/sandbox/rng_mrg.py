"""theano.sandbox.rng_mrg's import path: MRG_RandomStreams, the RandomStreams of gencomp.tensor.

The numbers come from numpy's generators, not from Theano's MRG31k3p: same distributions, other
values. Theano's `nstreams=` (how many GPU streams draw the numbers) has no meaning here and is
accepted and ignored, so calls written for Theano run unchanged.
"""

from __future__ import annotations

from ..tensor import shared_randomstreams as _srs


class MRG_RandomStreams(_srs.MRG_RandomStreams):
    """Theano's MRG_RandomStreams(seed): uniform, normal, binomial and multinomial variables."""

    def uniform(self, size=None, low=0.0, high=1.0, ndim=None, dtype=None, nstreams=None, **kwargs):
        return super().uniform(size=size, low=low, high=high, ndim=ndim, dtype=dtype)

    def normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None, nstreams=None, **kwargs):
        return super().normal(size=size, avg=avg, std=std, ndim=ndim, dtype=dtype)

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64", nstreams=None, **kwargs):
        return super().binomial(size=size, n=n, p=p, ndim=ndim, dtype=dtype)

    def multinomial(self, size=None, n=1, pvals=None, ndim=None, dtype="int64", nstreams=None, **kwargs):
        """One draw per row of the matrix `pvals` (each row a distribution), as a one-hot matrix of
        pvals' shape, as Theano's: row i is 1 at the first category whose cumulated probability
        exceeds a uniform draw u_i (`size` is ignored,
        as there). Only n=1 (one draw per row), as in Theano's MRG."""
        from .. import tensor as T

        if pvals is None:
            raise TypeError("multinomial needs pvals= (a matrix, one distribution per row)")
        if n != 1:
            raise NotImplementedError("MRG_RandomStreams.multinomial draws one sample per row (n=1), "
                                      "as Theano's does")
        pvals = T.as_tensor_variable(pvals)
        if pvals.ndim != 2:
            raise TypeError(f"multinomial: pvals must be a matrix, got a {pvals.ndim}-d tensor")
        draws = self.uniform(size=(pvals.shape[0],), dtype=pvals.dtype)
        upper = T.cumsum(pvals, axis=1)
        u = draws.dimshuffle(0, "x")
        # category k holds [upper[k-1], upper[k]): neighbours share a bound bit for bit, so the
        # intervals never overlap or leave gaps, whatever the rounding of the cumulated sum
        lower = T.concatenate([T.zeros_like(upper[:, :1]), upper[:, :-1]], axis=1)
        hit = (u >= lower) & (u < upper)
        return T.cast(hit, dtype)


__all__ = ["MRG_RandomStreams"]
