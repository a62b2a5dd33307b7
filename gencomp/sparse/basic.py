"""Sparse matrix types and ops (Theano's theano.sparse.basic) as host steps on scipy.sparse.

A SparseType is a format ('csc' or 'csr') and a dtype; values are scipy.sparse csc_matrix /
csr_matrix objects. Every op runs its scipy implementation between the C segments of a compiled
function (a host step) and in the reference evaluator alike. Gradients follow Theano: the
"structured" ones (dense_from_sparse, structured_dot, structured_add/mul, sp_sum with
sparse_grad=True) are nonzero only on the stored entries of the sparse argument; the others are
the full gradient, given in the sparse argument's own type.
"""

from __future__ import annotations


import numpy as np

try:
    import scipy.sparse as sp
except ImportError as exc:      # scipy is an optional extra
    raise ImportError("gencomp.sparse needs scipy: pip install 'gencomp[sparse]'") from exc

from .. import dtypes
from ..graph import Apply, Op, Variable
from ..sharedvar import SharedVariable
from ..tensor.type import TensorType
from ..tensor.variable import as_tensor_variable, is_weak

_FORMATS = {"csc": sp.csc_matrix, "csr": sp.csr_matrix}
all_dtypes = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float32", "float64", "complex64", "complex128"}      # Theano's sparse.all_dtypes


# ---- the type and its variables -------------------------------------------------------------------

class SparseType:
    """The type of a sparse matrix variable: its storage `format` ('csc' | 'csr') and `dtype`."""

    ndim = 2
    broadcastable = (False, False)

    def __init__(self, format, dtype=None):
        if format not in _FORMATS:
            raise TypeError(f"sparse format must be 'csc' or 'csr', got {format!r}")
        if dtype is None or dtype == "floatX":
            from ..config import config
            dtype = config.floatX
        self.format, self.dtype = format, dtypes.canonical(dtype)
        self.numpy_dtype = np.dtype(self.dtype)

    @property
    def variable_class(self):
        return SparseVariable

    def __call__(self, name=None):
        return SparseVariable(self, None, None, name)

    def __eq__(self, other):
        return type(other) is SparseType and (other.format, other.dtype) == (self.format, self.dtype)

    def __hash__(self):
        return hash(("sparse", self.format, self.dtype))

    def __reduce__(self):
        return SparseType, (self.format, self.dtype)

    def __repr__(self):
        return f"SparseType({self.format}, {self.dtype})"

    def signature(self) -> str:
        return f"{self.format}_matrix[{self.dtype}]"

    def filter(self, value, name: str, allow_downcast=None, floatX=None):
        """`value` as a scipy.sparse matrix of this format and dtype, or TypeError saying why.

        As Theano's SparseType.filter: any scipy.sparse matrix (or 2-d array) is converted to the
        format; its dtype must cast under numpy's 'safe' rule ('same_kind' with allow_downcast)."""
        if not sp.issparse(value):
            arr = np.asarray(value) if isinstance(value, (np.ndarray, list, tuple)) else None
            if arr is None or arr.ndim != 2 or arr.dtype.kind not in "biufc":
                raise TypeError(f"input {name!r} expects a scipy.sparse {self.format}_matrix of dtype "
                                f"{self.dtype}, got {type(value).__name__}; build one with "
                                f"scipy.sparse.{self.format}_matrix(value)")
            value = arr
        if value.ndim != 2:
            raise TypeError(f"input {name!r} expects a sparse matrix, got {value.ndim} dimensions")
        if value.dtype != self.numpy_dtype:
            rule = "same_kind" if allow_downcast else "safe"
            if not np.can_cast(value.dtype, self.numpy_dtype, rule):
                raise TypeError(f"input {name!r} expects a sparse matrix of dtype {self.dtype}, got dtype "
                                f"{value.dtype}, which does not cast to it under numpy's {rule!r} rule; "
                                f"convert it with .astype({self.dtype!r})")
        return _as_format(value, self.format, self.dtype)


def _as_format(value, format, dtype=None):
    """`value` (sparse or dense) as a scipy spmatrix of `format` (and `dtype`), a new object."""
    out = _FORMATS[format](value, dtype=dtype, copy=True)
    return out


