"""Products through BLAS: dot and matmul run numpy's own BLAS (no hand-written GEMM)."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..graph import Apply, Op
from .type import TensorType


def _cblas() -> bool:
    """Whether numpy's BLAS library exports the CBLAS routines a compiled entry point calls."""
    from ..cblas import routine_addresses

    return routine_addresses() is not None


def _as(x):
    from .variable import as_tensor_variable

    return as_tensor_variable(x)


class Dot(Op):
    """numpy.dot for vectors and matrices; `batched` gives numpy.matmul over leading batch dims."""

    fresh_outputs = True      # perform returns a new array (never a view): its buffer may be reused

    def __init__(self, batched: bool = False):
        self.batched = bool(batched)

    def family(self, node) -> str:
        """'blas' for float vectors and matrices of one dtype (a product every backend runs as one
        call: CBLAS in C, the gemm kernel on the GPU), else 'host'."""
        dtype = node.outputs[0].dtype
        same = all(i.dtype == dtype for i in node.inputs)
        return "blas" if not self.batched and same and dtype in ("float32", "float64") else "host"

    def lowering(self, node) -> str:
        """The family, where numpy's BLAS exports the CBLAS routines the C call needs."""
        return self.family(node) if _cblas() else "host"

    def signature(self):
        return "MatMul" if self.batched else "Dot"

    def __reduce__(self):
        return Dot, (self.batched,)

    def make_node(self, x, y):
        x, y = _as(x), _as(y)
        if dtypes.kind(x.dtype) == "b" or dtypes.kind(y.dtype) == "b":
            raise TypeError("dot of boolean tensors is not supported; cast them first")
        if not self.batched and (x.ndim > 2 or y.ndim > 2 or x.ndim == 0 or y.ndim == 0):
            raise TypeError(f"dot takes vectors and matrices, got {x.ndim}-d and {y.ndim}-d (use matmul "
                            f"for batches, or * for scalars)")
        if self.batched and (x.ndim < 1 or y.ndim < 1):
            raise TypeError("matmul does not take scalars; use *")
        dtype = np.result_type(x.dtype, y.dtype).name
        shape = np.matmul(np.zeros([1 if b else 2 for b in x.broadcastable]),
                          np.zeros([1 if b else 2 for b in y.broadcastable])).shape if self.batched else None
        if self.batched:       # stand-in lengths are 2, so a length 1 comes from a broadcastable dim
            bcast = tuple(s == 1 for s in shape)
        else:
            bcast = tuple(x.broadcastable[:-1]) + tuple(y.broadcastable[1:] if y.ndim == 2 else ())
        return Apply(self, [x, y], [TensorType(dtype, bcast)])

    def perform(self, node, inputs):
        x, y = inputs
        dtype = node.outputs[0].dtype
        x, y = x.astype(dtype, copy=False), y.astype(dtype, copy=False)
        try:
            out = np.matmul(x, y) if self.batched else np.dot(x, y)
        except ValueError as exc:
            raise ValueError(f"{'matmul' if self.batched else 'dot'}: shapes {x.shape} and {y.shape} do "
                             f"not align ({exc})") from None
        return [np.asarray(out, dtype=dtype)]

    def grad(self, inputs, output_grads, outputs):
        from .math import outer

        x, y = inputs
        (g,) = output_grads
        if not self.batched:
            if x.ndim == 1 and y.ndim == 1:
                return [g * y, g * x]
            if x.ndim == 2 and y.ndim == 1:
                return [outer(g, y), dot(x.T, g)]
            if x.ndim == 1 and y.ndim == 2:
                return [dot(y, g), outer(x, g)]
            return [dot(g, y.T), dot(x.T, g)]
        return _matmul_grad(x, y, g)


class Gemm(Op):
    """beta * C + alpha * dot(A, B) for matrices: what `W - lr * dot(A, B)` becomes after rewriting.

    In a compiled entry point one BLAS call accumulates into a copy of C, or into C itself when
    nothing reads C afterwards (templates/c/blas.h.j2); `perform` is the numpy reference.
    """

    returns_view = False
    fresh_outputs = True
    inplace_input = 0         # the runtime may accumulate into C's own buffer (see lower.py)

    def __init__(self, alpha: float, beta: float = 1.0):
        self.alpha, self.beta = float(alpha), float(beta)

    def family(self, node) -> str:
        return "blas"          # make_node takes float matrices of one dtype only

    def lowering(self, node) -> str:
        return self.family(node) if _cblas() else "host"

    def signature(self):
        return f"Gemm{{alpha={self.alpha!r}, beta={self.beta!r}}}"

    def __reduce__(self):
        return Gemm, (self.alpha, self.beta)

    def make_node(self, c, a, b):
        c, a, b = _as(c), _as(a), _as(b)
        if not (c.ndim == a.ndim == b.ndim == 2) or len({c.dtype, a.dtype, b.dtype}) != 1 \
                or c.dtype not in ("float32", "float64"):
            raise TypeError(f"Gemm takes three float matrices of one dtype, got {c.type}, {a.type}, {b.type}")
        bcast = (c.broadcastable[0] and a.broadcastable[0], c.broadcastable[1] and b.broadcastable[1])
        return Apply(self, [c, a, b], [TensorType(c.dtype, bcast)])

    def perform(self, node, inputs):
        c, a, b = inputs
        (product,) = Dot().perform(node, [a, b])
        check_accumulator(node, c.shape, product.shape)
        return [np.asarray(self.beta * c + self.alpha * product, dtype=node.outputs[0].dtype)]


