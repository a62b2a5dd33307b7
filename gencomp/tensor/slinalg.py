"""theano.tensor.slinalg: Cholesky, solves, generalized symmetric eigenvalues, expm and kron, with
Theano 1.0's names, signatures and gradients. Theano called scipy.linalg; these run numpy.linalg
(and a Pade approximant for expm), so the core needs no scipy. Host ops, as nlinalg's."""

from __future__ import annotations

import numpy as np

from ..graph import Apply, Op
from .extra_ops import ExtractDiag, SetDiagonal
from .nlinalg import as_float_matrix, symmetric_part
from .type import TensorType
from .variable import as_tensor_variable

MATRIX_STRUCTURES = ("general", "symmetric", "lower_triangular", "upper_triangular", "hermitian",
                     "banded", "diagonal", "toeplitz")


def _m():
    from . import math

    return math


def _square(a, name):
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} needs a square matrix, got shape {a.shape}")


def tril(x, k=0):
    """The lower triangle of matrix x (at and below diagonal k), zeros elsewhere; gradient the same."""
    m = _m()
    rows, cols = m.arange(x.shape[0]), m.arange(x.shape[1])
    return m.switch(m.le(cols.dimshuffle("x", 0), rows.dimshuffle(0, "x") + k), x, 0)


def triu(x, k=0):
    """The upper triangle of matrix x (at and above diagonal k), zeros elsewhere."""
    m = _m()
    rows, cols = m.arange(x.shape[0]), m.arange(x.shape[1])
    return m.switch(m.ge(cols.dimshuffle("x", 0), rows.dimshuffle(0, "x") + k), x, 0)


class Cholesky(Op):
    """The Cholesky factor of a symmetric positive-definite matrix: L with L L^T = X (lower, reading
    X's lower triangle) or U with U^T U = X (upper, reading its upper one). on_error='nan' gives a
    matrix of NaNs where the factorization fails, 'raise' numpy's LinAlgError (a ValueError)."""

    fresh_outputs = True

    def __init__(self, lower=True, on_error="raise"):
        if on_error not in ("raise", "nan"):
            raise ValueError(f"Cholesky: on_error must be 'raise' or 'nan', got {on_error!r}")
        self.lower, self.on_error = bool(lower), on_error

    def signature(self):
        return f"Cholesky{{lower={self.lower},{self.on_error}}}"

    def __reduce__(self):
        return Cholesky, (self.lower, self.on_error)

    def make_node(self, x):
        x = as_float_matrix(x, "cholesky")
        return Apply(self, [x], [x.type])

    def perform(self, node, inputs):
        (x,) = inputs
        _square(x, "cholesky")
        try:
            out = np.linalg.cholesky(x) if self.lower else np.linalg.cholesky(x.T).T
        except np.linalg.LinAlgError:
            if self.on_error == "raise":
                raise
            out = np.full(x.shape, np.nan)
        return [np.array(out, dtype=x.dtype)]

    def grad(self, inputs, output_grads, outputs):
        """Theano's (Murray, 2016): Phi(L^T dL) conjugated by L^-1, symmetrized onto the triangle read."""
        (chol,), (dz,) = outputs, output_grads
        if not self.lower:
            chol, dz = chol.T, dz.T
        inner = chol.T.dot(dz)
        phi = SetDiagonal()(tril(inner), ExtractDiag()(inner) / 2)
        s = solve_upper_triangular(chol.T, solve_upper_triangular(chol.T, phi.T).T)
        both = s + s.T
        return [SetDiagonal()(tril(both) if self.lower else triu(both), ExtractDiag()(s))]