class SparseVariable(Variable):
    """A symbolic sparse matrix: `+` and `*` with sparse or dense operands, `.T`, `.toarray()`."""

    dtype = property(lambda self: self.type.dtype)
    format = property(lambda self: self.type.format)
    ndim = property(lambda self: 2)
    broadcastable = property(lambda self: (False, False))
    T = property(lambda self: transpose(self))

    def toarray(self):
        return dense_from_sparse(self)

    def sum(self, axis=None, sparse_grad=False):
        return sp_sum(self, axis, sparse_grad)

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __neg__(self):
        return structured_mul(self, -1)

    def __sub__(self, other):
        return add(self, -other)

    def __reduce__(self):
        if self.owner is None:
            return SparseVariable, (self.type, None, None, self.name)
        return _rebuild_output, (self.owner.op, self.owner.inputs, self.index, self.name)


def _rebuild_output(op, inputs, index, name):
    out = op.make_node(*inputs).outputs[index]
    out.name = name
    return out


def matrix(format, name=None, dtype=None) -> SparseVariable:
    """A sparse matrix input of the given format ('csc' | 'csr') and dtype (config.floatX)."""
    return SparseType(format, dtype)(name)


def csc_matrix(name=None, dtype=None) -> SparseVariable:
    return matrix("csc", name, dtype)


def csr_matrix(name=None, dtype=None) -> SparseVariable:
    return matrix("csr", name, dtype)


def _is_sparse(var) -> bool:
    return isinstance(var, Variable) and isinstance(var.type, SparseType)


def as_sparse_variable(x) -> SparseVariable:
    """`x` if it is a sparse variable; TypeError otherwise (give a scipy matrix through shared())."""
    if _is_sparse(x):
        return x
    if sp.issparse(x):
        raise TypeError("a scipy.sparse matrix in a graph must be a shared variable: use "
                        "gencomp.sparse.shared(matrix)")
    raise TypeError(f"expected a sparse variable (gencomp.sparse.csc_matrix / csr_matrix), got {x!r}")


# ---- shared sparse matrices -----------------------------------------------------------------------

class SparseSharedVariable(SparseVariable, SharedVariable):
    """A shared variable holding a scipy.sparse matrix (Theano's theano.sparse.shared)."""

    def get_value(self, borrow=False, return_internal_type=False):
        """The scipy matrix (`borrow=True`: the stored one itself; else a copy)."""
        return self._value if borrow else self._value.copy()

    def set_value(self, value, borrow=False):
        with self._lock:
            self._value = self._convert(value, borrow)

    def host_value(self):
        return self._value

    def _convert(self, value, borrow):
        if borrow and sp.issparse(value) and value.format == self.format and value.dtype == self.type.numpy_dtype:
            return value
        return self.type.filter(value, self.name or "shared sparse variable", allow_downcast=True)

    def __reduce__(self):
        return _rebuild_shared, (self.type, self._value, self.name)

    def __repr__(self):
        return self.name if self.name is not None else f"<shared {self.type}>"


def _rebuild_shared(type_, value, name):
    return shared(value, name, borrow=True, format=type_.format)


def shared(value, name=None, borrow=False, format=None):
    """A SparseSharedVariable holding the scipy.sparse matrix `value` (in its own format, or `format`)."""
    if not sp.issparse(value):
        raise TypeError(f"gencomp.sparse.shared needs a scipy.sparse matrix, got {type(value).__name__}")
    format = format or (value.format if value.format in _FORMATS else "csr")
    var = SparseSharedVariable(SparseType(format, dtypes.canonical(value.dtype)), None, name)
    var._value = var._convert(value, borrow)
    return var


# ---- helpers --------------------------------------------------------------------------------------

def _sp(value, format):
    """A value for a sparse input as a scipy matrix of `format` (a function's fast path for
    ndarray arguments hands over dense arrays unconverted)."""
    if sp.issparse(value) and value.format == format:
        return value
    return _as_format(value, format)


def _coords(x):
    """(rows, cols) of the stored entries of csc/csr matrix x, in storage order."""
    counts = np.diff(x.indptr)
    major = np.repeat(np.arange(len(counts)), counts)
    return (x.indices, major) if x.format == "csc" else (major, x.indices)


def _result_dtype(x, y) -> str:
    """numpy's promotion, with Python scalars weak (sparse float32 * 2.0 stays float32)."""
    order = "biufc"
    if is_weak(y) and order.index(dtypes.kind(y.dtype)) <= order.index(dtypes.kind(x.dtype)):
        return x.dtype
    return np.result_type(x.dtype, y.dtype).name


