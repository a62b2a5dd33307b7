"""theano.sandbox.rng_mrg's import path: MRG_RandomStreams, the RandomStreams of gencomp.tensor.

The numbers come from numpy's generators, not from Theano's MRG31k3p: same distributions, other
values. Theano's `nstreams=` (how many GPU streams draw the numbers) has no meaning here and is
accepted and ignored, so calls written for Theano run unchanged.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import dtypes
from ..graph import Apply, Op
from ..tensor import shared_randomstreams as _srs
from ..tensor.type import TensorType
from ..tensor.variable import as_tensor_variable


class ChoiceFromUniform(Op):
    """Theano's multinomial.ChoiceFromUniform: for each row of pvals, n_samples indices drawn without
    replacement, sample c of row r picking the first category whose cumulated probability exceeds
    unis[c * rows + r], that probability then set to 0 and the row renormalized. Output (rows, n)."""

    def __init__(self, odtype="int64"):
        self.odtype = dtypes.canonical(odtype)

    def signature(self):
        return f"ChoiceFromUniform{{{self.odtype}}}"

    def __reduce__(self):
        return ChoiceFromUniform, (self.odtype,)

    def make_node(self, pvals, unis, n_samples):
        pvals, unis, n_samples = (as_tensor_variable(v) for v in (pvals, unis, n_samples))
        if pvals.ndim != 2 or unis.ndim != 1:
            raise TypeError("ChoiceFromUniform: pvals must be a matrix and unis a vector")
        if n_samples.ndim != 0 or not dtypes.is_integer(n_samples.dtype):
            raise TypeError(f"choice: size (the number of samples per row) must be an integer scalar, "
                            f"got {n_samples.type}")
        return Apply(self, [pvals, unis, n_samples], [TensorType(self.odtype, (False, False))])

    def perform(self, node, inputs):
        pvals, unis, n_samples = inputs
        n_samples = int(n_samples)
        rows, outcomes = pvals.shape
        if n_samples > outcomes:
            raise ValueError(f"choice: cannot draw {n_samples} samples without replacement from "
                             f"{outcomes} categories")
        if n_samples < 0:
            raise ValueError(f"choice: size must be >= 0, got {n_samples}")
        if unis.shape[0] != rows * n_samples:
            raise ValueError(f"choice: {unis.shape[0]} uniforms for {rows} rows x {n_samples} samples")
        pvals = np.array(pvals, dtype=pvals.dtype if pvals.dtype.kind == "f" else np.float64)
        out = np.full((rows, n_samples), -1, dtype=self.odtype)
        for c in range(n_samples):
            u = unis[c * rows:(c + 1) * rows]
            above = np.cumsum(pvals, axis=1) > u[:, None]
            hit = above.any(axis=1)
            picked = above.argmax(axis=1)
            r = np.nonzero(hit)[0]
            out[r, c] = picked[r]
            pvals[r, picked[r]] = 0.0
            with np.errstate(invalid="ignore", divide="ignore"):
                pvals[r] /= pvals[r].sum(axis=1, keepdims=True)
        return [out]

    def grad(self, inputs, output_grads, outputs):
        return [None] * len(inputs)


class MRG_RandomStreams(_srs.MRG_RandomStreams):
    """Theano's MRG_RandomStreams(seed): uniform, normal, binomial, multinomial and choice (without
    replacement; multinomial_wo_replacement) variables."""

    def uniform(self, size=None, low=0.0, high=1.0, ndim=None, dtype=None, nstreams=None, **kwargs):
        return super().uniform(size=size, low=low, high=high, ndim=ndim, dtype=dtype)

    def normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None, nstreams=None, truncate=False,
               **kwargs):
        if truncate:
            raise NotImplementedError("MRG_RandomStreams.normal(truncate=True) (truncated_normal) is not "
                                      "available in gencomp")
        return super().normal(size=size, avg=avg, std=std, ndim=ndim, dtype=dtype)

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64", nstreams=None, **kwargs):
        return super().binomial(size=size, n=n, p=p, ndim=ndim, dtype=dtype)

    def multinomial(self, size=None, n=1, pvals=None, ndim=None, dtype="int64", nstreams=None, **kwargs):
        """`n` draws per row of the matrix `pvals` (each row a distribution), counted per category:
        a matrix of pvals' shape, as Theano 1.0's (n=1: one-hot rows). A draw u falls in the first
        category whose cumulated probability exceeds it. `size` is not used: given, it is a
        ValueError, as there."""
        from .. import tensor as T

        if pvals is None:
            raise TypeError("multinomial needs pvals= (a matrix, one distribution per row)")
        if size is not None:
            raise ValueError("MRG_RandomStreams.multinomial does not use size: the draws have pvals' shape "
                             "(give n= for several draws per row)")
        if isinstance(n, (int, np.integer)) and n < 0:
            raise ValueError(f"multinomial: n must be >= 0, got {n}")
        pvals = T.as_tensor_variable(pvals)
        if pvals.ndim != 2:
            raise TypeError(f"multinomial: pvals must be a matrix, got a {pvals.ndim}-d tensor")
        draws = self.uniform(size=(n, pvals.shape[0]), dtype=pvals.dtype)
        upper = T.cumsum(pvals, axis=1)
        u = draws.dimshuffle(0, 1, "x")
        # category k holds [upper[k-1], upper[k]): neighbours share a bound bit for bit, so the
        # intervals never overlap or leave gaps, whatever the rounding of the cumulated sum
        lower = T.concatenate([T.zeros_like(upper[:, :1]), upper[:, :-1]], axis=1)
        hit = (u >= lower.dimshuffle("x", 0, 1)) & (u < upper.dimshuffle("x", 0, 1))
        return T.cast(T.sum(hit, axis=0), dtype)

    def choice(self, size=1, a=None, replace=True, p=None, ndim=None, dtype="int64", nstreams=None,
               **kwargs):
        """Theano 1.0's MRG choice: `size` indices per row of the matrix `p`, drawn WITHOUT replacement
        (replace=False is required, a must be None, as there): a (rows, size) matrix of indices in
        0..p.shape[1]-1."""
        if replace:
            raise NotImplementedError("MRG_RandomStreams.choice only draws without replacement: pass "
                                      "replace=False (as Theano's)")
        if a is not None:
            raise TypeError("MRG_RandomStreams.choice: a must be None; the values drawn are the column "
                            "indices 0..p.shape[1]-1")
        if p is None:
            raise TypeError("MRG_RandomStreams.choice needs p= (a matrix, one distribution per row)")
        if ndim is not None:
            raise ValueError("MRG_RandomStreams.choice does not use ndim")
        p = as_tensor_variable(p)
        if p.ndim != 2:
            raise NotImplementedError(f"MRG_RandomStreams.choice needs p as a matrix (p.ndim = 2), got "
                                      f"{p.ndim}-d")
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size < 0:
            raise ValueError(f"MRG_RandomStreams.choice: size must be >= 0, got {size}")
        n_samples = as_tensor_variable(size)
        if n_samples.ndim != 0 or not dtypes.is_integer(n_samples.dtype):
            raise TypeError(f"MRG_RandomStreams.choice: size (samples per row) must be an integer scalar, "
                            f"got {size!r}")
        unis = self.uniform(size=(p.shape[0] * n_samples,), ndim=1)
        return ChoiceFromUniform(dtype)(p, unis, n_samples)

    def multinomial_wo_replacement(self, size=None, n=1, pvals=None, ndim=None, dtype="int64",
                                   nstreams=None, **kwargs):
        """Deprecated in Theano 1.0 for choice(size=n, replace=False, p=pvals), which it calls."""
        warnings.warn("MRG_RandomStreams.multinomial_wo_replacement() is deprecated (as in Theano 1.0): "
                      "use MRG_RandomStreams.choice(size=n, replace=False, p=pvals)", DeprecationWarning,
                      stacklevel=2)
        if size is not None:
            raise ValueError("MRG_RandomStreams.multinomial_wo_replacement does not use size (give n)")
        return self.choice(size=n, a=None, replace=False, p=pvals, ndim=ndim, dtype=dtype)


__all__ = ["ChoiceFromUniform", "MRG_RandomStreams"]
