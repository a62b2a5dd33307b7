"""Random numbers in graphs: Theano's RandomStreams (uniform, normal, binomial), drawing Theano's numbers.

As in Theano 1.0 (theano/tensor/shared_randomstreams.py and raw_random.py), a RandomStreams keeps
a master `numpy.random.RandomState(seed)`; each new random variable gets its own RandomState,
seeded with `master.randint(2**30)`, held by a shared variable `rv.rng`, and every call of a
compiled function draws from it with `RandomState.uniform(low, high, size)`, `normal(avg, std,
size)` or `binomial(n, p, size)`, cast to the variable's dtype. So a program seeded like its
Theano original gets the same numbers. A variable used twice in one graph is one draw.
"""

from __future__ import annotations

import copy
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
        rng = self.stream.rng.get_value(borrow=True)
        if self.kind == "binomial":
            value = rng.binomial(params[0], params[1], shape)
        else:
            # raw_random casts the bounds (or mean and deviation) to the output dtype first
            low, high = (np.asarray(p, dtype=self.dtype) for p in params)
            value = (rng.uniform if self.kind == "uniform" else rng.normal)(low, high, shape)
        return [np.asarray(value, dtype=self.dtype)]

    def grad(self, inputs, output_grads, outputs):
        return [None] * len(inputs)          # samples are not differentiable in their parameters


class RandomStateSharedVariable:
    """`rv.rng`: the numpy RandomState a random variable draws from, with a shared variable's
    `get_value` / `set_value`. It lives outside the graph (the draw reads it when it runs), so it
    cannot itself be a function input, output or update target."""

    def __init__(self, value: np.random.RandomState, name=None):
        self.name = name
        self._value = _check_state(value)

    def get_value(self, borrow=False, return_internal_type=False) -> np.random.RandomState:
        """The generator (`borrow=True`: the one draws advance in place; else a copy)."""
        return self._value if borrow else copy.deepcopy(self._value)

    def set_value(self, value, borrow=False) -> None:
        """Draw from `value` from now on (a copy of it unless `borrow=True`)."""
        value = _check_state(value)
        self._value = value if borrow else copy.deepcopy(value)

    value = property(lambda self: self.get_value(borrow=True),
                     lambda self, v: self.set_value(v, borrow=True))     # Theano 0.x's spelling

    def __repr__(self):
        return self.name if self.name is not None else "<RandomStateSharedVariable>"


def _check_state(value):
    if not isinstance(value, np.random.RandomState):
        raise TypeError(f"a random variable's rng holds a numpy.random.RandomState, got {type(value).__name__}")
    return value


class _Stream:
    """One random variable's generator, shared by every graph the draw is in (a pickled function
    carries a copy of its state)."""

    def __init__(self, seed: int):
        self.uid = next(_UIDS)
        self.rng = RandomStateSharedVariable(np.random.RandomState(seed))


class RandomStreams:
    """Theano's `RandomStreams(seed)`: `uniform`, `normal` and `binomial` variables of a given size.

    `state_updates` lists (rv.rng, rv) for every variable made, in order, as Theano's lists
    (rng shared variable, its update); `rv.rng` and `rv.update` are set on each variable."""

    def __init__(self, seed: int | None = None):
        self.default_instance_seed = seed
        self.gen_seedgen = np.random.RandomState(seed)
        self.state_updates: list = []

    def seed(self, seed: int | None = None) -> None:
        """Reseed every variable made so far, in order, from `RandomState(seed).randint(2**30)`
        (the constructor's seed when None); variables made later still follow the constructor's."""
        seedgen = np.random.RandomState(self.default_instance_seed if seed is None else seed)
        for rng, _ in self.state_updates:
            rng.set_value(np.random.RandomState(int(seedgen.randint(2**30))), borrow=True)

    def updates(self) -> list:
        """Theano's list of (generator, update) pairs; gencomp's draws advance them themselves."""
        return list(self.state_updates)

    @property
    def rstate(self):
        """The master generator's state (MRG_RandomStreams' name: gencomp aliases it to this class,
        so copying `rstate` between streams, as Theano's tutorial does, copies it)."""
        return self.gen_seedgen.get_state()

    @rstate.setter
    def rstate(self, state):
        self.gen_seedgen.set_state(state)

    def __getitem__(self, rng):
        return rng.get_value(borrow=True)

    def __setitem__(self, rng, value):
        rng.set_value(value, borrow=True)

    def _draw(self, kind, size, ndim, dtype, params):
        from ..config import config
        from .math import _shape_entries

        entries = _shape_entries(size) if size is not None else None
        if entries is None:
            raise TypeError(f"random {kind}: give size= (a tuple, or x.shape)")
        if ndim is not None and ndim != len(entries):
            raise ValueError(f"random {kind}: ndim={ndim} but size has {len(entries)} entries")
        dtype = dtypes.canonical(config.floatX if dtype in (None, "floatX") else dtype)
        stream = _Stream(int(self.gen_seedgen.randint(2**30)))
        out = RandomDraw(kind, dtype, len(entries), stream)(*entries, *params)
        out.rng, out.update = stream.rng, (stream.rng, out)
        self.state_updates.append(out.update)
        return out

    def uniform(self, size=None, low=0.0, high=1.0, ndim=None, dtype=None):
        return self._draw("uniform", size, ndim, dtype, (low, high))

    def normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None):
        return self._draw("normal", size, ndim, dtype, (avg, std))

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64", prob=None):
        return self._draw("binomial", size, ndim, dtype, (n, p if prob is None else prob))


MRG_RandomStreams = RandomStreams      # theano.sandbox.rng_mrg's name, for ported programs