def _with_pattern(x, data, dtype):
    """A copy of sparse x's structure holding `data`."""
    return _FORMATS[x.format]((np.asarray(data, dtype=dtype), x.indices.copy(), x.indptr.copy()), shape=x.shape)


def _check_shapes(what, a, b, ok):
    if not ok:
        raise ValueError(f"{what}: shapes {a.shape} and {b.shape} do not match")


class _SparseOp(Op):
    """Parameter-free ops: the class name is the signature (prefixed: sparse.Dot is not T.dot)."""

    def signature(self):
        return f"sparse.{type(self).__name__}"

    def __reduce__(self):
        return type(self), ()


# ---- construction and deconstruction --------------------------------------------------------------

class CSMProperties(_SparseOp):
    """(data, indices, indptr, shape) of a sparse matrix: its scipy arrays, indices as int32."""

    def make_node(self, x):
        x = as_sparse_variable(x)
        return Apply(self, [x], [TensorType(x.dtype, (False,)), TensorType("int32", (False,)),
                                 TensorType("int32", (False,)), TensorType("int32", (False,))])

    def perform(self, node, inputs):
        x = _sp(inputs[0], node.inputs[0].format)
        return [x.data.copy(), x.indices.astype(np.int32), x.indptr.astype(np.int32),
                np.asarray(x.shape, dtype=np.int32)]

    def grad(self, inputs, output_grads, outputs):
        data, indices, indptr, shape = outputs
        return [CSM(inputs[0].format)(output_grads[0], indices, indptr, shape)]


class CSM(Op):
    """A `format` sparse matrix from (data, indices, indptr, shape), as scipy builds it."""

    stateful = True     # keeps constant folding (which makes dense constants) away from sparse results

    def __init__(self, format):
        if format not in _FORMATS:
            raise TypeError(f"sparse format must be 'csc' or 'csr', got {format!r}")
        self.format = format

    def signature(self):
        return f"CSM{{{self.format}}}"

    def __reduce__(self):
        return CSM, (self.format,)

    def make_node(self, data, indices, indptr, shape):
        data, indices, indptr, shape = (as_tensor_variable(v) for v in (data, indices, indptr, shape))
        if data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1 or shape.ndim != 1:
            raise TypeError("CSM takes 1-d data, indices, indptr and shape")
        if not all(dtypes.is_integer(v.dtype) for v in (indices, indptr, shape)):
            raise TypeError("CSM: indices, indptr and shape must be integer vectors")
        return Apply(self, [data, indices, indptr, shape], [SparseType(self.format, data.dtype)])

    def perform(self, node, inputs):
        data, indices, indptr, shape = inputs
        if len(shape) != 2:
            raise ValueError(f"CSM: shape must have 2 entries, got {list(shape)}")
        if len(data) != len(indices):
            raise ValueError(f"CSM: {len(data)} data values for {len(indices)} indices")
        return [_FORMATS[self.format]((data.copy(), indices.copy(), indptr.copy()),
                                      shape=tuple(int(s) for s in shape))]

    def grad(self, inputs, output_grads, outputs):
        data, indices, indptr, shape = inputs
        return [CSMGrad()(data, indices, indptr, shape, output_grads[0]), None, None, None]


class CSMGrad(_SparseOp):
    """The gradient of CSM's data: the sparse gradient's values at the stored positions."""

    def make_node(self, data, indices, indptr, shape, g):
        data = as_tensor_variable(data)
        return Apply(self, [data, indices, indptr, shape, as_sparse_variable(g)], [TensorType(data.dtype, (False,))])

    def perform(self, node, inputs):
        data, indices, indptr, shape, g = inputs
        pattern = _FORMATS[node.inputs[4].format]((np.zeros(len(data)), indices, indptr), shape=tuple(shape))
        rows, cols = _coords(pattern)
        values = np.asarray(_sp(g, node.inputs[4].format).tocsr()[rows, cols]).ravel() if len(rows) else []
        return [np.asarray(values, dtype=data.dtype)]


def CSC(data, indices, indptr, shape):       # noqa: N802  (Theano's name)
    """A csc_matrix variable from its data, row indices, column pointers and shape."""
    return CSM("csc")(data, indices, indptr, shape)


