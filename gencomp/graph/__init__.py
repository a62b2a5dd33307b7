"""The graph layer: variables, apply nodes, ops, function graphs and their structural hash."""

from .basic import Apply, Constant, Op, Variable, ancestors, clone_replace, toposort
from .fg import FunctionGraph, MissingInputError

__all__ = ["Apply", "Constant", "Op", "Variable", "ancestors", "clone_replace", "toposort",
           "FunctionGraph", "MissingInputError"]