def check_accumulator(node, c_shape, shape) -> None:
    """C must have the product's shape, except where its type is broadcastable (length 1 there)."""
    bcast = node.inputs[0].broadcastable
    if any(n != m and not (b and n == 1) for n, m, b in zip(c_shape, shape, bcast)):
        raise ValueError(f"shape mismatch in C + alpha * dot(A, B): C has shape {c_shape} and type "
                         f"{node.inputs[0].type}, the product has shape {shape}")


def _matmul_grad(x, y, g):
    """Gradients of matmul with vectors promoted to matrices and broadcast batch dims summed back."""
    from .math import dimshuffle

    x2 = dimshuffle(x, ("x", 0)) if x.ndim == 1 else x
    y2 = dimshuffle(y, (0, "x")) if y.ndim == 1 else y
    g2 = g
    if x.ndim == 1:
        g2 = dimshuffle(g2, tuple(range(g2.ndim - (0 if y.ndim == 1 else 1))) + ("x",)
                        + ((g2.ndim - 1,) if y.ndim != 1 else ()))
    if y.ndim == 1:
        g2 = dimshuffle(g2, tuple(range(g2.ndim)) + ("x",))

    def swap(t):
        return dimshuffle(t, tuple(range(t.ndim - 2)) + (t.ndim - 1, t.ndim - 2))

    gx, gy = _sum_to(matmul(g2, swap(y2)), x2), _sum_to(matmul(swap(x2), g2), y2)
    if x.ndim == 1:
        gx = dimshuffle(gx, (1,))
    if y.ndim == 1:
        gy = dimshuffle(gy, (0,))
    return [gx, gy]


def _sum_to(g, like):
    """`g` summed over the leading dims `like` lacks and the dims `like` broadcasts."""
    from .math import sum as sum_

    lead = g.ndim - like.ndim
    if lead:
        g = sum_(g, axis=tuple(range(lead)))
    axes = tuple(d for d in range(like.ndim) if like.broadcastable[d] and not g.broadcastable[d])
    return sum_(g, axis=axes, keepdims=True) if axes else g


def dot(x, y):
    """numpy.dot: inner product, matrix-vector or matrix-matrix product; a scalar operand multiplies.

    Beyond two dimensions, numpy's (and Theano's) dot sums the last axis of x with the
    second-to-last of y, tensordot(x, y, [[-1], [-2]]): not matmul, which instead pairs the
    leading axes of stacks; the two agree only while y has at most two dimensions."""
    x, y = _as(x), _as(y)
    if x.ndim == 0 or y.ndim == 0:
        return x * y
    if y.ndim > 2:
        return tensordot(x, y, [[x.ndim - 1], [y.ndim - 2]])
    if x.ndim > 2:
        return matmul(x, y)
    return Dot()(x, y)


def matmul(x, y):
    """numpy.matmul (the @ operator): batched over leading dimensions."""
    x, y = _as(x), _as(y)
    if x.ndim <= 2 and y.ndim <= 2:
        return Dot()(x, y) if x.ndim and y.ndim else Dot(True)(x, y)
    return Dot(True)(x, y)


def batched_dot(x, y):
    """Theano's batched_dot: the matrix products of matching entries of two stacks (matmul)."""
    return matmul(x, y)


def tensordot(a, b, axes=2):
    """numpy.tensordot: sum over `axes` (an int: the last n of a with the first n of b; or two lists),
    as one matrix product of the reshaped operands."""
    from .math import dimshuffle
    from .shape import reshape, shape_i

    a, b = _as(a), _as(b)
    if isinstance(axes, (int, np.integer)):
        a_axes, b_axes = list(range(a.ndim - int(axes), a.ndim)), list(range(int(axes)))
    else:
        a_axes, b_axes = ([int(v) % nd for v in np.atleast_1d(ax)] for ax, nd in zip(axes, (a.ndim, b.ndim)))
    if len(a_axes) != len(b_axes) or len(set(a_axes)) != len(a_axes) or len(set(b_axes)) != len(b_axes):
        raise ValueError(f"tensordot: axes {a_axes} and {b_axes} do not pair up")
    a_free = [d for d in range(a.ndim) if d not in a_axes]
    b_free = [d for d in range(b.ndim) if d not in b_axes]

    def size(var, dims):
        n = _as(np.int64(1))
        for d in dims:
            n = n * shape_i(var, d)
        return n

    a2 = reshape(dimshuffle(a, a_free + a_axes), (size(a, a_free), size(a, a_axes)))
    b2 = reshape(dimshuffle(b, b_axes + b_free), (size(b, b_axes), size(b, b_free)))
    out_shape = [shape_i(a, d) for d in a_free] + [shape_i(b, d) for d in b_free]
    product = dot(a2, b2)
    return reshape(product, out_shape) if out_shape else reshape(product, ())