def CSR(data, indices, indptr, shape):       # noqa: N802  (Theano's name)
    """A csr_matrix variable from its data, column indices, row pointers and shape."""
    return CSM("csr")(data, indices, indptr, shape)


_csm_properties = CSMProperties()


def csm_properties(x):
    """[data, indices, indptr, shape] of sparse x (indices, indptr and shape int32)."""
    return _csm_properties(x)


def csm_data(x):
    return csm_properties(x)[0]


def csm_indices(x):
    return csm_properties(x)[1]


def csm_indptr(x):
    return csm_properties(x)[2]


def csm_shape(x):
    return csm_properties(x)[3]


# ---- dense <-> sparse, transpose, format ----------------------------------------------------------

class DenseFromSparse(Op):
    """x.toarray(). Its gradient is structured (on x's stored entries) unless sparse_grad=False."""

    def __init__(self, sparse_grad=True):
        self.sparse_grad = bool(sparse_grad)

    def signature(self):
        return f"DenseFromSparse{{sparse_grad={self.sparse_grad}}}"

    def __reduce__(self):
        return DenseFromSparse, (self.sparse_grad,)

    def make_node(self, x):
        x = as_sparse_variable(x)
        return Apply(self, [x], [TensorType(x.dtype, (False, False))])

    def perform(self, node, inputs):
        return [_sp(inputs[0], node.inputs[0].format).toarray()]

    def grad(self, inputs, output_grads, outputs):
        (x,), (g,) = inputs, output_grads
        if self.sparse_grad:
            return [PatternValues()(x, g)]
        return [SparseFromDense(x.format)(g)]


class SparseFromDense(Op):
    """A dense matrix as a `format` sparse matrix (its nonzero entries stored)."""

    def __init__(self, format):
        if format not in _FORMATS:
            raise TypeError(f"sparse format must be 'csc' or 'csr', got {format!r}")
        self.format = format

    stateful = CSM.stateful

    def signature(self):
        return f"SparseFromDense{{{self.format}}}"

    def __reduce__(self):
        return SparseFromDense, (self.format,)

    def make_node(self, x):
        x = as_tensor_variable(x)
        if x.ndim != 2:
            raise TypeError(f"{self.format}_from_dense needs a matrix, got a {x.ndim}-d {x.type}")
        return Apply(self, [x], [SparseType(self.format, x.dtype)])

    def perform(self, node, inputs):
        return [_FORMATS[self.format](inputs[0])]

    def grad(self, inputs, output_grads, outputs):
        return [DenseFromSparse()(output_grads[0])]


class Transpose(_SparseOp):
    """x.T: a csc matrix transposes to csr and back, sharing no storage."""

    stateful = CSM.stateful

    def make_node(self, x):
        x = as_sparse_variable(x)
        return Apply(self, [x], [SparseType("csr" if x.format == "csc" else "csc", x.dtype)])

    def perform(self, node, inputs):
        return [_sp(inputs[0], node.inputs[0].format).T.copy()]

    def grad(self, inputs, output_grads, outputs):
        return [transpose(output_grads[0])]


class Convert(Op):
    """x stored in `format` (same values)."""

    stateful = CSM.stateful

    def __init__(self, format):
        self.format = format

    def signature(self):
        return f"sparse.Convert{{{self.format}}}"

    def __reduce__(self):
        return Convert, (self.format,)

    def make_node(self, x):
        x = as_sparse_variable(x)
        return Apply(self, [x], [SparseType(self.format, x.dtype)])

    def perform(self, node, inputs):
        return [_as_format(inputs[0], self.format)]

    def grad(self, inputs, output_grads, outputs):
        return [_in_format(output_grads[0], inputs[0].format)]


def _in_format(x, format):
    return x if x.format == format else Convert(format)(x)


def dense_from_sparse(x):
    """x as a dense matrix (gradient structured: nonzero only where x stores an entry)."""
    return DenseFromSparse()(x)


def csc_from_dense(x):
    return SparseFromDense("csc")(x)


def csr_from_dense(x):
    return SparseFromDense("csr")(x)


def transpose(x):
    return Transpose()(x)


# ---- values on a pattern (the structured gradients) -----------------------------------------------

