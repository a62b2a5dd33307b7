"""Theano's Op and Apply for programs that extend it in Python (theano.Op, theano.Apply): the
"Extending Theano" tutorial's perform(node, inputs, output_storage), itypes / otypes, __props__ and
grad(inputs, output_grads), on gencomp's graph. Such an op runs its perform on the host, between the
compiled segments of a function (it has no C form); its gradient is whatever its grad builds."""

from __future__ import annotations

import inspect
import itertools

import numpy as np

from ..graph import Apply as _Apply
from ..graph import Op as _Op
from ..graph import Variable
from .variable import as_tensor_variable

_UNNAMED = itertools.count()       # ops without __props__, numbered in the order a program makes them


def _arity(fn) -> int:
    return len([p for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty])


class Apply(_Apply):
    """theano.Apply(op, inputs, outputs): the outputs given as variables (`[x.type()]`, Theano's
    spelling) or as types (gencomp's)."""

    def __init__(self, op, inputs, outputs):
        super().__init__(op, inputs, [o.type if isinstance(o, Variable) else o for o in outputs])
        for mine, given in zip(self.outputs, outputs):
            if isinstance(given, Variable) and given.name is not None:
                mine.name = given.name


class Op(_Op):
    """theano.Op: subclasses give `make_node` (or `itypes` and `otypes`) and Theano's
    `perform(node, inputs, output_storage)`, which stores output k in `output_storage[k][0]`;
    optionally `grad(inputs, output_grads)` and `__props__`, the attributes that make two instances
    equal (without it each instance is an op of its own, as in Theano)."""

    __props__ = None
    itypes = None
    otypes = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        perform = cls.__dict__.get("perform")
        if perform is not None and _arity(perform) >= 4:         # self, node, inputs, output_storage
            def run(self, node, inputs, _perform=perform):
                storage = [[None] for _ in node.outputs]
                _perform(self, node, list(inputs), storage)
                for k, (cell, out) in enumerate(zip(storage, node.outputs)):
                    if cell[0] is None:
                        raise ValueError(f"{self}.perform stored nothing in output_storage[{k}][0]")
                return [np.asarray(cell[0], dtype=out.dtype) for cell, out in zip(storage, node.outputs)]

            run.__doc__ = perform.__doc__
            cls.perform = run
        grad = cls.__dict__.get("grad")
        if grad is not None and _arity(grad) == 3:                # self, inputs, output_grads
            def differentiate(self, inputs, output_grads, outputs, _grad=grad):
                return list(_grad(self, list(inputs), list(output_grads)))

            differentiate.__doc__ = grad.__doc__
            cls.grad = differentiate

    def make_node(self, *inputs):
        if self.itypes is None or self.otypes is None:
            raise NotImplementedError(f"{type(self).__name__}: define make_node, or itypes and otypes")
        if len(inputs) != len(self.itypes):
            raise TypeError(f"{type(self).__name__} takes {len(self.itypes)} inputs, got {len(inputs)}")
        inputs = [as_tensor_variable(i) for i in inputs]
        for k, (var, want) in enumerate(zip(inputs, self.itypes)):
            if var.type != want:
                raise TypeError(f"{type(self).__name__}: input {k} must be of type {want}, got {var.type}")
        return Apply(self, inputs, list(self.otypes))

    def perform(self, node, inputs):
        raise NotImplementedError(f"{type(self).__name__} has no perform (gencomp runs Python ops through "
                                  f"it; Theano's c_code is not used)")

    def signature(self):
        name = f"{type(self).__module__}.{type(self).__qualname__}"
        props = type(self).__props__
        if props is None:
            number = self.__dict__.get("_number")
            if number is None:
                number = self.__dict__["_number"] = next(_UNNAMED)
            return f"{name}{{#{number}}}"
        return f"{name}{{{', '.join(f'{p}={getattr(self, p)!r}' for p in props)}}}"

    def __str__(self):          # Theano's: DoubleOp, or DoubleOp{factor=2}
        props = type(self).__props__ or ()
        values = ", ".join(f"{p}={getattr(self, p)!r}" for p in props)
        return type(self).__name__ + (f"{{{values}}}" if values else "")


class FromFunctionOp(Op):
    """The op `as_op` makes of a Python function of numpy arrays (Theano's FromFunctionOp)."""

    def __init__(self, fn, itypes, otypes, infer_shape=None):
        self.fn, self.itypes, self.otypes, self.infer_shape = fn, list(itypes), list(otypes), infer_shape

    def perform(self, node, inputs, output_storage):
        outs = self.fn(*inputs)
        if not isinstance(outs, (list, tuple)):
            outs = (outs,)
        if len(outs) != len(output_storage):
            raise ValueError(f"{self}: {self.fn.__name__} returned {len(outs)} values for "
                             f"{len(output_storage)} outputs")
        for cell, value in zip(output_storage, outs):
            cell[0] = value

    def grad(self, inputs, output_grads):
        raise NotImplementedError(f"{self} has no gradient (as_op wraps a numpy function, as in Theano)")

    def signature(self):
        return f"FromFunctionOp{{{self.fn.__module__}.{self.fn.__qualname__}}}"

    def __str__(self):
        return f"FromFunctionOp{{{self.fn.__name__}}}"


def as_op(itypes, otypes, infer_shape=None):
    """Decorator: a Python function of numpy arrays as an op of those input and output types
    (theano.compile.ops.as_op); the function runs on the host when the compiled function gets there."""
    itypes, otypes = list(itypes), list(otypes)

    def make(fn):
        return FromFunctionOp(fn, itypes, otypes, infer_shape)
    return make
