"""Test values (Theano's config.compute_test_value): each node's value is computed as it is built.

With the flag on, every node made by applying an op (Op.__call__) computes `out.tag.test_value`
from its inputs' test values through the op's numpy `perform`, so a shape or type error is
raised at the line of user code that builds the bad node, not later inside function().
"""

from __future__ import annotations

import warnings

import numpy as np

from .basic import Constant

MODES = ("off", "ignore", "warn", "raise")
_MISSING = object()


def test_value(var):
    """The test value of `var`: a constant's data, a shared variable's value, or tag.test_value."""
    if isinstance(var, Constant):
        return var.data
    if var.owner is None and hasattr(var, "get_value"):
        return var.get_value(borrow=True)
    value = getattr(var.tag, "test_value", _MISSING)
    if value is _MISSING:
        raise AttributeError(f"{var!r} has no test value")
    return value


def compute(node, mode: str) -> None:
    """Set the test values of `node`'s outputs; `mode` says what a missing input value does."""
    values = []
    for var in node.inputs:
        try:
            values.append(test_value(var))
        except AttributeError:
            if var.owner is not None:
                return      # built while the flag was off, or a compiler's copy: nothing to check
            message = (f"input {var!r} of {node.op} has no test value: set {var.name or 'it'}.tag.test_value "
                       f"= an array, or config.compute_test_value = 'off'")
            if mode == "raise":
                raise ValueError(message) from None
            if mode == "warn":
                warnings.warn(message, stacklevel=4)
            return
    try:
        if hasattr(node.op, "scalar"):          # an Elemwise: the types decide broadcasting
            from ..reference import check_broadcast     # (lazy: the reference evaluator sits above graph/)

            check_broadcast(node, values)
        results = node.op.perform(node, values)
    except Exception as error:
        shapes = ", ".join(str(np.shape(v)) for v in values)
        error.add_note(f"gencomp: raised while computing the test value of {node.op} on inputs of shapes "
                       f"{shapes} (config.compute_test_value={mode!r})")
        raise
    for out, value in zip(node.outputs, results):
        out.tag.test_value = np.asarray(value, dtype=out.dtype)