class PatternValues(Op):
    """A sparse matrix with x's stored positions holding d's values there: d a matrix, a scalar,
    or a vector indexed by column (`by='col'`) or by row (`by='row'`)."""

    stateful = CSM.stateful

    def __init__(self, by="col"):
        self.by = by

    def signature(self):
        return f"PatternValues{{{self.by}}}"

    def __reduce__(self):
        return PatternValues, (self.by,)

    def make_node(self, x, d):
        x, d = as_sparse_variable(x), as_tensor_variable(d)
        if d.ndim > 2:
            raise TypeError(f"values for a sparse pattern must have at most 2 dimensions, got {d.type}")
        return Apply(self, [x, d], [SparseType(x.format, x.dtype)])

    def perform(self, node, inputs):
        x = _sp(inputs[0], node.inputs[0].format)
        return [_with_pattern(x, _values_at(x, inputs[1], self.by), x.dtype)]

    def grad(self, inputs, output_grads, outputs):
        x, d = inputs
        return [None, PatternSum(d.ndim, self.by)(x, output_grads[0], d)]


def _values_at(x, d, by):
    """d's value at each stored entry of x (d broadcast as PatternValues describes)."""
    rows, cols = _coords(x)
    d = np.asarray(d)
    if d.ndim == 0:
        return np.full(len(rows), d)
    if d.ndim == 1:
        n, index = (x.shape[1], cols) if by == "col" else (x.shape[0], rows)
        if len(d) != n:
            raise ValueError(f"a vector of length {len(d)} for the {by}s of a sparse matrix of shape {x.shape}")
        return d[index]
    if d.shape != x.shape:
        raise ValueError(f"a dense matrix of shape {d.shape} for a sparse matrix of shape {x.shape}")
    return d[rows, cols]


class PatternSum(Op):
    """The gradient of PatternValues w.r.t. d: g's values at x's stored positions (times x's
    values when `times_x`), summed into d's shape."""

    def __init__(self, ndim, by="col", times_x=False):
        self.ndim, self.by, self.times_x = int(ndim), by, bool(times_x)

    def signature(self):
        return f"PatternSum{{{self.ndim},{self.by},times_x={self.times_x}}}"

    def __reduce__(self):
        return PatternSum, (self.ndim, self.by, self.times_x)

    def make_node(self, x, g, like):
        x, like = as_sparse_variable(x), as_tensor_variable(like)
        g = g if _is_sparse(g) else as_tensor_variable(g)
        return Apply(self, [x, g, like], [TensorType(like.dtype, like.broadcastable)])

    def perform(self, node, inputs):
        x, g, like = inputs
        x = _sp(x, node.inputs[0].format)
        rows, cols = _coords(x)
        if sp.issparse(g) or _is_sparse(node.inputs[1]):
            values = np.asarray(_sp(g, node.inputs[1].format).tocsr()[rows, cols]).ravel() if len(rows) else np.zeros(0)
        else:
            values = np.asarray(g)[rows, cols]
        if self.times_x:
            values = values * x.data
        out = np.zeros(np.shape(like), dtype=node.outputs[0].dtype)
        if self.ndim == 0:
            out[()] = values.sum()
        elif self.ndim == 1:
            np.add.at(out, cols if self.by == "col" else rows, values)
        else:
            np.add.at(out, (rows, cols), values)
        return [out]


def sp_ones_like(x):
    """A sparse matrix with x's pattern holding ones."""
    x = as_sparse_variable(x)
    return PatternValues()(x, as_tensor_variable(np.ones((), dtype=x.dtype)))


# ---- products -------------------------------------------------------------------------------------

class StructuredDot(_SparseOp):
    """a (sparse) times b (dense matrix), dense; the gradient w.r.t. a is on a's stored entries."""

    def make_node(self, a, b):
        a, b = as_sparse_variable(a), as_tensor_variable(b)
        if b.ndim != 2:
            raise TypeError(f"structured_dot needs a dense matrix, got {b.type}")
        dtype = np.result_type(a.dtype, b.dtype).name
        return Apply(self, [a, b], [TensorType(dtype, (False, b.broadcastable[1]))])

    def perform(self, node, inputs):
        a, b = _sp(inputs[0], node.inputs[0].format), inputs[1]
        _check_shapes("structured_dot", a, b, a.shape[1] == b.shape[0])
        return [np.asarray(a @ b, dtype=node.outputs[0].dtype)]

    def grad(self, inputs, output_grads, outputs):
        (a, b), (g,) = inputs, output_grads
        return [StructuredDotGradA()(a, b, g), structured_dot(transpose(a), g)]


