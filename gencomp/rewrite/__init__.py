"""Graph rewrites: small pure rules registered by name and phase, applied to a fixed point.

`optimize(fgraph, mode)` edits the FunctionGraph in place: 'None' does nothing,
'fast_compile' merges identical subgraphs, 'fast_run' runs every phase in PHASES.
A node rule takes an Apply node and returns replacement variables for its outputs
(or None); a graph rule takes the whole FunctionGraph.
"""

from __future__ import annotations

from .engine import PHASES, optimize, register_graph_rule, register_node_rule, registered  # noqa: F401
from . import rules as _rules  # noqa: E402,F401  (registers the rules)
from . import gemm as _gemm  # noqa: E402,F401  (the BLAS rules)