class Solve(Op):
    """The x of A x = b (b a vector or matrix). Triangular structures read only A's triangle, as
    scipy.linalg.solve_triangular; the others are a general solve (as Theano's). Gradient Theano's."""

    fresh_outputs = True

    def __init__(self, A_structure="general", lower=False, overwrite_A=False, overwrite_b=False):
        if A_structure not in MATRIX_STRUCTURES:
            raise ValueError(f"Solve: invalid matrix structure {A_structure!r}; one of {MATRIX_STRUCTURES}")
        self.A_structure, self.lower = A_structure, bool(lower)
        self.overwrite_A, self.overwrite_b = bool(overwrite_A), bool(overwrite_b)   # accepted, never done

    def signature(self):
        return f"Solve{{{self.A_structure},lower={self.lower}}}"

    def __reduce__(self):
        return Solve, (self.A_structure, self.lower)

    def make_node(self, A, b):
        A = as_float_matrix(A, "solve")
        b = as_tensor_variable(b)
        if b.ndim not in (1, 2):
            raise TypeError(f"solve: b must be a vector or a matrix, got {b.type}")
        dtype = np.result_type(A.dtype, b.dtype, np.float32).name
        if dtype.startswith("complex"):
            raise TypeError(f"solve has no form for dtype {dtype}")
        return Apply(self, [A, b], [TensorType(dtype, b.broadcastable)])

    def perform(self, node, inputs):
        A, b = inputs
        _square(A, "solve")
        if A.shape[0] != b.shape[0]:
            raise ValueError(f"solve: A of shape {A.shape} and b of shape {b.shape} do not match")
        if self.A_structure == "lower_triangular":
            A = np.tril(A)
        elif self.A_structure == "upper_triangular":
            A = np.triu(A)
        dtype = node.outputs[0].dtype
        if A.shape[0] == 0:
            return [np.zeros(b.shape, dtype)]
        return [np.array(np.linalg.solve(A.astype(dtype), b.astype(dtype)), dtype=dtype)]

    def grad(self, inputs, output_grads, outputs):
        (A, _), (c,), (c_bar,) = inputs, outputs, output_grads
        flipped = {"lower_triangular": "upper_triangular", "upper_triangular": "lower_triangular"}
        b_bar = Solve(flipped.get(self.A_structure, self.A_structure), not self.lower)(A.T, c_bar)
        A_bar = -_m().outer(b_bar, c) if c.ndim == 1 else -_m().dot(b_bar, c.T)
        if self.A_structure == "lower_triangular":
            A_bar = tril(A_bar)
        elif self.A_structure == "upper_triangular":
            A_bar = triu(A_bar)
        return [A_bar, b_bar]


solve = Solve()
solve_lower_triangular = Solve(A_structure="lower_triangular", lower=True)
solve_upper_triangular = Solve(A_structure="upper_triangular", lower=False)
solve_symmetric = Solve(A_structure="symmetric")
cholesky = Cholesky()


def _generalized_eigh(a, b, lower):
    """scipy.linalg.eigh(a, b, lower) by numpy: the symmetric matrices the triangles give, reduced by
    b's Cholesky factor L to L^-1 a L^-T; (w, v) with v^T b v = I."""
    a, b = (np.tril(m) + np.tril(m, -1).T if lower else np.triu(m) + np.triu(m, 1).T for m in (a, b))
    chol = np.linalg.cholesky(b)
    reduced = np.linalg.solve(chol, np.linalg.solve(chol, a).T).T
    w, u = np.linalg.eigh(reduced)
    return w, np.linalg.solve(chol.T, u)


class Eigvalsh(Op):
    """The eigenvalues (ascending) of the symmetric matrix a, or with b (symmetric positive definite)
    those of the generalized problem a v = w b v; each read from its lower (or upper) triangle."""

    fresh_outputs = True

    def __init__(self, lower=True):
        self.lower = bool(lower)

    def signature(self):
        return f"Eigvalsh{{lower={self.lower}}}"

    def __reduce__(self):
        return Eigvalsh, (self.lower,)

    def make_node(self, a, b=None):
        inputs = [as_float_matrix(a, "eigvalsh")] + ([] if b is None else [as_float_matrix(b, "eigvalsh")])
        dtype = np.result_type(*[i.dtype for i in inputs]).name
        return Apply(self, inputs, [TensorType(dtype, (False,))])

    def perform(self, node, inputs):
        for x in inputs:
            _square(x, "eigvalsh")
        if len(inputs) == 1:
            w = np.linalg.eigvalsh(inputs[0], "L" if self.lower else "U")
        else:
            if inputs[0].shape != inputs[1].shape:
                raise ValueError(f"eigvalsh: a {inputs[0].shape} and b {inputs[1].shape} differ in shape")
            w, _ = _generalized_eigh(inputs[0], inputs[1], self.lower)
        return [np.array(w, dtype=node.outputs[0].dtype)]

    def grad(self, inputs, output_grads, outputs):
        grads = EigvalshGrad(self.lower)(*inputs, output_grads[0])
        return grads if isinstance(grads, list) else [grads]