class StructuredDotGradA(_SparseOp):
    """(g . b^T) at a's stored entries, as a sparse matrix with a's pattern: one row-by-row dot
    product per stored entry, never the dense product."""

    stateful = CSM.stateful

    def make_node(self, a, b, g):
        a = as_sparse_variable(a)
        return Apply(self, [a, as_tensor_variable(b), as_tensor_variable(g)], [SparseType(a.format, a.dtype)])

    def perform(self, node, inputs):
        a, b, g = _sp(inputs[0], node.inputs[0].format), inputs[1], inputs[2]
        rows, cols = _coords(a)
        values = np.einsum("ij,ij->i", g[rows], b[cols]) if len(rows) else np.zeros(0)
        return [_with_pattern(a, values, a.dtype)]


def structured_dot(x, y):
    """x . y with x sparse and y a dense matrix (or y sparse and x dense), a dense result; the
    gradient w.r.t. the sparse operand is nonzero only on its stored entries. Two sparse
    operands give a sparse result (true_dot)."""
    if _is_sparse(x) and _is_sparse(y):
        return true_dot(x, y)
    if _is_sparse(x):
        return StructuredDot()(x, y)
    if _is_sparse(y):
        return StructuredDot()(transpose(y), as_tensor_variable(x).T).T
    raise TypeError("structured_dot needs at least one sparse operand")


class Dot(_SparseOp):
    """x . y with one or both operands sparse; the result is dense (Theano's sparse.dot)."""

    def make_node(self, x, y):
        x = x if _is_sparse(x) else as_tensor_variable(x)
        y = y if _is_sparse(y) else as_tensor_variable(y)
        if not (_is_sparse(x) or _is_sparse(y)):
            raise TypeError("sparse.dot needs at least one sparse operand (use T.dot for dense ones)")
        if x.ndim != 2 or y.ndim != 2:
            raise TypeError(f"sparse.dot takes matrices, got {x.type} and {y.type}")
        dtype = np.result_type(x.dtype, y.dtype).name
        return Apply(self, [x, y], [TensorType(dtype, (False, False))])

    def perform(self, node, inputs):
        x, y = (_sp(v, var.format) if _is_sparse(var) else v for v, var in zip(inputs, node.inputs))
        _check_shapes("sparse.dot", x, y, x.shape[1] == y.shape[0])
        out = x @ y
        return [np.asarray(out.toarray() if sp.issparse(out) else out, dtype=node.outputs[0].dtype)]

    def grad(self, inputs, output_grads, outputs):
        (x, y), (g,) = inputs, output_grads
        gx = _dot_any(g, _t(y))
        gy = _dot_any(_t(x), g)
        # Theano returns these dense; gencomp gives each gradient its variable's type
        return [SparseFromDense(x.format)(gx) if _is_sparse(x) else gx,
                SparseFromDense(y.format)(gy) if _is_sparse(y) else gy]


def _t(v):
    return transpose(v) if _is_sparse(v) else as_tensor_variable(v).T


def _dot_any(a, b):
    if _is_sparse(a) or _is_sparse(b):
        return Dot()(a, b)
    from ..tensor.blas import dot as dense_dot
    return dense_dot(a, b)


def dot(x, y):
    """x . y where x, y or both are sparse; a dense result (Theano's sparse.dot)."""
    return Dot()(x, y)


