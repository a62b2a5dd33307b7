"""theano.gof's import path for ported programs: Op and Apply for ops written in Python (Theano's
perform(node, inputs, output_storage) protocol), Variable, Constant, FunctionGraph and graph walks."""

from .graph import Constant, FunctionGraph, Variable, ancestors, clone_replace, toposort
from .tensor.theano_op import Apply, Op

__all__ = ["Apply", "Constant", "FunctionGraph", "Op", "Variable", "ancestors", "clone_replace", "toposort"]
