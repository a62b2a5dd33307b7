"""theano.tensor.basic's import path for ported programs: the names of gencomp.tensor (types,
constructors, elementwise and shape functions), as `from theano.tensor.basic import ...` finds them."""

from . import *  # noqa: F401,F403
from .variable import as_tensor_variable, constant  # noqa: F401
