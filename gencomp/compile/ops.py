"""theano.compile.ops for ported programs: `as_op` (a Python function as an Op) and its class."""

from ..tensor.theano_op import FromFunctionOp, as_op

__all__ = ["FromFunctionOp", "as_op"]
