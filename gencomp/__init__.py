"""gencomp: Theano's API compiled to readable C through Jinja2 templates, cached on disk by graph hash."""

__version__ = "0.1.0"

from .config import config  # noqa: E402
from .function import Function, In, Out, UnusedInputError, function  # noqa: E402
from .sharedvar import SharedVariable, shared  # noqa: E402
from . import printing, tensor  # noqa: E402,F401
from .printing import pp  # noqa: E402,F401  (theano.pp)
from .mode import DebugMode, Mode  # noqa: E402,F401  (theano.Mode, theano.compile.DebugMode)
from . import compile  # noqa: E402,F401  (theano.compile.MonitorMode, resolved lazily there)
from .tensor import grad  # noqa: E402,F401  (theano.grad)
from . import gradient, scalar  # noqa: E402,F401  (theano.gradient, theano.scalar.upcast)
from .gradient import Lop, Rop  # noqa: E402,F401  (theano.Rop, theano.Lop)
from .scan import scan  # noqa: E402,F401  (theano.scan; the module stays importable as gencomp.scan)
from . import scan_module  # noqa: E402,F401  (theano.scan_module.until)
from .tensor.theano_op import Apply, Op  # noqa: E402,F401  (theano.Op, theano.Apply: ops written in Python)
from . import gof  # noqa: E402,F401  (theano.gof.Op, theano.gof.Apply)


def dot(l, r):  # noqa: E741  (Theano's argument names)
    """theano.dot: the product of two variables, dense (T.dot) or sparse (gencomp.sparse.dot) alike."""
    if any(getattr(getattr(v, "type", None), "format", None) for v in (l, r)):    # a SparseType
        from . import sparse        # needs scipy; only a program with sparse variables gets here
        return sparse.dot(l, r)
    return tensor.dot(l, r)


__all__ = ["config", "function", "Function", "In", "Out", "shared", "SharedVariable", "UnusedInputError",
           "printing", "tensor", "pp", "dot", "Op", "Apply", "Mode", "DebugMode", "compile", "__version__"]
