"""Random numbers in graphs: Theano's RandomStreams (uniform, normal, binomial), drawn with numpy.

Each random variable owns a numpy Generator (seeded from its stream's seed and its position in
the stream), and every call of a compiled function draws new values from it, as Theano's do
through their default updates. A variable used twice in one graph is one draw. The numbers are
numpy's, not Theano's: same distributions, other values.
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import dtypes
from ..graph import Apply, Op
from .type import TensorType
from .variable import as_tensor_variable

_UIDS = itertools.count()     # random variables made in this process, in order


class RandomDraw(Op):
    """A sample of `kind` with the given size and (broadcasting) parameters; not a pure function."""

    stateful = True            # never constant-folded: each call draws anew

    def __init__(self, kind: str, dtype: str, ndim: int, stream):
        self.kind, self.dtype, self.ndim, self.stream = kind, dtype, int(ndim), stream

    def signature(self):
        # a number unique to the variable names the draw, so two draws never merge; the seed stays
        # out of it, so a program re-run with another seed finds its compiled module in the cache
        return f"Random{{{self.kind},{self.dtype},{self.ndim},id={self.stream.uid}}}"

    def __reduce__(self):
        return RandomDraw, (self.kind, self.dtype, self.ndim, self.stream)

    def make_node(self, *inputs):
        size, params = inputs[:self.ndim], [as_tensor_variable(p) for p in inputs[self.ndim:]]
        size = [as_tensor_variable(s) for s in size]
        if any(s.ndim != 0 or not dtypes.is_integer(s.dtype) for s in size):
            raise TypeError(f"random {self.kind}: size entries must be integer scalars")
        if any(p.ndim > self.ndim for p in params):
            raise TypeError(f"random {self.kind}: a parameter has more dimensions than the size")
        return Apply(self, [*size, *params], [TensorType(self.dtype, (False,) * self.ndim)])

    def perform(self, node, inputs):
        shape = tuple(int(s) for s in inputs[:self.ndim])
        params = inputs[self.ndim:]
        rng = self.stream.generator
        if self.kind == "uniform":
            value = rng.uniform(params[0], params[1], size=shape)
        elif self.kind == "normal":
            value = rng.normal(params[0], params[1], size=shape)
        else:
            value = rng.binomial(params[0], params[1], size=shape)
        return [np.asarray(value, dtype=self.dtype)]

    def grad(self, inputs, output_grads, outputs):
        return [None] * len(inputs)          # samples are not differentiable in their parameters


class _Stream:
    """One random variable's generator: created from (seed, index), reseeded by RandomStreams.seed."""

    def __init__(self, seed: int, index: int):
        self.seed, self.index, self.uid = seed, index, next(_UIDS)
        self.generator = np.random.default_rng([seed, index])

    def __getstate__(self):
        return {"seed": self.seed, "index": self.index, "uid": self.uid,
                "state": self.generator.bit_generator.state}

    def __setstate__(self, state):
        self.seed, self.index, self.uid = state["seed"], state["index"], state["uid"]
        self.generator = np.random.default_rng([self.seed, self.index])
        self.generator.bit_generator.state = state["state"]


class RandomStreams:
    """Theano's `RandomStreams(seed)`: `uniform`, `normal` and `binomial` variables of a given size."""

    def __init__(self, seed: int | None = None):
        self._seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        self._streams: list[_Stream] = []

    def seed(self, seed: int) -> None:
        """Restart every variable of these streams from `seed`."""
        self._seed = int(seed)
        for stream in self._streams:
            stream.seed = self._seed
            stream.generator = np.random.default_rng([self._seed, stream.index])

    def updates(self) -> list:
        """Theano lists the generators' state updates here; gencomp advances them itself."""
        return []

    def _draw(self, kind, size, ndim, dtype, params):
        from ..config import config
        from .math import _shape_entries

        entries = _shape_entries(size) if size is not None else None
        if entries is None:
            raise TypeError(f"random {kind}: give size= (a tuple, or x.shape)")
        if ndim is not None and ndim != len(entries):
            raise ValueError(f"random {kind}: ndim={ndim} but size has {len(entries)} entries")
        dtype = dtypes.canonical(config.floatX if dtype in (None, "floatX") else dtype)
        stream = _Stream(self._seed, len(self._streams))
        self._streams.append(stream)
        return RandomDraw(kind, dtype, len(entries), stream)(*entries, *params)

    def uniform(self, size=None, low=0.0, high=1.0, ndim=None, dtype=None):
        return self._draw("uniform", size, ndim, dtype, (low, high))

    def normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None):
        return self._draw("normal", size, ndim, dtype, (avg, std))

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64"):
        return self._draw("binomial", size, ndim, dtype, (n, p))


MRG_RandomStreams = RandomStreams      # theano.sandbox.rng_mrg's name, for ported programs