class TrueDot(Op):
    """x (sparse) . y (sparse or dense), a sparse result in x's format (Theano's true_dot)."""

    stateful = CSM.stateful

    def __init__(self, grad_preserves_dense=True):
        self.grad_preserves_dense = bool(grad_preserves_dense)

    def signature(self):
        return f"TrueDot{{grad_preserves_dense={self.grad_preserves_dense}}}"

    def __reduce__(self):
        return TrueDot, (self.grad_preserves_dense,)

    def make_node(self, x, y):
        x = as_sparse_variable(x)
        y = y if _is_sparse(y) else as_tensor_variable(y)
        if y.ndim != 2:
            raise TypeError(f"true_dot takes matrices, got {y.type}")
        if x.dtype != y.dtype:
            raise TypeError(f"true_dot needs operands of one dtype, got {x.dtype} and {y.dtype}")
        return Apply(self, [x, y], [SparseType(x.format, x.dtype)])

    def perform(self, node, inputs):
        x = _sp(inputs[0], node.inputs[0].format)
        y = _sp(inputs[1], node.inputs[1].format) if _is_sparse(node.inputs[1]) else inputs[1]
        _check_shapes("true_dot", x, y, x.shape[1] == y.shape[0])
        return [_as_format(x @ y, x.format, x.dtype)]

    def grad(self, inputs, output_grads, outputs):
        (x, y), (g,) = inputs, output_grads
        gx = true_dot(g, _t(y), self.grad_preserves_dense)
        gy = true_dot(transpose(x), g, self.grad_preserves_dense)
        if _is_sparse(y):
            gy = _in_format(gy, y.format)
        elif self.grad_preserves_dense:
            gy = dense_from_sparse(gy)
        return [_in_format(gx, x.format), gy]


def true_dot(x, y, grad_preserves_dense=True):
    """x . y as a sparse matrix (one operand at least sparse); its gradient w.r.t. a dense y is
    dense when grad_preserves_dense."""
    if _is_sparse(x):
        return TrueDot(grad_preserves_dense)(x, y)
    if _is_sparse(y):
        return transpose(TrueDot(grad_preserves_dense)(transpose(y), as_tensor_variable(x).T))
    raise TypeError("true_dot needs at least one sparse operand")


# ---- elementwise ----------------------------------------------------------------------------------

class StructuredBinary(Op):
    """x's stored values `kind` (add | mul) y's: y a scalar, a vector over x's columns, or a
    dense matrix read at the stored positions. Entries x does not store stay absent."""

    stateful = CSM.stateful

    def __init__(self, kind):
        self.kind = kind

    def signature(self):
        return f"Structured{{{self.kind}}}"

    def __reduce__(self):
        return StructuredBinary, (self.kind,)

    def make_node(self, x, y):
        x, y = as_sparse_variable(x), as_tensor_variable(y)
        if y.ndim > 2:
            raise TypeError(f"structured_{self.kind} takes a scalar, vector or matrix, got {y.type}")
        return Apply(self, [x, y], [SparseType(x.format, _result_dtype(x, y))])

    def perform(self, node, inputs):
        x = _sp(inputs[0], node.inputs[0].format)
        values = _values_at(x, inputs[1], "col")
        data = x.data + values if self.kind == "add" else x.data * values
        return [_with_pattern(x, data, node.outputs[0].dtype)]

    def grad(self, inputs, output_grads, outputs):
        (x, y), (g,) = inputs, output_grads
        if self.kind == "add":
            gx = _restrict(g, x)
        else:
            gx = _restrict(StructuredBinary("mul")(g, y), x)
        return [gx, PatternSum(y.ndim, "col", times_x=self.kind == "mul")(x, g, y)]


def _restrict(g, x):
    """Sparse g on x's pattern, in x's format and dtype."""
    return PatternValues()(x, dense_from_sparse(g)) if g.type != x.type else g


def structured_add(x, y):
    """y added to the stored entries of sparse x only (a scalar, a vector by column, or a matrix)."""
    return StructuredBinary("add")(x, y)


def structured_mul(x, y):
    """The stored entries of sparse x times y (a scalar, a vector by column, or a matrix)."""
    return StructuredBinary("mul")(x, y)


