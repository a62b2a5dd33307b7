"""The rewrite driver: a registry of rules by phase, and the fixed-point loop that applies them."""

from __future__ import annotations

from collections import OrderedDict

PHASES = ("merge", "canonicalize", "stabilize", "specialize")
MODES = {"None": (), "fast_compile": ("merge",), "fast_run": PHASES}
MAX_PASSES = 8                  # per phase: rules shrink or stabilize the graph, this is a safety bound

_NODE_RULES: "OrderedDict[str, tuple]" = OrderedDict()     # name -> (phase, function)
_GRAPH_RULES: "OrderedDict[str, tuple]" = OrderedDict()


def register_node_rule(phase: str, name: str | None = None):
    """Decorator: `fn(node) -> list of replacement outputs | None`, run in `phase`."""
    def add(fn):
        _NODE_RULES[name or fn.__name__] = (phase, fn)
        return fn
    return add


def register_graph_rule(phase: str, name: str | None = None):
    """Decorator: `fn(fgraph) -> None`, run once per pass of `phase` before its node rules."""
    def add(fn):
        _GRAPH_RULES[name or fn.__name__] = (phase, fn)
        return fn
    return add


def registered(phase: str | None = None) -> list[str]:
    """Names of the registered rules (of one phase)."""
    names = [n for n, (p, _) in {**_GRAPH_RULES, **_NODE_RULES}.items() if phase in (None, p)]
    return names


def optimize(fgraph, mode: str, exclude=()) -> dict:
    """Run the phases of `mode` on `fgraph` in place; returns how often each rule fired."""
    fired: dict = {}
    for phase in MODES[mode]:
        graph_rules = [(n, f) for n, (p, f) in _GRAPH_RULES.items() if p == phase and n not in exclude]
        node_rules = [(n, f) for n, (p, f) in _NODE_RULES.items() if p == phase and n not in exclude]
        for _ in range(MAX_PASSES):
            for name, fn in graph_rules:
                fn(fgraph)
            if not _node_pass(fgraph, node_rules, fired):
                break
    return fired


def _node_pass(fgraph, node_rules, fired) -> bool:
    """One walk over the graph applying node rules; True if anything changed."""
    if not node_rules:
        return False
    replacements = {}
    for node in fgraph.toposort():
        node.inputs = [replacements.get(id(i), i) for i in node.inputs]
        for name, fn in node_rules:
            new = fn(node)
            if new is None:
                continue
            for old, var in zip(node.outputs, new):
                if var is not old:
                    if not _compatible(old.type, var.type):
                        raise TypeError(f"rewrite {name} changed {old.type} into {var.type}")
                    replacements[id(old)] = var
            fired[name] = fired.get(name, 0) + 1
            break
    fgraph.outputs = [replacements.get(id(o), o) for o in fgraph.outputs]
    return bool(replacements)


def _compatible(old, new) -> bool:
    """Same dtype and rank; the replacement may know more dimensions to be broadcastable."""
    return (old.dtype == new.dtype and old.ndim == new.ndim
            and all(n or not o for o, n in zip(old.broadcastable, new.broadcastable)))
