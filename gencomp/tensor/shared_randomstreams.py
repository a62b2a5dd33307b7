"""Random numbers in graphs: Theano's RandomStreams (uniform, normal, binomial, random_integers, choice,
poisson, permutation, multinomial, shuffle_row_elements), drawing Theano's numbers.

As in Theano 1.0 (theano/tensor/shared_randomstreams.py and raw_random.py), a RandomStreams keeps
a master `numpy.random.RandomState(seed)`; each new random variable gets its own RandomState,
seeded with `master.randint(2**30)`, held by a shared variable `rv.rng`, and every call of a
compiled function draws from it with `RandomState.uniform(low, high, size)`, `normal(avg, std,
size)` or `binomial(n, p, size)`, cast to the variable's dtype. So a program seeded like its
Theano original gets the same numbers. A variable used twice in one graph is one draw.

The other draws follow raw_random's helpers call for call: random_integers draws one element at a
time with `randint(low, high + 1)` (numpy's `random_integers(low, high)`), choice is one
`RandomState.choice(a, size, replace, p)`, poisson one `poisson(lam, size)`, permutation one
`permutation(n)` per row, multinomial one `multinomial(n, pvals_row)` per row (with raw_random's
nudge of rows summing a little over 1). They run as host steps (numpy, between the C segments).
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


_NDIM_ADDED = {"permutation": 1, "multinomial": 1}     # a row per drawn element (raw_random's ndim_added)


class RandomDraw(Op):
    """A sample of `kind` with the given size and (broadcasting) parameters; not a pure function.

    `ndim` is the number of size entries; permutation and multinomial add one dimension (a row)."""

    stateful = True            # never constant-folded: each call draws anew

    def __init__(self, kind: str, dtype: str, ndim: int, stream):
        self.kind, self.dtype, self.ndim, self.stream = kind, dtype, int(ndim), stream
        self.ndim_added = _NDIM_ADDED.get(kind, 0)

    def signature(self):
        # a number unique to the variable names the draw, so two draws never merge; the seed stays
        # out of it, so a program re-run with another seed finds its compiled module in the cache
        return self._text(self.stream.uid)

    def key_signature(self, rank) -> str:
        """The signature in a module's cache key: the draw's id as its rank in the graph (see
        graph/hashing.py canonical_lines); the module gets the sample from the host."""
        return self._text(f"#{rank(('random', self.stream.uid))}")

    def _text(self, ident) -> str:
        return f"Random{{{self.kind},{self.dtype},{self.ndim},id={ident}}}"

    def __reduce__(self):
        return RandomDraw, (self.kind, self.dtype, self.ndim, self.stream)

    def make_node(self, *inputs):
        size, params = inputs[:self.ndim], [as_tensor_variable(p) for p in inputs[self.ndim:]]
        size = [as_tensor_variable(s) for s in size]
        if any(s.ndim != 0 or not dtypes.is_integer(s.dtype) for s in size):
            raise TypeError(f"random {self.kind}: size entries must be integer scalars")
        if self.kind in ("uniform", "normal", "binomial", "random_integers") \
                and any(p.ndim > self.ndim for p in params):
            raise TypeError(f"random {self.kind}: a parameter has more dimensions than the size")
        out_ndim = self.ndim + self.ndim_added
        return Apply(self, [*size, *params], [TensorType(self.dtype, (False,) * out_ndim)])

    def perform(self, node, inputs):
        shape = tuple(int(s) for s in inputs[:self.ndim])
        params = inputs[self.ndim:]
        rng = self.stream.rng.get_value(borrow=True)
        if self.kind in _HELPERS:
            value = np.asarray(_HELPERS[self.kind](rng, shape, *params))
            out_ndim = self.ndim + self.ndim_added
            if value.ndim == 0 and out_ndim > 0:                    # numpy gave a scalar for size ()
                value = value.reshape((1,) * out_ndim)
            if value.ndim != out_ndim or value.shape[:self.ndim] != shape:
                raise ValueError(f"random {self.kind}: the draw has shape {value.shape}, the size asked "
                                 f"for {shape}" + (" plus one row dimension" if self.ndim_added else "")
                                 + " (do the parameters' shapes broadcast to the size?)")
            return [np.asarray(value, dtype=self.dtype)]
        if self.kind == "binomial":
            value = rng.binomial(params[0], params[1], shape)
        else:
            # raw_random casts the bounds (or mean and deviation) to the output dtype first
            low, high = (np.asarray(p, dtype=self.dtype) for p in params)
            value = (rng.uniform if self.kind == "uniform" else rng.normal)(low, high, shape)
        return [np.asarray(value, dtype=self.dtype)]

    def grad(self, inputs, output_grads, outputs):
        return [None] * len(inputs)          # samples are not differentiable in their parameters


def _pad(value, ndim, what, kind):
    """`value` with leading length-1 dimensions up to `ndim` (raw_random's reshape before looping)."""
    if value.ndim > ndim:
        raise ValueError(f"random {kind}: {what} has {value.ndim} dimensions, more than the size's {ndim}")
    return value.reshape((1,) * (ndim - value.ndim) + value.shape)


def _broadcast(value, shape, what, kind):
    try:
        return np.broadcast_to(value, shape)
    except ValueError:
        raise ValueError(f"random {kind}: {what} of shape {value.shape} does not broadcast to the size "
                         f"{shape[:len(shape)]}") from None


def _random_integers(rng, shape, low, high):
    """raw_random.random_integers_helper: one `randint(low, high + 1)` per element, in C order, into
    a float64 array (then cast to the variable's dtype, as Theano did)."""
    low = _broadcast(_pad(low, len(shape), "low", "random_integers"), shape, "low", "random_integers")
    high = _broadcast(_pad(high, len(shape), "high", "random_integers"), shape, "high", "random_integers")
    bad = np.argwhere(low > high)
    if bad.size:
        i = tuple(bad[0])
        raise ValueError(f"random_integers: low must not exceed high (both are inclusive), got low={low[i]} "
                         f"> high={high[i]} at {i}")
    out = np.ndarray(shape)
    for i in np.ndindex(*shape):
        out[i] = rng.randint(low=int(low[i]), high=int(high[i]) + 1)
    return out


def _choice(rng, shape, a, replace, p):
    """raw_random.choice_helper: `RandomState.choice(a, size, bool(replace), p or None)`."""
    if a.ndim > 1:
        raise ValueError(f"random choice: a must be a scalar or a vector, got {a.ndim} dimensions")
    if p.ndim != 1:
        raise ValueError(f"random choice: p must be a vector, got {p.ndim} dimensions")
    return rng.choice(a, shape if shape else None, bool(replace), p if p.size else None)


def _poisson(rng, shape, lam):
    return rng.poisson(lam, shape if shape else None)


def _permutation(rng, shape, n):
    """raw_random.permutation_helper: one `RandomState.permutation(n)` per row."""
    n = int(n.item())
    if n < 0:
        raise ValueError(f"random permutation: n must be >= 0, got {n}")
    out = np.empty(shape + (n,), dtype=np.int64)
    for i in np.ndindex(*shape):
        out[i] = rng.permutation(n)
    return out


def _multinomial(rng, shape, n, pvals):
    """raw_random.multinomial_helper: one `RandomState.multinomial(n, row)` per row of `pvals`
    (broadcast with `n` to the size), a row summing a little over 1 (or ending under 5e-5) scaled
    by 1 - 5e-5 first, as Theano did."""
    ndim = len(shape)
    n = _broadcast(_pad(n, ndim, "n", "multinomial"), shape, "n", "multinomial")
    pvals = _pad(pvals, ndim + 1, "pvals", "multinomial")
    pvals = _broadcast(pvals, shape + pvals.shape[-1:], "pvals", "multinomial")
    if pvals.size and pvals.min() < 0:
        raise ValueError("random multinomial: pvals has a negative probability")
    out = np.ndarray(shape + pvals.shape[-1:])
    for i in np.ndindex(*shape):
        row = pvals[i]
        total = np.sum(row)
        if 1.0 < total < 1.0 + 1e-5:          # numpy refuses rows whose sum goes over 1
            row = row * (1.0 - 5e-5)
            total = np.sum(row)
        elif row[-1] < 5e-5:
            row = row * (1.0 - 5e-5)
            total = np.sum(row)
        if not total <= 1.0:
            raise ValueError(f"random multinomial: a row of pvals sums to {total}, more than 1")
        out[i] = rng.multinomial(n=n[i], pvals=row.astype("float64"))
    return out


_HELPERS = {"random_integers": _random_integers, "choice": _choice, "poisson": _poisson,
            "permutation": _permutation, "multinomial": _multinomial}


class PermuteRowElements(Op):
    """Theano's permute_row_elements: out[..., i] = x[..., y[..., i]] (inverse: out[..., y[..., i]] =
    x[..., i]), the leading dimensions of x and y broadcasting."""

    def __init__(self, inverse: bool = False):
        self.inverse = bool(inverse)

    def signature(self):
        return f"PermuteRowElements{{inverse={int(self.inverse)}}}"

    def __reduce__(self):
        return PermuteRowElements, (self.inverse,)

    def make_node(self, x, y):
        x, y = as_tensor_variable(x), as_tensor_variable(y)
        if not dtypes.is_integer(y.dtype):
            raise TypeError(f"permute_row_elements: the permutation must be integers, got {y.dtype}")
        if x.ndim < 1 or y.ndim < 1:
            raise TypeError("permute_row_elements: the input and the permutation need at least one dimension")
        ndim = max(x.ndim, y.ndim)
        xb = (True,) * (ndim - x.ndim) + tuple(x.broadcastable)
        yb = (True,) * (ndim - y.ndim) + tuple(y.broadcastable)
        bcast = tuple(a and b for a, b in zip(xb[:-1], yb[:-1])) + (xb[-1],)
        return Apply(self, [x, y], [TensorType(x.dtype, bcast)])

    def perform(self, node, inputs):
        x, y = inputs
        if x.shape[-1] != y.shape[-1]:
            raise ValueError(f"permute_row_elements: rows of length {x.shape[-1]} and a permutation of "
                             f"length {y.shape[-1]}")
        try:
            lead = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
        except ValueError:
            raise ValueError(f"permute_row_elements: shapes {x.shape} and {y.shape} do not broadcast") from None
        x = np.broadcast_to(x, lead + x.shape[-1:])
        y = np.broadcast_to(y, lead + y.shape[-1:]).astype(np.intp)
        if y.size and (y.min() < -x.shape[-1] or y.max() >= x.shape[-1]):
            raise IndexError(f"permute_row_elements: an index is out of bounds for rows of length {x.shape[-1]}")
        if not self.inverse:
            return [np.ascontiguousarray(np.take_along_axis(x, y, axis=-1))]
        out = np.empty(x.shape, dtype=x.dtype)
        np.put_along_axis(out, y, x, axis=-1)
        return [out]

    def grad(self, inputs, output_grads, outputs):
        from . import math as tm

        x, y = inputs
        gx = PermuteRowElements(not self.inverse)(output_grads[0], y)
        lead = gx.ndim - x.ndim
        if lead:
            gx = tm.sum(gx, axis=tuple(range(lead)))
        axes = tuple(d for d, b in enumerate(x.broadcastable) if b and not gx.broadcastable[d])
        if axes:
            gx = tm.sum(gx, axis=axes, keepdims=True)
        return [gx, None]


def permute_row_elements(x, y, inverse=0):
    """Theano's T.permute_row_elements(x, y, inverse=0): every row (last axis) of x reordered by y."""
    return PermuteRowElements(bool(inverse))(x, y)


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

    def _size(self, kind, size, ndim, params=()):
        """raw_random's _infer_ndim_bcast: the size entries for a draw of `kind`. A tuple may hold ints,
        integer scalars and -1 (that dimension of the parameters, aligned on the right); None means
        the parameters' broadcast shape; a symbolic vector needs a length the graph decides or ndim."""
        from ..graph import Variable
        from .math import _shape_entries

        if size is None:
            if not params:
                raise TypeError(f"random {kind}: give size= (a tuple, or x.shape): it cannot be "
                                f"inferred without parameters")
            template = params[0]
            for p in params[1:]:
                template = template + p
            entries = [template.shape[i] for i in range(template.ndim)]
        elif isinstance(size, Variable) and size.ndim == 1:
            if not dtypes.is_integer(size.dtype):
                raise TypeError(f"random {kind}: size must be an integer vector, got {size.dtype}")
            try:
                entries = _shape_entries(size)
            except TypeError:
                if ndim is None:
                    raise TypeError(f"random {kind}: the length of size={size!r} is not known from the graph;"
                                    f" give ndim=") from None
                entries = [size[i] for i in range(int(ndim))]
        elif isinstance(size, (list, tuple)):
            entries = []
            for i, s in enumerate(size):
                if isinstance(s, Variable):
                    if s.ndim != 0 or not dtypes.is_integer(s.dtype):
                        raise TypeError(f"random {kind}: size entries must be integer scalars, got {s.type}")
                    entries.append(s)
                elif isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
                    raise TypeError(f"random {kind}: size entries must be integers, got {s!r}")
                elif s >= 0:
                    entries.append(int(s))
                elif s == -1:
                    entries.append(self._size_from_params(kind, i, len(size), params))
                else:
                    raise ValueError(f"random {kind}: size entry {s} is negative (only -1, the "
                                     f"parameters' length there, is allowed)")
        elif isinstance(size, (int, np.integer)) and not isinstance(size, (bool, np.bool_)):
            entries = [int(size)]
        else:
            raise TypeError(f"random {kind}: size must be a tuple of ints or integer scalars, or an integer "
                            f"vector such as x.shape; got {size!r}")
        if ndim is not None and int(ndim) != len(entries):
            raise ValueError(f"random {kind}: ndim={ndim} but size has {len(entries)} entries")
        for what, p in zip(("the first", "the second", "the third"), params):
            if p.ndim > len(entries):
                raise ValueError(f"random {kind}: {what} parameter has {p.ndim} dimensions, more than the "
                                 f"size's {len(entries)}")
        return entries

    @staticmethod
    def _size_from_params(kind, i, ndim, params):
        for p in params:
            if i >= ndim - p.ndim and not p.broadcastable[i + p.ndim - ndim]:
                return p.shape[i + p.ndim - ndim]
        if not any(i >= ndim - p.ndim for p in params):
            raise ValueError(f"random {kind}: size entry -1 at position {i} lines up with no dimension of "
                             f"the parameters")
        return 1

    def _new(self, kind, entries, dtype, params):
        dtype = dtypes.canonical(dtype)
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

    def random_integers(self, size=None, low=0, high=1, ndim=None, dtype="int64"):
        """Integers between low and high, both inclusive (numpy's `randint(low, high + 1)`, one element
        at a time as Theano drew them); size None: the broadcast shape of low and high."""
        low, high = as_tensor_variable(low), as_tensor_variable(high)
        for name, v in (("low", low), ("high", high)):
            if not dtypes.is_integer(v.dtype):
                raise TypeError(f"random_integers: {name} must be an integer, got dtype {v.dtype}")
        return self._new("random_integers", self._size("random_integers", size, ndim, (low, high)),
                         dtype, (low, high))

    def choice(self, size=None, a=2, replace=True, p=None, ndim=None, dtype="int64"):
        """Values of the vector `a` (or of range(a) for an integer scalar a) drawn with or without
        replacement, with probabilities p (a vector; None: uniform): `RandomState.choice`."""
        a = as_tensor_variable(a)
        if a.ndim > 1:
            raise ValueError(f"choice: a must be a scalar or a vector, got a {a.ndim}-d tensor")
        if a.ndim == 0 and not dtypes.is_integer(a.dtype):
            raise TypeError(f"choice: a scalar a is the number of values to choose from, an integer; got {a.dtype}")
        if isinstance(replace, (bool, np.bool_)):
            replace = as_tensor_variable(np.int8(replace))
        else:
            replace = as_tensor_variable(replace)
            if replace.ndim != 0:
                raise TypeError(f"choice: replace must be a boolean scalar, got a {replace.ndim}-d tensor")
        p = as_tensor_variable(np.zeros(0) if p is None else p)   # None travels as an empty vector
        if p.ndim != 1:
            raise ValueError(f"choice: p must be a vector of probabilities, got a {p.ndim}-d tensor")
        return self._new("choice", self._size("choice", size, ndim), dtype, (a, replace, p))

    def poisson(self, size=None, lam=None, ndim=None, dtype="int64"):
        """Counts drawn from Poisson distributions of mean lam (`RandomState.poisson(lam, size)`)."""
        if lam is None:
            raise TypeError("poisson: give lam= (the expected count, >= 0); Theano's RandomStreams has no "
                            "default for it either")
        lam = as_tensor_variable(lam)
        entries = self._size("poisson", size, ndim)
        if lam.ndim > len(entries):
            raise ValueError(f"poisson: lam has {lam.ndim} dimensions, more than the size's {len(entries)}")
        return self._new("poisson", entries, dtype, (lam,))

    def permutation(self, size=None, n=1, ndim=None, dtype="int64"):
        """Permutations of range(n), one per element of size: the result has shape size + (n,)
        (size None or (): one permutation, a vector)."""
        n = as_tensor_variable(n)
        if n.ndim != 0 or not dtypes.is_integer(n.dtype):
            raise TypeError(f"permutation: n must be an integer scalar, got {n.type}")
        if size is None or (isinstance(size, (list, tuple)) and len(size) == 0):
            if not (ndim is None or ndim == 1):
                raise TypeError("permutation: one permutation (no size) is a vector, but ndim="
                                f"{ndim} was asked for")
            entries = []
        else:
            entries = self._size("permutation", size, ndim)
        return self._new("permutation", entries, dtype, (n,))

    def multinomial(self, size=None, n=1, pvals=(0.5, 0.5), ndim=None, dtype="int64"):
        """Counts of n draws from the distributions in the rows (last axis) of pvals, one per element
        of size: shape size + (len(row),); size None: the broadcast shape of n and pvals[..., 0]."""
        n, pvals = as_tensor_variable(n), as_tensor_variable(list(pvals) if isinstance(pvals, tuple) else pvals)
        if not dtypes.is_integer(n.dtype):
            raise TypeError(f"multinomial: n (the number of draws) must be an integer, got dtype {n.dtype}")
        if pvals.ndim < 1:
            raise ValueError("multinomial: pvals must hold at least one distribution (a vector)")
        first = pvals[(Ellipsis, 0)] if pvals.ndim > 1 else pvals[0]
        entries = self._size("multinomial", size, ndim, (n, first))
        return self._new("multinomial", entries, dtype, (n, pvals))

    def shuffle_row_elements(self, input):
        """`input` with every row (last axis) shuffled: a permutation draw per row, which the result
        keeps as `.permutation`."""
        input = as_tensor_variable(input)
        if input.ndim < 1:
            raise TypeError("shuffle_row_elements: the input needs at least one dimension")
        perm = self.permutation(size=input.shape[:-1], n=input.shape[-1], ndim=input.ndim - 1)
        shuffled = permute_row_elements(input, perm)
        shuffled.permutation = perm
        return shuffled


MRG_RandomStreams = RandomStreams      # theano.sandbox.rng_mrg's name, for ported programs