class SparseBinary(Op):
    """Elementwise `kind` (add | mul) of two sparse matrices (a sparse result in x's format), or
    sparse + dense (a dense result)."""

    def __init__(self, kind):
        self.kind = kind

    stateful = CSM.stateful

    def signature(self):
        return f"SparseBinary{{{self.kind}}}"

    def __reduce__(self):
        return SparseBinary, (self.kind,)

    def make_node(self, x, y):
        x = as_sparse_variable(x)
        dtype = np.result_type(x.dtype, y.dtype).name
        if _is_sparse(y):
            return Apply(self, [x, y], [SparseType(x.format, dtype)])
        y = as_tensor_variable(y)
        if self.kind != "add" or y.ndim != 2 or any(y.broadcastable):
            raise TypeError(f"sparse {self.kind} of {x.type} with {y.type}: give a dense matrix of x's shape")
        return Apply(self, [x, y], [TensorType(dtype, (False, False))])

    def perform(self, node, inputs):
        x = _sp(inputs[0], node.inputs[0].format)
        y = _sp(inputs[1], node.inputs[1].format) if _is_sparse(node.inputs[1]) else inputs[1]
        _check_shapes(f"sparse {self.kind}", x, y, x.shape == y.shape)
        dtype = node.outputs[0].dtype
        if not _is_sparse(node.inputs[1]):
            return [np.asarray(x.toarray() + y, dtype=dtype)]
        out = x + y if self.kind == "add" else x.multiply(y)
        return [_as_format(out, x.format, dtype)]

    def grad(self, inputs, output_grads, outputs):
        (x, y), (g,) = inputs, output_grads
        if not _is_sparse(y):                          # Theano's AddSD: structured for x
            return [PatternValues()(x, g), g]
        if self.kind == "add":
            return [_in_format(g, x.format), _in_format(g, y.format)]
        return [_in_format(SparseBinary("mul")(g, y), x.format), _in_format(SparseBinary("mul")(g, x), y.format)]


def add(x, y):
    """x + y with x or y sparse: sparse + sparse is sparse, sparse + dense matrix is dense, and a
    scalar is added to the stored entries only (structured_add)."""
    if not _is_sparse(x):
        x, y = y, x
    if not _is_sparse(y) and as_tensor_variable(y).ndim < 2:
        return structured_add(x, y)
    return SparseBinary("add")(x, y)


def mul(x, y):
    """x * y with x or y sparse: a sparse result (dense operands are read at x's stored entries)."""
    if not _is_sparse(x):
        x, y = y, x
    if _is_sparse(y):
        return SparseBinary("mul")(x, y)
    return structured_mul(x, y)


# ---- sums -----------------------------------------------------------------------------------------

class SpSum(Op):
    """The sum of a sparse matrix (axis None), of its columns (axis 0) or rows (axis 1), dense."""

    def __init__(self, axis=None, sparse_grad=False):
        if axis not in (None, 0, 1):
            raise ValueError(f"sp_sum: axis must be None, 0 or 1, got {axis!r}")
        self.axis, self.sparse_grad = axis, bool(sparse_grad)

    def signature(self):
        return f"SpSum{{axis={self.axis},sparse_grad={self.sparse_grad}}}"

    def __reduce__(self):
        return SpSum, (self.axis, self.sparse_grad)

    def make_node(self, x):
        x = as_sparse_variable(x)
        return Apply(self, [x], [TensorType(x.dtype, () if self.axis is None else (False,))])

    def perform(self, node, inputs):
        x = _sp(inputs[0], node.inputs[0].format)
        total = x.sum() if self.axis is None else np.asarray(x.sum(axis=self.axis)).ravel()
        return [np.asarray(total, dtype=node.outputs[0].dtype)]

    def grad(self, inputs, output_grads, outputs):
        (x,), (g,) = inputs, output_grads
        by = "col" if self.axis == 0 else "row"
        if self.sparse_grad:                           # on x's stored entries only
            return [PatternValues(by)(x, g)]
        return [SpSumDenseGrad(self.axis)(x, g)]


class SpSumDenseGrad(Op):
    """The full gradient of SpSum: g spread over every entry of x's shape, in x's format."""

    stateful = CSM.stateful

    def __init__(self, axis):
        self.axis = axis

    def signature(self):
        return f"SpSumDenseGrad{{axis={self.axis}}}"

    def __reduce__(self):
        return SpSumDenseGrad, (self.axis,)

    def make_node(self, x, g):
        x = as_sparse_variable(x)
        return Apply(self, [x, as_tensor_variable(g)], [SparseType(x.format, x.dtype)])

    def perform(self, node, inputs):
        x, g = _sp(inputs[0], node.inputs[0].format), np.asarray(inputs[1])
        spread = g if self.axis is None else g[None, :] if self.axis == 0 else g[:, None]
        return [_FORMATS[x.format](np.broadcast_to(spread, x.shape).astype(x.dtype))]


def sp_sum(x, axis=None, sparse_grad=False):
    """Sum of sparse x (axis None), of its columns (0) or rows (1); with sparse_grad the gradient
    is nonzero only on x's stored entries."""
    return SpSum(axis, sparse_grad)(x)