class EigvalshGrad(Op):
    """The gradient of Eigvalsh: v diag(gw) v^T for a, -v diag(gw w) v^T for b, folded onto the
    triangles read."""

    fresh_outputs = True

    def __init__(self, lower=True):
        self.lower = bool(lower)

    def signature(self):
        return f"EigvalshGrad{{lower={self.lower}}}"

    def __reduce__(self):
        return EigvalshGrad, (self.lower,)

    def make_node(self, *inputs):
        inputs = [as_tensor_variable(i) for i in inputs]
        return Apply(self, inputs, [i.type for i in inputs[:-1]])

    def perform(self, node, inputs):
        *mats, gw = inputs
        uplo = "L" if self.lower else "U"
        if len(mats) == 1:
            w, v = np.linalg.eigh(mats[0], uplo)
        else:
            w, v = _generalized_eigh(mats[0], mats[1], self.lower)
        grads = [v @ np.diag(gw) @ v.T, -(v @ np.diag(gw * w) @ v.T)]
        return [np.asarray(symmetric_part(g, uplo), dtype=o.dtype) for g, o in zip(grads, node.outputs)]


def eigvalsh(a, b=None, lower=True):
    """Eigenvalues of the symmetric a, or of the generalized problem (a, b) (Theano's eigvalsh(a, b))."""
    return Eigvalsh(lower)(a, b)


# Pade approximant of degree 13 with scaling and squaring (Higham, SIAM J. Matrix Anal. Appl. 26, 2005)
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
           129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
           40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def expm_array(a: np.ndarray) -> np.ndarray:
    """The matrix exponential of a square float array (numpy only)."""
    a = np.asarray(a, dtype=np.float64)
    norm = np.linalg.norm(a, 1) if a.size else 0.0
    if not np.isfinite(norm):
        return np.full(a.shape, np.nan)
    squarings = max(0, int(np.ceil(np.log2(norm / _THETA13)))) if norm > 0 else 0
    a = a / 2.0 ** squarings
    b = _PADE13
    eye = np.eye(a.shape[0])
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2 + b[1] * eye)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * eye
    result = np.linalg.solve(v - u, v + u)
    for _ in range(squarings):
        result = result @ result
    return result


class Expm(Op):
    """The matrix exponential of a square matrix (scipy.linalg.expm's Pade approximant, in numpy).
    Its gradient is the Frechet derivative at A^T applied to G: the upper right block of
    expm([[A^T, G], [0, A^T]]) (exact, also for defective matrices)."""

    fresh_outputs = True

    def signature(self):
        return "Expm"

    def make_node(self, A):
        A = as_float_matrix(A, "expm")
        return Apply(self, [A], [A.type])

    def perform(self, node, inputs):
        (A,) = inputs
        _square(A, "expm")
        return [np.array(expm_array(A), dtype=A.dtype)]

    def grad(self, inputs, output_grads, outputs):
        return [ExpmGrad()(inputs[0], output_grads[0])]


class ExpmGrad(Op):
    """The gradient of Expm (see there)."""

    fresh_outputs = True

    def signature(self):
        return "ExpmGrad"

    def make_node(self, A, g):
        A, g = as_tensor_variable(A), as_tensor_variable(g)
        return Apply(self, [A, g], [A.type])

    def perform(self, node, inputs):
        A, g = inputs
        n = A.shape[0]
        block = np.zeros((2 * n, 2 * n))
        block[:n, :n] = block[n:, n:] = A.T
        block[:n, n:] = g
        return [np.array(expm_array(block)[:n, n:], dtype=A.dtype)]


expm = Expm()


def kron(a, b):
    """The Kronecker product of two matrices (scipy.linalg.kron): a (m, n), b (p, q) give (m p, n q)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim != 2 or b.ndim != 2:
        raise TypeError(f"kron takes two matrices here, got {a.type} and {b.type}")
    blocks = a.dimshuffle(0, "x", 1, "x") * b.dimshuffle("x", 0, "x", 1)
    return blocks.reshape((a.shape[0] * b.shape[0], a.shape[1] * b.shape[1]), ndim=2)
